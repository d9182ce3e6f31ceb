"""Planted faults: engine wrappers loaded in the worker through `engine.factory` (the real engine underneath).

Parameters come from environment variables because the worker is a spawned process.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from harness.engine import OcrEngine
from harness.results import OcrResult


class PerturbingEngine(OcrEngine):
    """Real inference; on every second call for the chosen images, nudges one field of line 0.

    FAULT_FIELD = score | poly; FAULT_IDS = comma-separated image ids."""

    calls = 0

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        results = super().predict(images, image_ids)
        targets = set(os.environ.get("FAULT_IDS", "").split(","))
        field = os.environ.get("FAULT_FIELD", "score")
        out = []
        for r in results:
            if r.image_id in targets and r.lines:
                PerturbingEngine.calls += 1
                if PerturbingEngine.calls % 2 == 0:
                    first = r.lines[0]
                    if field == "score":
                        first = dataclasses.replace(first, score=first.score + 1e-7)
                    else:
                        (x, y), *rest = first.poly
                        first = dataclasses.replace(first, poly=((x + 1, y), *rest))
                    r = dataclasses.replace(r, lines=(first, *r.lines[1:]))
            out.append(r)
        return out


class AbortingEngine(OcrEngine):
    """Real inference, but the process aborts (a real SIGABRT, as Paddle's native crashes do) on FAULT_IDS."""

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        if set(image_ids) & set(os.environ.get("FAULT_IDS", "").split(",")):
            os.abort()
        return super().predict(images, image_ids)


class MutatingEngine(OcrEngine):
    """Real inference that scribbles on its input array, as a careless in-place pre-processing would."""

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        results = super().predict(images, image_ids)
        for img in images:
            img[0, 0] = 255 - img[0, 0]
        return results


def failing_engine(settings: object, dirs: object) -> OcrEngine:
    """A stack whose model cannot load (as paddle 3.3.x + oneDNN can fail on PP-OCRv4 det)."""
    raise NotImplementedError("ConvertPirAttribute2RuntimeAttribute not support (planted)")


class MarkingEngine(OcrEngine):
    """Real inference that leaves a mark per finished image: FAULT_MARK_DIR/<image id> holding the worker's pid,
    so a test knows when an image is done (and which process did it) while the run is still going."""

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        results = super().predict(images, image_ids)
        for image_id in image_ids:
            mark = os.path.join(os.environ["FAULT_MARK_DIR"], image_id)
            with open(mark + ".tmp", "w") as fh:
                fh.write(str(os.getpid()))
            os.replace(mark + ".tmp", mark)  # a reader never sees an empty mark
        return results
