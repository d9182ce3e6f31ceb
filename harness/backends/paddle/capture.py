"""Records the tensors the Paddle predictor really receives, inside a worker, for the BN statistics check.

BatchNorm statistics must be measured on what the deployed pipeline feeds its models, not on a re-implementation
of its pre-processing (det resizing/normalisation, rec width bucketing and padding): a re-implementation that
differs in one detail measures another distribution. So the worker wraps PaddleX's static runner `__call__`,
the single place every det and rec batch passes through, and writes each input batch as one `.npy` file:
`<kind>-<pid>-<seq>.npy` in the capture dir, kind `det` or `rec` (decided by the runner's model dir).

Import only inside a worker process that runs the paddle backend.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.model.modeldirs import ModelDirs

KINDS = ("det", "rec")


def captured_files(capture_dir: Path, kind: str) -> list[Path]:
    """The batches one kind of model received, in the order they were fed (per worker process)."""
    return sorted(Path(capture_dir).glob(f"{kind}-*.npy"))


def install_capture(capture_dir: Path, dirs: ModelDirs) -> None:
    """From now on every PaddleX static runner call of this process also writes its input to `capture_dir`."""
    from paddlex.inference.models.runners.paddle_static.runner import PaddleStaticRunner

    capture_dir = Path(capture_dir)
    capture_dir.mkdir(parents=True, exist_ok=True)
    by_dir = {Path(dirs.det).resolve(): "det", Path(dirs.rec).resolve(): "rec"}
    original: Callable[[Any, Sequence[np.ndarray]], Any] = PaddleStaticRunner.__call__
    if getattr(original, "_harness_capture", False):
        return  # installed already (a worker started twice in one process)
    counter = itertools.count()
    pid = os.getpid()

    def call(self: Any, x: Sequence[np.ndarray]) -> Any:
        kind = by_dir.get(Path(self.model_dir).resolve())
        if kind is not None and len(x) == 1:  # det and rec take one image tensor; other models are not ours
            # Saved before running: the predictor copies its input, so this is exactly what it computes on.
            np.save(capture_dir / f"{kind}-{pid}-{next(counter):06d}.npy", np.ascontiguousarray(x[0]),
                    allow_pickle=False)
        return original(self, x)

    call._harness_capture = True  # type: ignore[attr-defined]  # a marker on the function: installed once
    PaddleStaticRunner.__call__ = call
