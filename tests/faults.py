"""Planted faults: engine wrappers loaded in the worker through `engine.factory` (the real engine underneath).

Parameters come from environment variables because the worker is a spawned process.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import time
from collections.abc import Sequence

import numpy as np

from harness.engine import OcrEngine
from harness.model.results import OcrResult


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


class ParentKillingEngine(OcrEngine):
    """Real inference, but on FAULT_IDS the worker SIGKILLs the process that supervises it (a Ray actor: as an
    out-of-memory kill or a lost node would end it), after a mark FAULT_MARK_DIR/parent-killed-<id>-<pid>."""

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        for image_id in set(image_ids) & set(os.environ.get("FAULT_IDS", "").split(",")):
            with open(os.path.join(os.environ["FAULT_MARK_DIR"], f"parent-killed-{image_id}-{os.getpid()}"), "w"):
                pass
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(60)  # dies with its parent (the worker's parent-death signal)
        return super().predict(images, image_ids)


class MutatingEngine(OcrEngine):
    """Real inference that scribbles on its input array, as a careless in-place pre-processing would."""

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        results = super().predict(images, image_ids)
        for img in images:
            img[0, 0] = 255 - img[0, 0]
        return results


class RaisingEngine(OcrEngine):
    """Real inference that raises inside predict (as a runtime's error would) on FAULT_IDS."""

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        hit = set(image_ids) & set(os.environ.get("FAULT_IDS", "").split(","))
        if hit:
            raise RuntimeError(f"planted predict failure on {', '.join(sorted(hit))}")
        return super().predict(images, image_ids)


def failing_engine(settings: object, dirs: object) -> OcrEngine:
    """A stack whose model cannot load (as paddle 3.3.x + oneDNN can fail on PP-OCRv4 det)."""
    raise NotImplementedError("ConvertPirAttribute2RuntimeAttribute not support (planted)")


def _drop_decimal_point(match: re.Match[str]) -> str:
    digits = (match.group(2) + match.group(3)).replace(",", "")
    grouped = digits if len(digits) <= 3 else f"{digits[:-3]},{digits[-3:]}"
    return match.group(1) + grouped


class DecimalDroppingEngine(OcrEngine):
    """Real inference whose post-processing loses the decimal point of amounts, as a careless regrouping would:
    '¥6.41' -> '¥641', '￥82775.49' -> '￥8277,549'. Nothing else changes (CER 0.1-0.2 per line)."""

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        results = super().predict(images, image_ids)
        return [dataclasses.replace(r, lines=tuple(dataclasses.replace(line, text=_AMOUNT.sub(_drop_decimal_point,
                                                                                                line.text))
                                                   for line in r.lines))
                for r in results]


_AMOUNT = re.compile(r"([¥￥])([\d,]+)\.(\d{2})")


class Bs1AbortingEngine(OcrEngine):
    """Real inference; the process aborts on FAULT_IDS only when recognition runs at batch size 1 (the service
    path), so the profile path works and only the bs1 path loses the image."""

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        if self.settings.rec_batch_size == 1 and set(image_ids) & set(os.environ.get("FAULT_IDS", "").split(",")):
            os.abort()
        return super().predict(images, image_ids)


class ProcessStateEngine(OcrEngine):
    """Real inference, plus hidden state that outlives the process (as an on-disk cache would): the first
    process to start marks FAULT_STATE; every later process nudges the first line's score by 1e-7. Repeats
    inside one process stay identical, so only a fresh process shows it."""

    def __init__(self, settings: object, dirs: object) -> None:
        super().__init__(settings, dirs)  # type: ignore[arg-type]
        marker = os.environ["FAULT_STATE"]
        try:
            with open(marker, "x"):
                self.later = False
        except FileExistsError:
            self.later = True

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        results = super().predict(images, image_ids)
        if not self.later:
            return results
        return [dataclasses.replace(r, lines=(dataclasses.replace(r.lines[0], score=r.lines[0].score + 1e-7),
                                              *r.lines[1:])) if r.lines else r for r in results]


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


class NightlyFaultsEngine(OcrEngine):
    """The real engine with every fault the nightly is there to catch, each off unless its variable is set, so one
    nightly run proves them all (tests/e2e/test_nightly_catch.py):

    FAULT_REPEAT_ID: line 0's score moves by 1e-7 on every second call of that image in a process (repeat).
    FAULT_MUTATE_ID: the first call writes one pixel of that image's input array (mutation).
    FAULT_BS1_ABORT_ID: the process aborts on that image at recognition batch 1, the service path (batch_paths).
    FAULT_STATE: a marker file; every process started after the first moves scores by 1e-7 (cross_process).
    FAULT_STACK=1: scores move by 0.01 with oneDNN off or with 2 threads (variations), and line 0 reads "X"
    when several images share a call (batch_paths).
    """

    def __init__(self, settings: object, dirs: object) -> None:
        super().__init__(settings, dirs)  # type: ignore[arg-type]
        self.calls: dict[str, int] = {}
        marker = os.environ.get("FAULT_STATE")
        self.later = False
        if marker:
            try:
                with open(marker, "x"):
                    pass
            except FileExistsError:
                self.later = True

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        env = os.environ.get
        if self.settings.rec_batch_size == 1 and env("FAULT_BS1_ABORT_ID") in image_ids:
            os.abort()
        results = super().predict(images, image_ids)
        stack = env("FAULT_STACK") == "1"
        shift = 1e-7 if self.later else 0.0
        if stack and (not self.settings.enable_mkldnn or self.settings.cpu_threads == 2):
            shift += 0.01
        out = []
        for img, r in zip(images, results, strict=True):
            n = self.calls[r.image_id] = self.calls.get(r.image_id, 0) + 1
            if r.image_id == env("FAULT_MUTATE_ID") and n == 1:
                img[0, 0] = 255 - img[0, 0]
            if not r.lines:
                out.append(r)
                continue
            first = r.lines[0]
            moved = shift + (1e-7 if r.image_id == env("FAULT_REPEAT_ID") and n % 2 == 0 else 0.0)
            if moved:
                first = dataclasses.replace(first, score=first.score + moved)
            if stack and len(images) > 1:
                first = dataclasses.replace(first, text="X")
            out.append(dataclasses.replace(r, lines=(first, *r.lines[1:])))
        return out


class DoublePredictEngine(OcrEngine):
    """Real inference run twice per call (a real CPU slowdown inside the worker, not a sleep); same results."""

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        super().predict(images, image_ids)
        return super().predict(images, image_ids)


class HoardingEngine(OcrEngine):
    """Real inference that keeps FAULT_HOARD_MB (default 100) of touched memory alive per call: a leak."""

    hoard: list[np.ndarray] = []

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        mb = int(os.environ.get("FAULT_HOARD_MB", "100"))
        HoardingEngine.hoard.append(np.ones(mb * 1024 * 1024, np.uint8))  # written, so resident
        return super().predict(images, image_ids)
