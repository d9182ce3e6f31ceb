"""Workers, made for a backend and kept loaded across the passes of one run.

A backend with native code runs in a spawned worker process (harness.execution.worker: a crash fails an image,
not the run); one with nothing native to crash runs in this process (harness.execution.local). The pool hands
out either, and an executor (local or Ray, harness.execution.executor) decides how they are made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from harness.backends import engine_factory, runs_in_workers
from harness.execution.local import LocalWorker
from harness.execution.worker import Worker, WorkerSpec
from harness.model.inference import ImageOutcome, ImageRequest
from harness.model.settings import EngineSettings


class PoolWorker(Protocol):
    """What a pass uses of a worker: a process (Worker), this process (LocalWorker) or a Ray actor's proxy
    (harness.execution.ray_executor.RayWorker)."""

    @property
    def spec(self) -> WorkerSpec: ...

    @property
    def load_s(self) -> list[float]: ...  # one entry per (re)start

    @property
    def alive(self) -> bool: ...

    def infer(self, requests: list[ImageRequest], repeats: int = 1) -> list[ImageOutcome]: ...

    def close(self) -> None: ...


def make_worker(spec: WorkerSpec, timeout_s: float) -> Worker | LocalWorker:
    if runs_in_workers(spec.settings):
        return Worker(spec, timeout_s=timeout_s)
    return LocalWorker(spec, engine_factory(spec.settings), timeout_s=timeout_s)


class WorkerPool:
    """Loaded workers kept across the passes of one run. A pass that `keep`s leaves its live workers loaded; a
    pass that `reuse`s takes idle ones with the same engine settings instead of loading the models again (the
    main pass keeps its workers only when a check will take them: several-per-call). Other passes get new
    workers (the fresh-process pass must never see a used one). `close()` stops every worker kept."""

    def __init__(self) -> None:
        self._idle: list[tuple[EngineSettings, PoolWorker]] = []
        self._lock = threading.Lock()
        self.started = 0  # workers this pool made: model loads, for the report's phase timings
        self.make: Callable[[WorkerSpec, float], PoolWorker] = make_worker  # the executor's (main_executor)

    def take(self, spec: WorkerSpec, timeout_s: float, reuse: bool = False) -> PoolWorker:
        with self._lock:
            if reuse:
                for i, (settings, w) in enumerate(self._idle):
                    if settings == spec.settings:
                        return self._idle.pop(i)[1]
            self.started += 1
        return self.make(spec, timeout_s)

    def give(self, w: PoolWorker, keep: bool = False) -> None:
        if not (keep and w.alive):  # a dead worker would restart, and load, uncounted in the next pass
            w.close()
            return
        with self._lock:
            self._idle.append((w.spec.settings, w))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        errors = []
        for _, w in idle:  # every one, whatever another's close raised
            try:
                w.close()
            except Exception as e:
                errors.append(e)
        if errors:
            raise errors[0]
