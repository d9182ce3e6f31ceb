"""A backend from outside the harness, in one module: `inkbands`, a tiny deterministic engine (numpy only).

Registered by naming this module in `$OCR_HARNESS_BACKENDS` or in the `ocr_harness.backends` entry point group
(tests/backends/test_registry.py does both, with tests/ on the path); nothing in harness/ names it. It reads real
corpus images: every horizontal band of dark rows is a line, its box the band's ink extent, its text the band's ink
pixel count and its score the ink's share of the box. Its "model" is tests/dummy_backend_model/inference.json
(the ink threshold), hashed into the stack record like any model file, with its own facts beside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends import registry
from harness.backends.spec import BackendSpec
from harness.model.catalogue import BackendRules
from harness.model.modeldirs import ModelDirs
from harness.model.results import Line, OcrResult, reading_order
from harness.model.settings import EngineSettings
from harness.util.packages import package_version

NAME = "inkbands"
MODEL_DIR = Path(__file__).resolve().parent / "dummy_backend_model"


class InkBands:
    """The Backend protocol (harness.backends.base): loaded once per worker, reused for every image."""

    name = NAME

    def __init__(self, settings: EngineSettings, dirs: ModelDirs) -> None:
        params = json.loads((dirs.det / "inference.json").read_text(encoding="utf-8"))
        self.ink_below = int(params["ink_below"])
        self.min_rows = int(params["min_band_rows"])

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        return [self._one(image, image_id) for image, image_id in zip(images, image_ids, strict=True)]

    def _one(self, image: np.ndarray, image_id: str) -> OcrResult:
        gray = image.mean(axis=2) if image.ndim == 3 else image
        ink = gray < self.ink_below
        rows = np.flatnonzero(ink.any(axis=1))
        lines = []
        for band in np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1) if rows.size else []:
            top, bottom = int(band[0]), int(band[-1]) + 1
            if bottom - top < self.min_rows:
                continue
            cols = np.flatnonzero(ink[top:bottom].any(axis=0))
            left, right = int(cols[0]), int(cols[-1]) + 1
            count = int(ink[top:bottom, left:right].sum())
            lines.append(Line(str(count), round(count / ((bottom - top) * (right - left)), 6),
                              ((left, top), (right, top), (right, bottom), (left, bottom))))
        return OcrResult(image_id, int(image.shape[1]), int(image.shape[0]), reading_order(lines))

    def close(self) -> None:
        pass


def model_dirs(settings: EngineSettings, base: Path, cache: str | None = None) -> ModelDirs:
    return ModelDirs(det=MODEL_DIR, rec=MODEL_DIR, source=NAME)


def stack(base: Mapping[str, Any], engine: EngineSettings, facts: Mapping[str, Any] | None) -> dict[str, Any]:
    """Its facts beside the neutral record: the runtime it computes with and its model's parameters."""
    params = json.loads((MODEL_DIR / "inference.json").read_text(encoding="utf-8"))
    return {**base, "backend": NAME, NAME: {"numpy": package_version("numpy"), **params}}


SPEC = registry.register(BackendSpec(
    rules=BackendRules(NAME),
    engine=f"{__name__}:InkBands",
    resolve_models=model_dirs,
    stack=stack,
    owned_stack_keys=(NAME,),
))
