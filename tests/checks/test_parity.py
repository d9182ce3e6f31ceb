"""The parity check's verdicts and report data on canonical results (what the backends produce), and the
service-settings comparison. End-to-end parity on real backends is in
backends/onnxruntime/test_onnx_engine.py and backends/http/test_serving.py."""

from __future__ import annotations

from builders import image_outcome, ocr_result, quad

from harness.backends.http.engine import expected_settings
from harness.checks.parity import merged_details, parity_check
from harness.checks.served import served_settings_check, settings_differences
from harness.model.details import PathDetails
from harness.model.inference import ImageOutcome
from harness.model.outcome import ImageCheck
from harness.model.results import Line
from harness.model.settings import EngineSettings, Tolerances

BOX_A = quad(10, 10, 190, 30)
BOX_B = quad(10, 60, 190, 30)
KEYS = {i: {"amount": "12345.67"} for i in ("a", "b")}


def outcome(image_id: str, amount: str, score: float = 0.99, seconds: float = 0.5) -> ImageOutcome:
    result = ocr_result(Line(amount, score, BOX_A), Line("客户回单", 0.98, BOX_B), image_id=image_id, size=(400, 200))
    return image_outcome(result, predict_s=(seconds,))


def test_identical_backends_pass_with_latency_side_by_side() -> None:
    ref = {i: outcome(i, "¥12,345.67", seconds=0.4) for i in ("a", "b")}
    mine = {i: outcome(i, "¥12,345.67", seconds=0.6) for i in ("a", "b")}
    check = parity_check("paddle", ref, "onnxruntime", mine, Tolerances(), KEYS)
    assert check.passed
    d = check.details
    assert d["paths"]["onnxruntime"]["identical"] == 2 and d["paths"]["onnxruntime"]["text_differences"] == 0
    assert d["latency"]["paddle"]["median_s"] == 0.4 and d["latency"]["onnxruntime"]["median_s"] == 0.6
    assert "1.50x" in check.summary
    assert check.per_image["a"].details["latency_s"] == {"paddle": 0.4, "onnxruntime": 0.6}


def test_score_drift_within_and_lost_amount_critical() -> None:
    ref = {i: outcome(i, "¥12,345.67") for i in ("a", "b")}
    mine = {"a": outcome("a", "¥12,345.67", score=0.9899), "b": outcome("b", "¥12,845.67")}
    check = parity_check("paddle", ref, "http", mine, Tolerances(text_max_cer=0.5, score_abs=1e-3), KEYS)
    assert not check.passed and check.failed_images == ["b"]
    stats = check.details["paths"]["http"]
    assert (stats["within"], stats["beyond"], stats["text_differences"]) == (1, 1, 1)
    (line,) = check.per_image["b"].details["paths"]["http"]["lines"]
    assert line["critical"] and line["key_fields"] == ["amount"]


def test_reference_failure_or_nothing_run_never_passes() -> None:
    ref = {"a": outcome("a", "¥12,345.67"), "b": ImageOutcome("b", error="worker crashed with SIGABRT")}
    mine = {i: outcome(i, "¥12,345.67") for i in ("a", "b")}
    check = parity_check("paddle", ref, "onnxruntime", mine, Tolerances(), KEYS)
    assert not check.passed and check.failed_images == ["b"]
    assert "SIGABRT" in check.per_image["b"].summary
    nothing = parity_check("paddle", {"a": ImageOutcome("a", error="x")}, "onnxruntime",
                           {"a": outcome("a", "1")}, Tolerances(), {})
    assert not nothing.passed


def test_shards_merge_to_the_whole() -> None:
    ref = {i: outcome(i, "¥12,345.67", seconds=s) for i, s in (("a", 0.2), ("b", 0.4))}
    mine = {"a": outcome("a", "¥12,345.67", score=0.9899, seconds=0.3), "b": outcome("b", "¥12,345.67", seconds=0.5)}
    tol = Tolerances(score_abs=1e-3)
    whole = parity_check("paddle", ref, "onnxruntime", mine, tol, KEYS)
    halves = [parity_check("paddle", {i: ref[i]}, "onnxruntime", {i: mine[i]}, tol, KEYS) for i in ("a", "b")]
    per_image = {i: ImageCheck(c.per_image[i].passed, c.per_image[i].summary, c.per_image[i].details)
                 for c, i in zip(halves, ("a", "b"), strict=True)}
    merged = merged_details("parity", [], [PathDetails.from_dict(h.details, f"half {n}") for n, h in enumerate(halves)],
                            per_image, None).to_dict()
    assert merged["paths"] == whole.details["paths"] and merged["latency"] == whole.details["latency"]


def test_service_settings_differences_are_named() -> None:
    profile = EngineSettings(backend="http")
    same = expected_settings(profile)
    ok = served_settings_check(profile, {"server": "uvicorn", "reported": same})
    assert ok.passed and not ok.details["differences"]
    assert (ok.judged, ok.unit) == (10, "settings") and "(10 compared)" in ok.summary
    # PaddleX's own defaults: min side 64 (planted here as the service's report).
    served = {**same, "text_det_params": {**same["text_det_params"], "limit_side_len": 64, "limit_type": "min"}}
    diffs = settings_differences(same, served)
    assert [(d.key, d.profile, d.service) for d in diffs] == [("text_det_params.limit_side_len", 960, 64),
                                                              ("text_det_params.limit_type", "max", "min")]
    check = served_settings_check(profile, {"reported": served})
    assert not check.passed and "limit_type: profile 'max', service 'min'" in check.summary
    # A setting the service does not report is a difference too; a service reporting nothing cannot pass.
    missing = {k: v for k, v in same.items() if k != "text_rec_score_thresh"}
    assert [d.key for d in settings_differences(same, missing)] == ["text_rec_score_thresh"]
    nothing = served_settings_check(profile, {"reported": {}})
    assert not nothing.passed and nothing.judged == 0  # judged nothing: never a pass
    # 0.3 reported as 0.30000000000000004 is the same setting
    close = {**same, "text_det_params": {**same["text_det_params"], "thresh": 0.1 + 0.2}}
    assert not settings_differences(same, close)
