"""A worker that runs its backend in this process, for backends with nothing native to crash (the http client).

Same interface and same bookkeeping as `harness.execution.worker.Worker` (one inference core,
harness.execution.inference: reads the images, checks the backend left them untouched, times each predict, turns
an exception into that request's error), so the scheduler drives both alike.
With no process to kill, `timeout_s` (the profile's image_timeout_s) is handed to a remote backend, which keeps
each image within it; what its transport did per image (retries, reported settings) goes into the outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from harness.backends.base import RemoteBackend
from harness.execution.inference import WALL, InferenceCore
from harness.execution.worker import WorkerError, WorkerSpec
from harness.model.inference import ImageOutcome, ImageRequest, TransportNotes


class LocalWorker:
    def __init__(self, spec: WorkerSpec, factory: Callable[..., Any], timeout_s: float = 300.0) -> None:
        self.spec = spec
        self.timeout_s = timeout_s
        self.load_s: list[float] = []
        self._factory = factory
        self._engine: Any = None
        # Wall seconds: this process's CPU is not the engine's; its peak memory is the harness's own.
        self._core = InferenceCore(spec.max_pixels, spec.max_bytes, WALL)

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
        return self._core.infer(self._engine, requests, repeats, notes=self._notes)

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
