"""The inference bookkeeping every worker does around its engine, in one place.

A worker process (harness.execution.worker) and the in-process worker (harness.execution.local) differ in
where the engine lives and which clock prices it; what they record per call is the same: read and verify the
images, check the engine left its input arrays untouched, time each repeat and the fixed yardstick around them
(harness.execution.normaliser), and turn an unreadable image or the engine's exception into that request's
error instead of ending the worker.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.corpus.loader import read_image
from harness.execution.normaliser import peak_rss_kib, reference_seconds
from harness.model.inference import ImageOutcome, ImageRequest, TransportNotes
from harness.model.results import OcrResult, result_problem
from harness.util.errors import ImageError
from harness.util.values import printable

Notes = Callable[[str], TransportNotes | None]  # what a remote engine's transport did for one image


@dataclass(frozen=True)
class CostClock:
    """How the engine's cost and the yardstick next to it are priced (ImageOutcome.cost_clock)."""

    name: str
    cost: Callable[[], float] | None  # None: the predict's own wall time is its cost
    reference: Callable[[], float]  # the clock reference_seconds reads


# In a worker process: CPU seconds, the engine's over every thread of its process, the yardstick's of its thread.
CPU = CostClock("cpu", time.process_time, time.thread_time)
# In the harness process: wall seconds, because this process's CPU is not the engine's (a service's is elsewhere).
WALL = CostClock("wall", None, time.perf_counter)


@dataclass(frozen=True)
class _Measured:
    runs: tuple[list[OcrResult], ...]  # per repeat, one result per request
    predict_s: tuple[float, ...]  # per repeat, per image
    cost_s: tuple[float, ...]
    reference_s: float
    mutated: tuple[bool, ...]  # per request


def digest(array: Any) -> str:
    return hashlib.blake2b(array.tobytes(), digest_size=16).hexdigest()


class InferenceCore:
    """Runs requests through an engine and returns one `ImageOutcome` per request, never raising for an image
    or an engine error; counts the images served, for the speed check's cold/warm split."""

    def __init__(self, max_pixels: int, max_bytes: int, clock: CostClock) -> None:
        self.max_pixels, self.max_bytes, self.clock = max_pixels, max_bytes, clock
        self._served = 0

    def infer(self, engine: Any, requests: Sequence[ImageRequest], repeats: int,
              notes: Notes | None = None) -> list[ImageOutcome]:
        """`repeats` predicts of `requests` together, one call each (one request: the service path)."""
        note = notes or (lambda image_id: None)
        try:
            images, read_s = self._read(requests)
        except ImageError as e:
            return [ImageOutcome(r.image_id, error=str(e)) for r in requests]
        try:
            measured = self._predict(engine, images, [r.image_id for r in requests], repeats)
        except Exception as e:  # the engine's own message (a service's error) is the image's error
            return [ImageOutcome(r.image_id, error=printable(f"{type(e).__name__}: {e}"), transport=note(r.image_id))
                    for r in requests]
        first_call = self._served == 0
        self._served += len(requests)
        peak = peak_rss_kib()  # this process: the worker's, or for an in-process engine the harness's
        outcomes = []
        for i, r in enumerate(requests):
            bad = self._bad_answer(measured, i, r.image_id, len(requests))
            if bad is not None:
                outcomes.append(ImageOutcome(r.image_id, error=bad, transport=note(r.image_id)))
                continue
            outcomes.append(ImageOutcome(
                image_id=r.image_id, runs=tuple(run[i] for run in measured.runs), predict_s=measured.predict_s,
                read_s=read_s, mutated=measured.mutated[i], cost_s=measured.cost_s, reference_s=measured.reference_s,
                cost_clock=self.clock.name, peak_rss_kib=peak, worker_pid=os.getpid(), served=self._served,
                first_call=first_call, transport=note(r.image_id)))
        return outcomes

    @staticmethod
    def _bad_answer(measured: _Measured, i: int, image_id: str, images: int) -> str | None:
        """The line that fails image `i` when an engine's answer for it cannot be reported, or None."""
        for repeat, run in enumerate(measured.runs, start=1):
            if not isinstance(run, list | tuple) or len(run) != images:
                return f"unusable engine answer: predict returned {type(run).__name__} for {images} images"
            if (why := result_problem(run[i])) is not None:
                return f"unusable engine answer for {image_id} (repeat {repeat}): {why}"
        return None

    def _read(self, requests: Sequence[ImageRequest]) -> tuple[list[Any], float]:
        """The decoded images (only paths cross a pipe) and the read time per image."""
        t0 = time.perf_counter()
        images = [read_image(Path(r.path), expected_sha256=r.sha256, max_pixels=self.max_pixels,
                             max_bytes=self.max_bytes)
                  for r in requests]
        return images, (time.perf_counter() - t0) / len(requests)

    def _predict(self, engine: Any, images: list[Any], ids: list[str], repeats: int) -> _Measured:
        before = [digest(img) for img in images]
        runs: list[list[OcrResult]] = []
        times: list[float] = []
        costs: list[float] = []
        cost = self.clock.cost
        reference = reference_seconds(self.clock.reference)
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), cost() if cost else 0.0
            runs.append(engine.predict(images, ids))
            times.append((time.perf_counter() - t0) / len(ids))
            if cost:
                costs.append((cost() - c0) / len(ids))  # every thread of the engine
        reference = (reference + reference_seconds(self.clock.reference)) / 2  # before and after the predicts
        mutated = tuple(digest(img) != b for img, b in zip(images, before, strict=True))
        return _Measured(tuple(runs), tuple(times), tuple(costs) if cost else tuple(times), reference, mutated)
