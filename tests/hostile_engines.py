"""Engines whose answer for chosen images cannot be written to a report, loaded through `engine.factory` over the
`inkbands` backend (tests/dummy_backend.py: real images, seconds per run).

HOSTILE_IDS = comma-separated image ids; HOSTILE_KIND = nan | inf | surrogate | float32 (what line 0 becomes).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
from dummy_backend import InkBands

from harness.model.results import OcrResult


def _spoil(result: OcrResult, kind: str) -> OcrResult:
    first = result.lines[0]
    if kind == "surrogate":
        first = dataclasses.replace(first, text=first.text + "\ud800")
    elif kind == "float32":
        first = dataclasses.replace(first, score=np.float32(first.score))
    else:
        first = dataclasses.replace(first, score=float(kind))
    return dataclasses.replace(result, lines=(first, *result.lines[1:]))


class HostileInkBands(InkBands):
    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        targets = set(os.environ.get("HOSTILE_IDS", "").split(","))
        kind = os.environ.get("HOSTILE_KIND", "nan")
        return [_spoil(r, kind) if r.image_id in targets and r.lines else r for r in super().predict(images, image_ids)]
