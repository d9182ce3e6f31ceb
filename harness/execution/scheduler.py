"""One inference pass: every usable image of a plan through persistent workers, fed from one queue of calls.

Calls are made of consecutive usable images, whatever the worker count, so batch-mates never depend on it. A
worker that is done takes the next call, so no core idles while another works through a static share (which
worker reads an image must not matter; the checks prove it). Outcomes are recorded as images finish, so a
cancelled run still has them.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.execution.pool import PoolWorker, WorkerPool
from harness.execution.state import RunPlan, usable_items
from harness.execution.worker import NoWorkerHere, Worker, WorkerError, WorkerSpec, workers_cancelled
from harness.model.corpus import CorpusItem
from harness.model.inference import ImageOutcome, ImageRequest
from harness.model.settings import EngineSettings
from harness.util.progress import Progress


@dataclass
class _Pass:
    """What the drive threads of one pass share; every change to it is made under `lock`."""

    p: RunPlan
    settings: EngineSettings
    label: str
    repeats: int
    out: dict[str, ImageOutcome]
    pool: WorkerPool
    reuse: bool
    keep: bool
    pending: collections.deque[list[CorpusItem]]
    total: int  # usable images: what the progress display counts to
    progress: Progress | None = None
    load_s: list[float] | None = None
    drivers: int = 0  # drive threads still taking calls
    holding: int = 0  # calls taken and not yet settled (recorded or handed back)
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)  # on `lock`: a call settled or handed back
    stop: threading.Event = field(default_factory=threading.Event)
    started: list[PoolWorker] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def stopping(self) -> bool:
        return self.stop.is_set() or workers_cancelled()

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def next_call(self) -> list[CorpusItem] | None:
        """The next call to serve, which the caller settles (`settle`) when done with it; None: no call is left.
        With the queue empty, a driver waits while another holds a call: one that cannot get a worker (a Ray
        actor the cluster never placed) hands it back, and somebody must be left to take it."""
        with self.changed:
            while not self.pending and self.holding and not self.stopping() and not self.errors:
                self.changed.wait(0.2)
            if self.pending and not self.stopping():
                self.holding += 1
                return self.pending.popleft()
            self.drivers -= 1
            return None

    def settle(self) -> None:
        with self.changed:
            self.holding -= 1
            self.changed.notify_all()

    def hand_over(self, call: list[CorpusItem]) -> bool:
        """This driver can have no worker: the others take `call` and the rest, unless it is the last one."""
        with self.lock:
            if self.drivers > 1:
                self.drivers -= 1
                self.pending.appendleft(call)
                return True
        return False

    def record(self, results: Sequence[ImageOutcome]) -> None:
        with self.lock:
            for res in results:
                self.out[res.image_id] = res
                self.done += 1
                if self.progress:
                    self.progress(self.label, self.done, self.total, res.image_id)


def infer_all(p: RunPlan, settings: EngineSettings, label: str, repeats: int, workers: int = 1,
              progress: Progress | None = None, load_s: list[float] | None = None,
              into: dict[str, ImageOutcome] | None = None, group: int = 1,
              pool: WorkerPool | None = None, reuse: bool = False, keep: bool = False) -> dict[str, ImageOutcome]:
    """Every usable image through persistent workers, `group` images per predict call (1: the service path).

    Outcomes are filled into `into` (a new dict by default) as images finish, so a cancelled run still has them.
    Workers come from `pool` (`reuse`: loaded ones with the same settings if it has them; `keep`: left loaded in
    it afterwards), else new ones closed at the end."""
    usable = usable_items(p)
    out = into if into is not None else {}
    out.update({it.id: ImageOutcome(it.id, error=it.problem) for it in p.items if it.problem})
    if not usable:
        return out
    calls = collections.deque(usable[i:i + group] for i in range(0, len(usable), group))
    run = _Pass(p, settings, label, repeats, out, pool if pool is not None else WorkerPool(), reuse, keep, calls,
                len(usable), progress, load_s)
    n = max(1, min(workers, len(calls)))
    run.drivers = n
    _drive_all(run, [f"{label}-{i}" if n > 1 else label for i in range(n)])
    return out


def _drive_all(run: _Pass, labels: list[str]) -> None:
    """One drive thread per worker label, until every call is done; their first error is raised here."""
    # Waited for through events, not Thread.join: a join interrupted by a signal marks a still running thread
    # as stopped (CPython 3.11), and the outcomes must be settled before a cancelled run reports them.
    settled = [threading.Event() for _ in labels]
    threads = [threading.Thread(target=_drive, args=(run, wlabel, ev)) for wlabel, ev in zip(labels, settled)]
    for t in threads:
        t.start()
    try:
        for ev in settled:
            ev.wait()
    except BaseException:  # cancelled (or interrupted): stop this pass's workers, let the threads settle
        run.stop.set()
        for w in list(run.started):
            if isinstance(w, Worker):  # a process to kill; an in-process client stops with its thread
                w.kill_process()
        for ev in settled:
            ev.wait()
        raise
    for t in threads:
        t.join()
    if run.errors:
        raise run.errors[0]


def _drive(run: _Pass, wlabel: str, settled: threading.Event) -> None:
    """A drive thread: takes a worker from the pool, serves calls with it, gives it back."""
    try:
        w = run.pool.take(_spec(run.p, run.settings, wlabel), run.p.profile.image_timeout_s, run.reuse)
        healthy = False
        loads = len(w.load_s)  # a reused worker's earlier loads belong to the pass that made them
        try:
            run.started.append(w)
            load_error = _serve(run, w)
            if run.load_s is not None:
                run.load_s.extend(w.load_s[loads:])
            healthy = load_error is None and not run.stopping()
        finally:
            run.pool.give(w, run.keep and healthy)
    except BaseException as e:  # surfaced in the calling thread
        run.errors.append(e)
    finally:
        settled.set()


def _serve(run: _Pass, w: PoolWorker) -> str | None:
    """Calls from the queue through `w` until none is left or the pass stops. A worker whose model did not
    load fails its images with the reason, without a retry; that reason is returned."""
    load_error: str | None = None
    while (call := run.next_call()) is not None:
        try:
            requests = _requests(call)
            results: list[ImageOutcome] = []
            if load_error is None:
                try:
                    results = w.infer(requests, repeats=run.repeats)
                except NoWorkerHere as e:
                    if run.hand_over(call):
                        break
                    load_error = str(e)
                except WorkerError as e:
                    load_error = str(e)
            if load_error is not None:
                results = [ImageOutcome(r.image_id, error=load_error) for r in requests]
            if not all(res.ok for res in results) and run.stopping():
                break  # killed by the cancellation: says nothing about these images
            run.record(results)
        finally:
            run.settle()
    return load_error


def _requests(items: Sequence[CorpusItem]) -> list[ImageRequest]:
    return [ImageRequest(image_id=it.id, path=str(it.path), sha256=it.sha256) for it in items]


def _spec(p: RunPlan, settings: EngineSettings, label: str) -> WorkerSpec:
    log = str(p.log_dir / f"worker-{label}.log") if p.log_dir else None
    return WorkerSpec(settings=settings, dirs=p.dirs, max_pixels=p.profile.max_image_pixels,
                      max_bytes=p.profile.max_image_bytes, label=label, log_path=log)
