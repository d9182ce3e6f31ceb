"""A backend from outside the harness, in one module: `inkbands`, a tiny deterministic engine (numpy only).

Registered by naming this module in `$OCR_HARNESS_BACKENDS` or in the `ocr_harness.backends` entry point group
(tests/backends/test_registry.py does both, with tests/ on the path); nothing in harness/ names it. It reads real
corpus images: every horizontal band of dark rows is a line, its box the band's ink extent, its text the band's ink
pixel count and its score the ink's share of the box. Its "model" is tests/dummy_backend_model/inference.json
(the ink threshold), hashed into the stack record like any model file, with its own facts beside it.

It owns a settings table, `[engine.inkbands]` (`InkBandsSettings`): read and validated by its own type, refused
on another backend's profile, recorded in report.json and in the engine settings hash, and read by the engine.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends import registry
from harness.backends.spec import BackendSpec
from harness.model.catalogue import BackendRules
from harness.model.modeldirs import ModelDirs
from harness.model.results import Line, OcrResult, reading_order
from harness.model.settings import EngineSettings, require
from harness.util.packages import package_version

NAME = "inkbands"
MODEL_DIR = Path(__file__).resolve().parent / "dummy_backend_model"


@dataclass(frozen=True)
class InkBandsSettings:
    """`[engine.inkbands]`: None takes the model's own parameter."""

    min_band_rows: int | None = None  # a band of fewer dark rows is no line
    ink_below: int | None = None  # a pixel darker than this is ink

    def validate(self, where: str) -> None:
        require(self.min_band_rows is None or 1 <= self.min_band_rows <= 1000, f"{where}.min_band_rows",
                "must be in 1..1000")
        require(self.ink_below is None or 1 <= self.ink_below <= 255, f"{where}.ink_below", "must be in 1..255")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class InkBands:
    """The Backend protocol (harness.backends.base): loaded once per worker, reused for every image."""

    name = NAME

    def __init__(self, settings: EngineSettings, dirs: ModelDirs) -> None:
        params = json.loads((dirs.det / "inference.json").read_text(encoding="utf-8"))
        own = settings.table(NAME, InkBandsSettings)
        self.ink_below = own.ink_below if own.ink_below is not None else int(params["ink_below"])
        self.min_rows = own.min_band_rows if own.min_band_rows is not None else int(params["min_band_rows"])

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
    rules=BackendRules(NAME, settings=InkBandsSettings, hashed_table=True),
    engine=f"{__name__}:InkBands",
    resolve_models=model_dirs,
    stack=stack,
    owned_stack_keys=(NAME,),
))
