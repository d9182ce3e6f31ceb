"""Inference in a worker process owned by the harness.

Paddle can die natively (SIGABRT, SIGSEGV); in a worker that becomes a reported failure naming the image and
the signal, and the next image gets a fresh worker. The model is loaded once per worker and reused across
images and repeats. The child reads images itself (only paths cross the pipe) and checks that the engine did
not modify its input array (the inference core it shares with the in-process worker, harness.execution.inference).
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from harness.backends import engine_factory
from harness.backends.paddle.capture import install_capture
from harness.execution.inference import CPU, InferenceCore
from harness.model.inference import ImageOutcome, ImageRequest
from harness.model.modeldirs import ModelDirs
from harness.model.settings import EngineSettings


@dataclass(frozen=True)
class WorkerSpec:
    settings: EngineSettings
    dirs: ModelDirs
    max_pixels: int = 40_000_000
    max_bytes: int = 256 * 2**20
    label: str = "main"
    log_path: str | None = None  # the child's stdout/stderr (Paddle's own logs, native crash text)
    # Every det/rec input batch the Paddle predictor receives is also written here (harness.backends.paddle.capture)
    capture_dir: str | None = None
    # Linux: the child is killed when its parent dies, even by SIGKILL (a Ray actor killed by the driver must not
    # leave a Paddle process behind; harness.execution.ray_executor)
    die_with_parent: bool = False


class WorkerError(Exception):
    """The worker could not start (model load failed) or died outside an image."""


class NoWorkerHere(WorkerError):
    """This driver can have no worker (a cluster's nodes that may take one are full or refused): its calls are
    left to the other drivers of the pass, and fail with this reason only when no other driver is left."""


# Every live worker of this process, so that a cancelled run (SIGINT/SIGTERM) can stop them all at once: a
# worker busy in Paddle would otherwise finish its image, or outlive the harness. Reentrant because the signal
# handler that cancels runs in the main thread, possibly while that thread holds the lock.
_LIVE: set[Worker] = set()
_LIVE_LOCK = threading.RLock()
_CANCELLED = threading.Event()


def cancel_workers() -> None:
    """From now on no worker starts, and every live one is killed now (the run is being cancelled)."""
    _CANCELLED.set()
    with _LIVE_LOCK:
        workers = list(_LIVE)
    for w in workers:
        w.kill_process()


def track_live(w: Any) -> None:
    """Another kind of worker (a Ray actor's proxy) that `cancel_workers` must kill too: it has `kill_process()`."""
    with _LIVE_LOCK:
        _LIVE.add(w)


def untrack_live(w: Any) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(w)


def workers_cancelled() -> bool:
    return _CANCELLED.is_set()


def allow_workers() -> None:
    """Ends a cancellation: workers may start again (a new run in the same process)."""
    _CANCELLED.clear()


def _load_engine(conn: Connection, spec: WorkerSpec) -> Any:
    """The engine, with "ready" and the load time sent to the parent; None after sending why it did not load."""
    try:
        t0 = time.perf_counter()
        if spec.capture_dir:
            install_capture(Path(spec.capture_dir), spec.dirs)
        engine = engine_factory(spec.settings)(spec.settings, spec.dirs)
        conn.send(("ready", time.perf_counter() - t0))
        return engine
    except Exception as e:  # reported to the parent as a load failure, with the reason
        conn.send(("load_error", f"{type(e).__name__}: {e}"))
        return None


def _child_main(conn: Connection, spec: WorkerSpec) -> None:
    # Ctrl-C reaches the whole process group; the parent decides what stops (and records what finished).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec.die_with_parent and sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the call above
            os._exit(1)
    if spec.log_path:
        fd = os.open(spec.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    engine = _load_engine(conn, spec)
    if engine is None:
        return
    core = InferenceCore(spec.max_pixels, spec.max_bytes, CPU)
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)  # skips Paddle's teardown (~0.7 s per worker); the child holds nothing that needs it
        _, requests, repeats = msg
        conn.send(("ok", core.infer(engine, requests, repeats)))  # an image's or the engine's error included


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "no exit code"
    if exitcode < 0:
        try:
            return f"{signal.Signals(-exitcode).name} (exit {exitcode})"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


class Worker:
    """A persistent worker process: `start()` loads the model, `infer()` runs requests, `close()` stops it."""

    def __init__(self, spec: WorkerSpec, timeout_s: float = 300.0) -> None:
        self.spec = spec
        self.timeout_s = timeout_s
        self.load_s: list[float] = []  # one entry per (re)start
        self._proc: mp.process.BaseProcess | None = None
        self._conn: Connection | None = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        """Its process is running (a loaded model, or loading one)."""
        return self._proc is not None and self._proc.is_alive()

    def start(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        if _CANCELLED.is_set():
            raise WorkerError(f"{self.spec.label} worker: not started, the run is being cancelled")
        ctx = mp.get_context("spawn")  # never fork a process that may hold Paddle's threads
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_child_main, args=(child, self.spec), daemon=True,
                           name=f"ocr-harness-{self.spec.label}")
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        with _LIVE_LOCK:
            _LIVE.add(self)
        reply = self._receive(self.timeout_s)
        if reply is None or reply[0] != "ready":
            reason = reply[1] if reply else f"worker died while loading the model: {_signal_name(proc.exitcode)}"
            self._kill()
            raise WorkerError(f"{self.spec.label} worker: model load failed: {reason}{self._log_tail()}")
        self.load_s.append(float(reply[1]))

    def infer(self, requests: list[ImageRequest], repeats: int = 1) -> list[ImageOutcome]:
        """Run `repeats` predictions of `requests` together in one predict call each (one request: the service path)."""
        self.start()
        assert self._conn is not None
        self._conn.send(("infer", requests, repeats))
        reply = self._receive(self.timeout_s * repeats * len(requests))
        names = ", ".join(r.path for r in requests)
        if reply is None:
            exitcode = self._proc.exitcode if self._proc else None
            timed_out = self._proc is not None and self._proc.is_alive()
            self._kill()
            why = (f"timed out after {self.timeout_s * repeats * len(requests):.0f} s" if timed_out
                   else f"worker crashed with {_signal_name(exitcode)}")
            return [ImageOutcome(r.image_id, error=f"{why} while processing {names}{self._log_tail()}")
                    for r in requests]
        return list(reply[1])

    def _receive(self, timeout: float) -> Any:
        assert self._conn is not None
        try:
            if not self._conn.poll(timeout):
                return None
            return self._conn.recv()
        except (EOFError, OSError):
            if self._proc is not None:
                self._proc.join(5)
            return None

    def _log_tail(self) -> str:
        if not self.spec.log_path or not os.path.exists(self.spec.log_path):
            return ""
        with open(self.spec.log_path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(self.spec.log_path) - 2000))
            lines = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        return f" (last worker log line: {lines[-1].strip()[:300]})" if lines else ""

    def kill_process(self) -> None:
        """Kills the worker process now, from any thread; the thread using this worker sees it die."""
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.kill()

    def _kill(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(10)
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn = None, None

    def close(self) -> None:
        if self._proc is not None and self._proc.is_alive() and self._conn is not None:
            try:
                self._conn.send(("stop",))
                self._proc.join(10)
            except (OSError, BrokenPipeError):
                pass
        self._kill()
