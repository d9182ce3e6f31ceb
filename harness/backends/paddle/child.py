"""Paddle work in a child interpreter, and the model files it works on.

Why a child: `FLAGS_enable_pir_api` is read once, at `import paddle`, so reading an old-format program needs a
process of its own; `TranslatedLayer.train()` followed by `.eval()` aborts the process; and a static program
loaded for inspection must not linger in the caller's scope when it later runs PaddleOCR.

Protocol: the parent writes `request.json` (+ `.npy` arrays, never pickles) into a temp dir and runs
`python -m harness.backends.paddle.child TASK DIR`; the child writes `result.json` (+ arrays) back. A task is a
function `(payload, arrays) -> (result, arrays)` that its module registers under a name with `@child_task(name)`;
the parent passes its `module:function` to the child, which imports it there only.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from harness.util.errors import UserError

ProgramFormat = Literal["pdmodel", "pir-json"]
Arrays = dict[str, np.ndarray]

Task = Callable[[dict[str, Any], "Arrays"], tuple[dict[str, Any], "Arrays"]]
# name -> `module:function`, filled by the modules that own the tasks (the model-level checks), so this module
# names none of them: a backend imports no check.
TASKS: dict[str, str] = {}


def child_task(name: str) -> Callable[[Task], Task]:
    """Registers the decorated function as child task `name` (errors and crash messages name the task)."""
    def register(func: Task) -> Task:
        TASKS[name] = f"{func.__module__}:{func.__qualname__}"
        return func
    return register

DEFAULT_TIMEOUT_S = 600.0
TIMEOUT_SCALE_ENV = "OCR_HARNESS_TIMEOUT_SCALE"  # multiplies every child's time limit (a slow or crowded machine)


def timeout_scale() -> float:
    """The factor $OCR_HARNESS_TIMEOUT_SCALE sets (default 1); anything but a positive finite number is exit 2."""
    raw = os.environ.get(TIMEOUT_SCALE_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        scale = float(raw)
    except ValueError:
        scale = math.nan
    if not math.isfinite(scale) or scale <= 0:
        raise UserError(f"${TIMEOUT_SCALE_ENV}: {raw[:40]!r} is not a positive number (it multiplies the time "
                        "limits of the harness's child processes)")
    return scale


class ChildError(RuntimeError):
    """The child died (signal, exception, timeout): an internal failure, not a check verdict."""


# The program file of each format, the one Paddle 3 loads first listed first.
PROGRAM_FILES: tuple[tuple[ProgramFormat, str], ...] = (("pir-json", ".json"), ("pdmodel", ".pdmodel"))


@dataclass(frozen=True)
class ModelFiles:
    """One Paddle inference model: `<prefix>.pdmodel` or `<prefix>.json`, plus `<prefix>.pdiparams`."""

    prefix: Path
    format: ProgramFormat

    @property
    def program_path(self) -> Path:
        return self.prefix.with_name(self.prefix.name + (".json" if self.format == "pir-json" else ".pdmodel"))

    @property
    def params_path(self) -> Path:
        return self.prefix.with_name(self.prefix.name + ".pdiparams")

    @property
    def pir(self) -> bool:
        """The value `FLAGS_enable_pir_api` must have in the process that loads this program."""
        return self.format == "pir-json"


def locate_model(model_dir: Path) -> ModelFiles:
    """Finds the program in a model dir. A PIR `.json` wins over a `.pdmodel`, as in Paddle 3 inference."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UserError(f"{model_dir}: not a directory")
    stems = sorted(p.name[: -len(".pdiparams")] for p in model_dir.glob("*.pdiparams"))
    found: list[ModelFiles] = []
    for stem in stems:
        for fmt, ext in PROGRAM_FILES:
            if (model_dir / (stem + ext)).is_file():
                found.append(ModelFiles(model_dir / stem, fmt))
                break
    if not found:
        raise UserError(f"{model_dir}: no Paddle inference model (need inference.pdmodel or inference.json "
                        "next to inference.pdiparams)")
    preferred = [m for m in found if m.prefix.name == "inference"]
    if preferred:
        return preferred[0]
    if len(found) > 1:
        raise UserError(f"{model_dir}: several models ({', '.join(m.prefix.name for m in found)}); "
                        "keep one per directory")
    return found[0]


def run_in_child(task: str, payload: dict[str, Any], *, pir: bool, arrays: Arrays | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S) -> tuple[dict[str, Any], Arrays]:
    """Runs `TASKS[task]` in a fresh interpreter with `FLAGS_enable_pir_api` set; returns its result."""
    if task not in TASKS:
        raise ValueError(f"unknown child task {task!r}")
    env = dict(os.environ)
    env["FLAGS_enable_pir_api"] = "1" if pir else "0"
    env.setdefault("GLOG_minloglevel", "2")  # Paddle's per-run INFO lines are noise in a captured stderr
    package_root = str(Path(__file__).resolve().parents[3])  # the dir holding `harness`: a source checkout too
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryDirectory(prefix="harness-child-") as tmp:
        work = Path(tmp)
        _write(work, "request", payload, arrays or {})
        cmd = [sys.executable, "-m", "harness.backends.paddle.child", task, TASKS[task], str(work)]
        limit = timeout * timeout_scale()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            raise ChildError(f"{task}: child process timed out after {limit:.4g} s, its limit for this work "
                             f"(${TIMEOUT_SCALE_ENV}=2 doubles every child's limit)") from None
        if proc.returncode != 0:
            raise ChildError(f"{task}: child process {_describe_exit(proc.returncode)}\n{_tail(proc.stderr)}")
        return _read(work, "result")


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _write(work: Path, name: str, payload: dict[str, Any], arrays: Arrays) -> None:
    (work / f"{name}.json").write_text(json.dumps({"payload": payload, "arrays": sorted(arrays)}), "utf-8")
    for key, arr in arrays.items():
        np.save(work / f"{name}.{key}.npy", np.ascontiguousarray(arr), allow_pickle=False)


def _read(work: Path, name: str) -> tuple[dict[str, Any], Arrays]:
    doc = json.loads((work / f"{name}.json").read_text("utf-8"))
    arrays = {key: np.load(work / f"{name}.{key}.npy", allow_pickle=False) for key in doc["arrays"]}
    return doc["payload"], arrays


def _child_main(argv: list[str]) -> int:
    target, work = argv[1], Path(argv[2])  # argv[0], the task's name, shows in `ps`
    module_name, func_name = target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    payload, arrays = _read(work, "request")
    result, out_arrays = func(payload, arrays)
    _write(work, "result", result, out_arrays)
    return 0


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
