"""The onnxruntime backend: PaddleOCR's pipeline with `engine="onnxruntime"`.

PaddleX 3.7 runs `inference.onnx` from each model dir through ONNX Runtime with its own pre- and
post-processing, so only the runtime differs from the paddle backend: same resize, same DB post-processing,
same CTC decoding. Loaded in a worker process like the paddle backend (a native crash stays an image's failure).
"""

from __future__ import annotations

from typing import Any

from harness.backends.onnxruntime.settings import onnxruntime_settings
from harness.backends.paddle.engine import OcrEngine, pipeline_kwargs
from harness.model.modeldirs import ModelDirs
from harness.model.settings import EngineSettings


def onnxruntime_kwargs(settings: EngineSettings, dirs: ModelDirs) -> dict[str, Any]:
    ort = onnxruntime_settings(settings)
    config: dict[str, Any] = {"intra_op_num_threads": ort.resolved_threads(), "providers": ["CPUExecutionProvider"]}
    if ort.graph_optimization_level is not None:
        config["graph_optimization_level"] = ort.graph_optimization_level
    return {**pipeline_kwargs(settings, dirs), "device": "cpu", "engine": "onnxruntime", "engine_config": config}


class OnnxRuntimeEngine(OcrEngine):
    name = "onnxruntime"

    def _kwargs(self, settings: EngineSettings, dirs: ModelDirs) -> dict[str, Any]:
        return onnxruntime_kwargs(settings, dirs)
