"""The paddle backend: a thin, explicit wrapper around `paddleocr.PaddleOCR` 3.x returning canonical results.

Every setting PaddleOCR would otherwise pick for us (model names, sub-models, thread count, oneDNN,
detection limits) is passed explicitly, so a run is described completely by its `EngineSettings`.
Import this module only inside a worker process: it loads Paddle.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.backends.identity import named

from harness.model.modeldirs import ModelDirs
from harness.model.results import Line, OcrResult, reading_order
from harness.model.settings import EngineSettings

OFFLINE_ENV = {
    # paddlex probes the model hubs at import time unless this is set (any non-empty value).
    "PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK": "True",
}


def set_offline_env() -> None:
    """Must run before paddlex is imported."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


ISA_HOLD_ENV = "ONEDNN_MAX_CPU_ISA"  # as harness.environment reads it into the stack


def hold_isa(isa: str) -> None:
    """Holds this process's oneDNN to `isa` (ONEDNN_MAX_CPU_ISA, read once, when oneDNN first runs): only a process
    that has not loaded Paddle yet can be held, so a worker that has is refused rather than silently left alone."""
    if "paddle" in sys.modules and os.environ.get(ISA_HOLD_ENV) != isa:
        raise RuntimeError(f"oneDNN cannot be held to {isa} in a process that has loaded Paddle already")
    os.environ[ISA_HOLD_ENV] = isa


def pipeline_kwargs(settings: EngineSettings, dirs: ModelDirs) -> dict[str, Any]:
    """The backend-neutral `PaddleOCR` arguments: models, sub-models, detection limits, thresholds, batch."""
    settings = named(settings, dirs)  # PaddleX refuses a dir without its own model name
    return {
        "text_detection_model_name": settings.det_model_name,
        "text_detection_model_dir": str(dirs.det),
        "text_recognition_model_name": settings.rec_model_name,
        "text_recognition_model_dir": str(dirs.rec),
        "text_recognition_batch_size": settings.rec_batch_size,
        "use_doc_orientation_classify": settings.use_doc_orientation_classify,
        "use_doc_unwarping": settings.use_doc_unwarping,
        "use_textline_orientation": settings.use_textline_orientation,
        "text_det_limit_side_len": settings.det_limit_side_len,
        "text_det_limit_type": settings.det_limit_type,
        "text_det_thresh": settings.det_thresh,
        "text_det_box_thresh": settings.det_box_thresh,
        "text_det_unclip_ratio": settings.det_unclip_ratio,
        "text_rec_score_thresh": settings.rec_score_thresh,
    }


def paddleocr_kwargs(settings: EngineSettings, dirs: ModelDirs) -> dict[str, Any]:
    """Neutral arguments plus the paddle backend's own (device, oneDNN, threads, passes removed)."""
    kwargs = {
        **pipeline_kwargs(settings, dirs),
        "device": settings.device,
        "enable_mkldnn": settings.enable_mkldnn,
        "cpu_threads": settings.resolved_threads(),
    }
    if settings.delete_passes is not None:
        kwargs.update(engine="paddle_static", engine_config={**static_engine_config(settings),
                                                             "delete_pass": list(settings.delete_passes)})
    return kwargs


def static_engine_config(settings: EngineSettings) -> dict[str, Any]:
    """The paddle_static engine config PaddleOCR builds from enable_mkldnn/cpu_threads when it is given none: a
    user `engine_config` REPLACES it, so one that only removes passes must carry it over. Built by PaddleOCR's
    own (private) function, so that it stays what PaddleOCR does: an empty `delete_pass` list reads
    bit-identically to the main path (tests/backends/paddle/test_passes.py)."""
    from paddleocr._common_args import _build_paddle_static_engine_config, parse_common_args

    common = parse_common_args({"device": settings.device, "enable_mkldnn": settings.enable_mkldnn,
                                "cpu_threads": settings.resolved_threads()}, default_enable_hpi=False)
    config: dict[str, Any] = _build_paddle_static_engine_config(common, "gpu" if settings.device.startswith("gpu")
                                                                 else "cpu")
    return config


class OcrEngine:
    """The paddle backend: one loaded pipeline, reused for every image and repeat of a worker."""

    name = "paddle"

    def __init__(self, settings: EngineSettings, dirs: ModelDirs) -> None:
        set_offline_env()
        if settings.onednn_max_isa is not None:
            hold_isa(settings.onednn_max_isa)
        from paddleocr import PaddleOCR  # heavy import, deliberately late

        self.settings = settings
        self.dirs = dirs
        self._ocr = PaddleOCR(**self._kwargs(settings, dirs))

    def _kwargs(self, settings: EngineSettings, dirs: ModelDirs) -> dict[str, Any]:
        return paddleocr_kwargs(settings, dirs)

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        """Several images in one `predict` call (one image is the service path)."""
        raw = self._ocr.predict(list(images) if len(images) > 1 else images[0])
        if len(raw) != len(images):
            raise RuntimeError(f"PaddleOCR returned {len(raw)} results for {len(images)} images")
        return [to_canonical(r, image_id, img) for r, image_id, img in zip(raw, image_ids, images, strict=True)]

    def close(self) -> None:
        self._ocr = None


def to_canonical(raw: Any, image_id: str, image: np.ndarray) -> OcrResult:
    """A PaddleOCR / PaddleX OCR result (dict-like: rec_texts, rec_scores, rec_polys) -> canonical result."""
    texts, scores, polys = raw["rec_texts"], raw["rec_scores"], raw["rec_polys"]
    if not (len(texts) == len(scores) == len(polys)):
        raise RuntimeError(f"inconsistent OCR result for {image_id}: "
                           f"{len(texts)} texts, {len(scores)} scores, {len(polys)} polygons")
    lines = [
        Line(text=str(t), score=float(s), poly=tuple((int(x), int(y)) for x, y in np.asarray(p).reshape(-1, 2)))
        for t, s, p in zip(texts, scores, polys, strict=True)
    ]
    height, width = image.shape[:2]
    return OcrResult(image_id=image_id, width=int(width), height=int(height), lines=reading_order(lines))
