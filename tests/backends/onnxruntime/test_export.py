"""`ocr-harness models export DIR --to onnx`: real paddle2onnx conversions of the pack's models, proved by ONNX
Runtime loading them and by parity with Paddle on real slips."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from harness.model.settings import EngineSettings
from harness.backends.paddle.pack import prepare_bundled

pytestmark = pytest.mark.slow
FEW = ["--id", "slip_0000", "--id", "slip_0003"]


def no_traceback(res: object) -> None:
    assert "Traceback" not in res.stdout and "Traceback" not in res.stderr  # type: ignore[attr-defined]


def test_det_export_converts_loads_and_reads_like_paddle(tmp_path: Path) -> None:
    det = prepare_bundled(EngineSettings()).det
    out = tmp_path / "det-onnx"
    res = run_cli(["models", "export", str(det), "--to", "onnx", "--out", str(out), *FEW])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    no_traceback(res)
    assert (out / "inference.onnx").stat().st_size > 1_000_000 and (out / "inference.yml").is_file()
    lines = res.stdout.splitlines()
    assert any(ln.startswith("  ok  convert") for ln in lines) and any(ln.startswith("  ok  load") for ln in lines)
    parity = next(ln for ln in lines if "parity:" in ln)
    assert parity.startswith("  ok") and "0 beyond" in parity and "latency median" in parity


def test_rec_export_that_onnxruntime_refuses_is_a_one_line_finding(tmp_path: Path) -> None:
    """paddle2onnx 2.1.0 writes a PP-OCRv4 rec model ONNX Runtime cannot load: a real finding, reported."""
    rec = prepare_bundled(EngineSettings()).rec
    res = run_cli(["models", "export", str(rec), "--to", "onnx", "--out", str(tmp_path / "rec-onnx"), *FEW])
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-2000:]
    no_traceback(res)
    (fail,) = [ln for ln in res.stdout.splitlines() if ln.startswith("FAIL")]
    assert fail.startswith("FAIL  load: onnxruntime cannot load inference.onnx: ")
    assert "All inputs to Concat must have same rank" in fail


def test_failing_conversion_is_a_one_line_finding(tmp_path: Path) -> None:
    """A model dir whose program file is cut short: paddle2onnx's own error, one line, exit 1."""
    broken = tmp_path / "det-broken"
    shutil.copytree(prepare_bundled(EngineSettings()).det, broken)
    program = broken / "inference.pdmodel"
    program.write_bytes(program.read_bytes()[: 4096])
    res = run_cli(["models", "export", str(broken), "--to", "onnx", "--out", str(tmp_path / "o"), *FEW])
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-2000:]
    no_traceback(res)
    (fail,) = [ln for ln in res.stdout.splitlines() if ln.startswith("FAIL")]
    assert fail.startswith("FAIL  convert: paddle2onnx failed")
    assert not (tmp_path / "o" / "inference.onnx").exists()


def test_bad_export_input_is_a_usage_error(tmp_path: Path) -> None:
    res = run_cli(["models", "export", str(tmp_path / "nope"), "--to", "onnx"])
    assert res.returncode == 2 and "not a directory" in res.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run_cli(["models", "export", str(empty), "--to", "onnx"])
    assert res.returncode == 2 and "needs inference.pdmodel" in res.stderr
    no_traceback(res)


# A Python where paddle2onnx cannot be imported, as on a machine without the `backends` extra: an import hook
# planted through sitecustomize, in the harness process and the converter child alike.
_NO_PADDLE2ONNX = """
import sys

class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name == "paddle2onnx" or name.startswith("paddle2onnx."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Missing())
"""


def test_missing_paddle2onnx_is_a_setup_error_not_a_finding(tmp_path: Path) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_NO_PADDLE2ONNX, encoding="utf-8")
    det = prepare_bundled(EngineSettings()).det
    out = tmp_path / "det-onnx"
    res = run_cli(["models", "export", str(det), "--to", "onnx", "--out", str(out), *FEW],
                  env={"PYTHONPATH": str(hook)})
    assert res.returncode == 2, res.stdout[-3000:] + res.stderr[-2000:]
    assert res.stderr == ("ocr-harness: error: models export needs paddle2onnx, which is not installed in this "
                          "Python (pip install 'ocr-harness[backends]')\n")
    assert res.stdout == "" and not out.exists()
