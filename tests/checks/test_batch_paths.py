"""compare_paths: exact first, then tolerances; a lost key-field value fails whatever the tolerances say."""

from __future__ import annotations

import dataclasses

from builders import image_outcome, ocr_result, quad

from harness.checks.batch_paths import compare_paths
from harness.model.inference import ImageOutcome
from harness.model.results import Line
from harness.model.settings import Tolerances

BOX_A = quad(10, 10, 190, 30)
BOX_B = quad(10, 60, 190, 30)


def outcome(image_id: str, amount: str, account: str, score: float = 0.99) -> ImageOutcome:
    result = ocr_result(Line(amount, score, BOX_A), Line(account, 0.98, BOX_B), image_id=image_id, size=(400, 200))
    return image_outcome(result, predict_s=(0.1,))


LOOSE = Tolerances(text_max_cer=0.5, score_abs=0.1)
KEYS = {"s": {"amount": "12345.67", "payee_account": "6217000012345678"}}


def test_identical_paths_pass_and_are_counted() -> None:
    ref = {"s": outcome("s", "¥12,345.67", "6217000012345678")}
    check = compare_paths("batch_paths", "profile", ref, {"bs1": dict(ref)}, Tolerances(), KEYS)
    assert check.passed and check.details["paths"]["bs1"]["identical"] == 1


def test_spacing_and_score_drift_within_declared_tolerance() -> None:
    ref = {"s": outcome("s", "¥12,345.67", "6217000012345678")}
    other = {"s": outcome("s", "¥12,345.67", "6217 0000 1234 5678", score=0.95)}
    strict = compare_paths("batch_paths", "profile", ref, {"bs1": other}, Tolerances(), KEYS)
    assert not strict.passed  # exact text and 1e-4 score: fails
    loose = compare_paths("batch_paths", "profile", ref, {"bs1": other}, LOOSE, KEYS)
    assert loose.passed and loose.details["paths"]["bs1"]["within"] == 1
    required = loose.details["paths"]["bs1"]["required_tolerances"]
    assert abs(required["score_abs"] - 0.04) < 1e-9 and required["text_max_cer"] > 0


def test_lost_key_value_fails_even_when_tolerated() -> None:
    ref = {"s": outcome("s", "¥12,345.67", "6217000012345678")}
    other = {"s": outcome("s", "¥12,346.67", "6217000012345678")}  # one digit: CER 0.1, inside LOOSE
    check = compare_paths("batch_paths", "profile", ref, {"bs1": other}, LOOSE, KEYS)
    assert not check.passed
    lines = check.per_image["s"].details["paths"]["bs1"]["lines"]
    assert [d["key_fields"] for d in lines if d["critical"]] == [["amount"]]


def test_path_that_failed_to_run_fails_the_image() -> None:
    ref = {"s": outcome("s", "¥12,345.67", "6217000012345678")}
    broken = {"s": dataclasses.replace(ref["s"], runs=(), error="worker crashed with SIGABRT")}
    check = compare_paths("variations", "profile", ref, {"onednn-off": broken}, LOOSE)
    assert not check.passed and check.details["paths"]["onednn-off"]["failed_to_run"] == 1
