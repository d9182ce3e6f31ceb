"""A worker that runs its backend in this process, for backends with nothing native to crash (the http client).

Same interface and same bookkeeping as `harness.execution.worker.Worker` (reads the images, checks the backend left them
untouched, times each predict, turns an exception into that request's error), so the runner drives both alike.
With no process to kill, `timeout_s` (the profile's image_timeout_s) is handed to a remote backend, which keeps
each image within it; what its transport did per image (retries, reported settings) goes into the outcome.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.backends.base import RemoteBackend
from harness.corpus.loader import read_image
from harness.model.inference import ImageOutcome, ImageRequest, TransportNotes
from harness.execution.normaliser import peak_rss_kib, reference_seconds
from harness.util.errors import ImageError
from harness.execution.worker import WorkerError, WorkerSpec, _digest


class LocalWorker:
    def __init__(self, spec: WorkerSpec, factory: Callable[..., Any], timeout_s: float = 300.0) -> None:
        self.spec = spec
        self.timeout_s = timeout_s
        self.load_s: list[float] = []
        self._factory = factory
        self._engine: Any = None
        self._served = 0

    def __enter__(self) -> LocalWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return None

    @property
    def alive(self) -> bool:
        return self._engine is not None

    def start(self) -> None:
        if self._engine is not None:
            return
        t0 = time.perf_counter()
        try:
            self._engine = self._factory(self.spec.settings, self.spec.dirs)
        except Exception as e:
            raise WorkerError(f"{self.spec.label} backend: could not start: {type(e).__name__}: {e}") from None
        if isinstance(self._engine, RemoteBackend):  # no process to kill: the backend itself keeps the time
            self._engine.set_image_timeout(self.timeout_s)
        self.load_s.append(time.perf_counter() - t0)

    def infer(self, requests: list[ImageRequest], repeats: int = 1) -> list[ImageOutcome]:
        self.start()
        try:
            t0 = time.perf_counter()
            images = [read_image(Path(r.path), expected_sha256=r.sha256, max_pixels=self.spec.max_pixels,
                                 max_bytes=self.spec.max_bytes)
                      for r in requests]
            read_s = (time.perf_counter() - t0) / len(requests)
        except ImageError as e:
            return [ImageOutcome(r.image_id, error=str(e)) for r in requests]
        before = [_digest(img) for img in images]
        runs = []
        times: list[float] = []
        try:
            # Wall seconds: this process's CPU is not the engine's (a service's is elsewhere).
            reference = reference_seconds(time.perf_counter)
            for _ in range(repeats):
                t0 = time.perf_counter()
                runs.append(self._engine.predict(images, [r.image_id for r in requests]))
                times.append((time.perf_counter() - t0) / len(requests))
            reference = (reference + reference_seconds(time.perf_counter)) / 2
        except Exception as e:  # the backend's own message (a service's error) is the image's error
            return [ImageOutcome(r.image_id, error=f"{type(e).__name__}: {e}", transport=self._notes(r.image_id))
                    for r in requests]
        mutated = [_digest(img) != b for img, b in zip(images, before, strict=True)]
        first_call = self._served == 0
        self._served += len(requests)
        peak = peak_rss_kib()  # the harness process: an in-process backend's memory is its memory
        return [ImageOutcome(image_id=r.image_id, runs=tuple(run[i] for run in runs), predict_s=tuple(times),
                             read_s=read_s, mutated=mutated[i], cost_s=tuple(times), reference_s=reference,
                             cost_clock="wall", peak_rss_kib=peak, worker_pid=os.getpid(), served=self._served,
                             first_call=first_call,
                             transport=self._notes(r.image_id))
                for i, r in enumerate(requests)]

    def _notes(self, image_id: str) -> TransportNotes | None:
        if isinstance(self._engine, RemoteBackend):
            return self._engine.take_notes(image_id)
        return None

    def close(self) -> None:
        if self._engine is not None:
            close = getattr(self._engine, "close", None)
            if close is not None:
                close()
        self._engine = None
