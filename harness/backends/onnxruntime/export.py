"""`ocr-harness models export MODEL_DIR --to onnx`: convert a Paddle model dir with paddle2onnx, then prove
the result: ONNX Runtime must load it, and the pipeline with it must read the corpus like Paddle does, within
the profile's parity tolerances.

Conversion and loading run in child processes (a converter or runtime can die natively); a failure at either
step is a finding reported in one line with the tool's own error (exit 1), never a traceback. A tool that is not
installed at all is a setup error (exit 2, `missing_tool`), found before anything runs: it says nothing about
the model. The agreement step (harness.run.pipeline.export_agreement) runs the exported model in the onnxruntime backend
against the paddle backend with the source dir, image by image and line by line.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.util.errors import UserError

ONNX_FILE = "inference.onnx"
# Lines a tool prints that are not its error: progress, warnings, banners, tracebacks' frames.
_NOISE = re.compile(r"^\s*(\[\w+\]\s*)?(warning|warn|info|\[paddle2onnx\] (start|load|model file))|^\s*File \"|"
                    r"^\s*warnings\.warn|^Traceback|^\s*\^+\s*$|^\s*~+", re.I)


# The modules the export runs, in the order it needs them; all ship in the `backends` extra.
_TOOLS = ("paddle2onnx", "onnxoptimizer", "onnxruntime")


def missing_tool() -> str | None:
    """A one-line UserError message for the first tool this Python cannot import, or None."""
    for module in _TOOLS:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken install or a blocked import: as good as missing
            found = False
        if not found:
            return (f"models export needs {module}, which is not installed in this Python "
                    "(pip install 'ocr-harness[backends]')")
    return None


@dataclass(frozen=True)
class StepResult:
    ok: bool
    message: str
    seconds: float = 0.0


def model_kind(model_dir: Path) -> str:
    """det or rec, from the dir's inference.yml (the post-processing says which model it is)."""
    yml = model_dir / "inference.yml"
    if not yml.is_file():
        raise UserError(f"{model_dir}: no inference.yml (needed to tell det from rec and to run the export)")
    try:
        content = yaml.safe_load(yml.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"{yml}: cannot read: {e}") from None
    post = str((content.get("PostProcess") or {}).get("name", ""))
    if post.startswith("DB"):
        return "det"
    if "CTC" in post:
        return "rec"
    raise UserError(f"{yml}: PostProcess.name {post or '(missing)'!r} is neither a DB detector nor a CTC recognizer")


def check_source(model_dir: Path) -> Path:
    path = model_dir.expanduser().resolve()
    if not path.is_dir():
        raise UserError(f"{path}: not a directory")
    if not (path / "inference.pdiparams").is_file() or not (
            (path / "inference.pdmodel").is_file() or (path / "inference.json").is_file()):
        raise UserError(f"{path}: needs inference.pdmodel (or inference.json) and inference.pdiparams")
    return path


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ERROR = re.compile(r"\[ERROR\]|Error\b|Exception\b|\bFAIL\b|\bFail:")
_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s*\[ERROR\]\s*|^[\w.]+\.(?=\w*(Error|Fail|Exception)\b)")


def one_line(text: str) -> str:
    """The tool's error in one line: the last line that says error (else the last that is not progress, a
    warning or a traceback frame), without colour codes, timestamps or module paths."""
    lines = [ln.strip() for ln in _ANSI.sub("", text).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not _NOISE.search(ln)]
    errors = [ln for ln in useful if _ERROR.search(ln)]
    line = (errors or useful or lines or ["no output"])[-1]
    return re.sub(r"\s+", " ", _PREFIX.sub("", line))[:400]


def convert(source: Path, out: Path, opset: int, timeout_s: float = 1800) -> StepResult:
    import time

    out.mkdir(parents=True, exist_ok=True)
    model_file = "inference.json" if (source / "inference.json").is_file() else "inference.pdmodel"
    # onnxoptimizer, not paddle2onnx's default polygraphy: polygraphy pip-installs onnx_graphsurgeon at run time.
    cmd = [sys.executable, "-m", "paddle2onnx.command", "--model_dir", str(source), "--model_filename", model_file,
           "--params_filename", "inference.pdiparams", "--save_file", str(out / ONNX_FILE),
           "--opset_version", str(opset), "--optimize_tool", "onnxoptimizer"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, "PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK": "True",
                                   "POLYGRAPHY_AUTOINSTALL_DEPS": "0"})
    except subprocess.TimeoutExpired:
        return StepResult(False, f"paddle2onnx did not finish within {timeout_s:.0f} s")
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or not (out / ONNX_FILE).is_file():
        return StepResult(False, f"paddle2onnx failed (exit {proc.returncode}): {one_line(proc.stderr + proc.stdout)}",
                          seconds)
    shutil.copyfile(source / "inference.yml", out / "inference.yml")
    return StepResult(True, f"converted in {seconds:.0f} s", seconds)


_LOAD_PROBE = ("import sys, onnxruntime as ort\n"
               "s = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])\n"
               "print(ort.__version__, [i.name for i in s.get_inputs()], [o.name for o in s.get_outputs()])\n")


def load_check(onnx_file: Path, timeout_s: float = 600) -> StepResult:
    proc = subprocess.run([sys.executable, "-c", _LOAD_PROBE, str(onnx_file)], capture_output=True, text=True,
                          timeout=timeout_s)
    if proc.returncode != 0:
        return StepResult(False, f"onnxruntime cannot load {onnx_file.name}: {one_line(proc.stderr)}")
    return StepResult(True, f"onnxruntime {proc.stdout.strip()}")
