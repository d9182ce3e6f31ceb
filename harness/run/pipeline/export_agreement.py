"""The last step of `ocr-harness models export`: the exported model must read the corpus like its source.

The exported model runs in the onnxruntime backend (the other model from the pinned ONNX pack) against the paddle
backend with the source dir (the other model from the Paddle pack), image by image and line by line, judged by
the parity check within the profile's parity tolerances. Conversion and loading: harness.backends.onnxruntime.export.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.backends import resolve_engine
from harness.backends.onnxruntime.settings import NAME as ONNX
from harness.backends.paddle.spec import NAME as PADDLE
from harness.checks.parity import parity_check, reference_settings
from harness.execution.scheduler import infer_all
from harness.model.outcome import CheckResult
from harness.model.settings import Profile, with_model_dir
from harness.run.pipeline.plan import plan


def agreement(profile: Profile, base: Path, source: Path, exported: Path, kind: str) -> CheckResult:
    """The parity check on the profile's corpus selection: exported model (ONNX Runtime) vs source (Paddle)."""
    paddle = with_model_dir(reference_settings(profile.engine, PADDLE), kind, str(source))
    onnx = with_model_dir(reference_settings(profile.engine, ONNX), kind, str(exported))
    # Only what the export changes differs between the two sides: same corpus, neutral settings and goldens off.
    p = plan(profile.replace(engine=paddle), base)
    paddle, paddle_dirs = resolve_engine(paddle, base, profile.model_cache)
    onnx, onnx_dirs = resolve_engine(onnx, base, profile.model_cache)
    reference = infer_all(dataclasses.replace(p, dirs=paddle_dirs), paddle, "export-paddle", 1)
    converted = infer_all(dataclasses.replace(p, dirs=onnx_dirs), onnx, "export-onnx", 1)
    keys = {it.id: dict(it.fields) for it in p.items if it.fields}
    return parity_check(PADDLE, reference, ONNX, converted, profile.parity_tolerances, keys)
