"""The onnxruntime backend end to end through the CLI: real ONNX models, real slips, paddle goldens and parity."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend_faults import swapped, swapped_digit_rec_dir
from conftest import CORPUS, ROOT, CliRun, run_cli
from harness.backends.onnxruntime.pack import prepare_onnx
from harness.model.modeldirs import sha256_file
from harness.model.settings import EngineSettings

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def onnx_run(tmp_path_factory: pytest.TempPathFactory, offline_env: dict[str, str]) -> CliRun:
    out = tmp_path_factory.mktemp("onnx-out")
    return run_cli(["run", "--profile", "onnx", "--out", str(out), "--html"], env=offline_env, out=out)


def test_onnx_profile_passes_on_smoke_against_the_paddle_goldens(onnx_run: CliRun, offline_env: dict[str, str]) -> None:
    assert onnx_run.returncode == 0, onnx_run.stdout[-3000:] + onnx_run.stderr[-2000:]
    assert Path(offline_env["OCR_HARNESS_TEST_NET_LOG"]).read_text() == ""
    report = onnx_run.report
    assert len(report["images"]) == 12
    assert report["stack"]["backend"] == "onnxruntime" and report["stack"]["onnxruntime"]
    assert "paddle" not in report["stack"] and "onednn" not in report["stack"]
    assert report["stack"]["models"]["rec/inference.onnx"].startswith("48fc40f2")
    for name in ("inference", "repeat", "mutation", "golden", "parity"):
        check = report["checks"][name]
        assert check["passed"] and not check["skipped"], (name, check["summary"])
    golden = report["checks"]["golden"]
    assert golden["details"]["shared_goldens"]["from"] == "paddle"
    assert "backend" in golden["details"]["shared_goldens"]["not_compared"]
    assert not {d["key"] for d in golden["details"]["status"]["stack_differences"]} & {"backend", "onnxruntime"}
    assert report["checks"]["audit"]["skipped"] and "Paddle programs" in report["checks"]["audit"]["summary"]


def test_parity_is_in_every_report(onnx_run: CliRun) -> None:
    parity = onnx_run.report["checks"]["parity"]
    stats = parity["details"]["paths"]["onnxruntime"]
    assert parity["details"]["reference"] == "paddle"
    assert stats["failed_to_run"] == 0 and stats["identical"] + stats["within"] == 12 and stats["beyond"] == 0
    assert stats["required_tolerances"]["text_max_cer"] == 0.0  # same texts
    assert 0 < stats["required_tolerances"]["score_abs"] < 1e-3  # scores differ in the last digits, not more
    latency = parity["details"]["latency"]
    assert latency["paddle"]["images"] == latency["onnxruntime"]["images"] == 12
    image = onnx_run.report["images"][0]
    assert image["checks"]["parity"]["details"]["reference"] == "paddle"
    summary = (onnx_run.out / "summary.md").read_text(encoding="utf-8")
    html = (onnx_run.out / "report.html").read_text(encoding="utf-8")
    for text in (summary, html):
        assert "parity" in text and "onnxruntime" in text
    assert "Backend parity" in summary and "Backend parity" in html  # the side-by-side table


def test_planted_model_fault_is_caught_by_golden_and_parity(tmp_path: Path) -> None:
    """The right ONNX weights with a dictionary that swaps 1 and 7: critical key-field losses, line by line."""
    bundled = prepare_onnx(EngineSettings(backend="onnxruntime"))
    bad = swapped_digit_rec_dir(bundled.rec, tmp_path / "rec-swapped")
    config = tmp_path / "harness.toml"
    config.write_text("\n".join([
        "[profiles.t]", f'corpus = "{CORPUS.as_posix()}"', f'golden_dir = "{(ROOT / "golden").as_posix()}"',
        'golden_set = "default"', "[profiles.t.engine]", 'backend = "onnxruntime"', 'goldens_from = "paddle"',
        f'rec_model_dir = "{bad.as_posix()}"', "[profiles.t.checks]", "repeats = 1", "parity = true", ""]))
    out = tmp_path / "out"
    res = run_cli(["run", "--config", str(config), "--profile", "t", "--id", "slip_0000", "--id", "slip_0001",
                   "--out", str(out)], out=out)
    assert res.returncode == 1, res.stderr[-2000:]
    for name in ("golden", "parity"):
        check = res.report["checks"][name]
        assert not check["passed"] and check["failed_images"] == ["slip_0000", "slip_0001"], check["summary"]
    image = res.report["images"][0]
    lines = image["checks"]["parity"]["details"]["paths"]["onnxruntime"]["lines"]
    critical = [d for d in lines if d["critical"]]
    assert critical, "a swapped digit in an amount or account must be critical"
    assert any("601743707102007566" == d["golden_text"] and d["current_text"] == swapped("601743707102007566") for d in lines)
    # The fault is visible in the stack record too: the dictionary file's hash is not the pack's.
    assert res.report["stack"]["models"]["rec/inference.yml"] != sha256_file(bundled.rec / "inference.yml")
    assert res.report["stack"]["models"]["rec/inference.onnx"] == sha256_file(bundled.rec / "inference.onnx")
