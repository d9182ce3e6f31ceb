"""The paddle backend under its historical name: `harness.engine.OcrEngine` is what `engine.factory` callables
wrap or subclass. The code lives in `harness.backends.paddle.engine`."""

from __future__ import annotations

from harness.backends.paddle.engine import (OFFLINE_ENV, OcrEngine, paddleocr_kwargs, pipeline_kwargs, set_offline_env,
                                     to_canonical)

__all__ = ["OFFLINE_ENV", "OcrEngine", "paddleocr_kwargs", "pipeline_kwargs", "set_offline_env", "to_canonical"]
