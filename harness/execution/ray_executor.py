"""The Ray executor: the run's calls on Ray actors, each supervising one harness worker process on its node.

Imported only when a profile chooses `[executor] kind = "ray"` (Ray is the optional extra `ocr-harness[ray]`). The
scheduler's call queue and drive threads (harness.execution.scheduler) stay as they are: a `RayWorker` stands where
a local `Worker` would, so balancing is the queue's (a free slot takes the next call) and crash isolation is the
worker process's own (the actor survives a SIGABRT in Paddle and reports it with today's message). Actors never
restart and their tasks are never retried: a retried call would lose or repeat an image; a dead actor fails its
call and the next call gets a new actor. Each actor resolves the model pack on its node and is refused, by node,
unless the hashes equal the driver's. Images travel as bytes with their sha256 and are verified again where they
are read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import ray
from ray._private import ray_constants
from ray.exceptions import RayActorError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from harness.backends import resolve_models
from harness.backends.registry import PLUGINS_ENV
from harness.environment import node_id, stack
from harness.execution.worker import (NoWorkerHere, Worker, WorkerError, WorkerSpec, track_live, untrack_live,
                                      workers_cancelled)
from harness.model.inference import ImageOutcome, ImageRequest
from harness.model.settings import ExecutorSettings
from harness.util.errors import UserError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# A cluster this run starts for itself: loopback only (Ray binds every interface otherwise), no usage stats.
LOCAL_CLUSTER_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def init_local_cluster(temp_dir: str) -> Any:
    """Starts a private cluster on this machine (also the test suite's shared cluster) and connects to it.

    Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, when it is imported (measured: set later, every server still
    binds all interfaces), so its constant is set here too; the variable itself reaches the cluster's processes."""
    os.environ.update(LOCAL_CLUSTER_ENV)
    ray_constants.ENABLE_RAY_CLUSTER = False
    return ray.init(address="local", include_dashboard=False, _temp_dir=temp_dir, num_cpus=os.cpu_count() or 1,
                    log_to_driver=False, logging_level=logging.WARNING)


@contextlib.contextmanager
def ray_session(address: str) -> Iterator[None]:
    """Connected to (or, for "local", running) a Ray cluster for the block; the process's signal handlers as
    they were before (`ray.init` replaces SIGTERM's, which would bypass the harness's cancellation)."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    temp_dir = tempfile.mkdtemp(prefix="ocr-harness-ray-") if address == "local" else None
    env_before = {k: os.environ.get(k) for k in LOCAL_CLUSTER_ENV}
    joins = ray_constants.ENABLE_RAY_CLUSTER
    try:
        try:
            if temp_dir is not None:
                init_local_cluster(temp_dir)
            else:
                if address != "auto":
                    _require_reachable(address)
                # A cluster on this machine's loopback: the driver must see itself at 127.0.0.1 too, or it waits
                # forever for a raylet at the machine's outward address (measured).
                ray_constants.ENABLE_RAY_CLUSTER = joins and address.rsplit(":", 1)[0] not in LOOPBACK_HOSTS
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise UserError(f"executor.address {address}: no Ray cluster: {_first_line(e)}") from None
        finally:
            if threading.current_thread() is threading.main_thread():
                for s, h in saved.items():
                    signal.signal(s, h)
        yield
    finally:
        ray.shutdown()  # a "local" cluster stops with it; on a shared one this run's actors go with its driver
        ray_constants.ENABLE_RAY_CLUSTER = joins
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _require_reachable(address: str) -> None:
    """Ray itself retries an unreachable GCS for minutes (measured: over 2 min, deaf to SIGTERM): ask once first."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as e:
        raise UserError(f"executor.address {address}: no Ray cluster answers there: {e.strerror or e}") from None


def _node_name() -> str:
    """How a user finds the node: its address and the start of its Ray node id (not the harness's node id)."""
    return f"Ray node {ray.util.get_node_ip_address()} ({ray.get_runtime_context().get_node_id()[:12]})"


def _actor_temp_dir() -> Path:
    """In the node's Ray session dir when there is one: an actor killed by `ray.kill` (a cancelled run) cleans
    nothing up, and the session dir goes with a private cluster (and is Ray's to rotate on a shared one)."""
    node = getattr(ray._private.worker.global_worker, "node", None)
    base = node.get_session_dir_path() if node is not None else None
    return Path(tempfile.mkdtemp(prefix="ocr-harness-actor-", dir=base))


class WorkerHost:
    """The actor: one harness `Worker` (its own Paddle process) on the node Ray placed it on."""

    def __init__(self, spec: WorkerSpec, base: str, cache: str | None, hashes: Mapping[str, str],
                 timeout_s: float) -> None:
        self._spec, self._base, self._cache, self._hashes, self._timeout_s = spec, base, cache, dict(hashes), timeout_s
        self._tmp = _actor_temp_dir()
        self._worker: Worker | None = None
        self._node = node_id()

    def start(self) -> dict[str, Any]:
        """Verifies the node's model pack, then loads the model: {"refused"|"load_error": why} or what it is."""
        name = _node_name()
        try:
            dirs = resolve_models(self._spec.settings, Path(self._base), self._cache)
            hashes = dirs.file_hashes()
        except Exception as e:  # no pack, an unreadable one: this node cannot judge anything
            return {"refused": f"{name}: model pack: {_first_line(e)}"}
        if hashes != self._hashes:
            differ = sorted(k for k in self._hashes.keys() | hashes.keys() if self._hashes.get(k) != hashes.get(k))
            return {"refused": f"{name}: its model pack differs from the driver's in {', '.join(differ)}"}
        spec = dataclasses.replace(self._spec, dirs=dirs, log_path=str(self._tmp / "worker.log"), die_with_parent=True)
        self._worker = Worker(spec, timeout_s=self._timeout_s)
        try:
            self._worker.start()
        except WorkerError as e:
            return {"load_error": f"{e} (on {name})"}
        return {"node": self._node, "stack": stack(spec.settings, hashes), "load_s": self._worker.load_s[-1]}

    def infer(self, images: list[tuple[str, str, str, bytes]], repeats: int) -> list[ImageOutcome]:
        """`images`: (image id, its path on the driver, sha256, bytes). The worker reads and verifies a copy here;
        messages name the driver's path."""
        assert self._worker is not None
        requests, names = [], {}
        for image_id, path, sha256, data in images:
            copy = self._tmp / f"{sha256}{Path(path).suffix}"
            copy.write_bytes(data)
            requests.append(ImageRequest(image_id=image_id, path=str(copy), sha256=sha256))
            names[str(copy)] = path
        try:
            outcomes = self._worker.infer(requests, repeats)
        finally:
            for local in names:
                Path(local).unlink(missing_ok=True)
        out = []
        for o in outcomes:
            error = o.error
            for local, path in names.items():
                error = error.replace(local, path) if error else error
            out.append(dataclasses.replace(o, error=error, node=self._node))
        return out

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
        shutil.rmtree(self._tmp, ignore_errors=True)


_Host = ray.remote(max_restarts=0, max_task_retries=0)(WorkerHost)


@dataclasses.dataclass
class RayExecutor:
    """Places actors on the cluster's nodes, spreading them by CPU, and remembers the nodes it refused."""

    settings: ExecutorSettings
    base: str
    cache: str | None
    hashes: Mapping[str, str]
    threads: int
    refused: dict[str, str] = dataclasses.field(default_factory=dict)  # Ray node id -> why
    stacks: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # harness node id -> its stack
    placed: dict[str, int] = dataclasses.field(default_factory=dict)
    stalled: set[str] = dataclasses.field(default_factory=set)  # Ray node ids that did not start an actor in time
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def slots(self) -> int:
        if self.settings.slots is not None:
            return self.settings.slots
        return max(1, int(ray.cluster_resources().get("CPU", 1)) // self.threads)

    def make_worker(self, spec: WorkerSpec, timeout_s: float) -> RayWorker:
        return RayWorker(self, spec, timeout_s)

    def place(self, spec: WorkerSpec, timeout_s: float,
              starting: Callable[[Any], None] = lambda actor: None) -> tuple[Any, str, dict[str, Any]]:
        """A started actor, its Ray node id and what it reported; WorkerError when no node takes it, NoWorkerHere
        when the chosen node did not run it within `timeout_s`. `starting` gets each actor before its start is
        awaited, so a cancelling run can kill one still starting."""
        while True:
            with self.lock:
                nodes = [n for n in ray.nodes() if n.get("Alive") and n["NodeID"] not in self.refused
                         and n.get("Resources", {}).get("CPU", 0) >= self.threads]
                if not nodes:
                    why = "; ".join(self.refused.values()) or f"no node has {self.threads} CPUs"
                    raise WorkerError(f"{spec.label} worker: no Ray node can run it: {why}")
                # Only where a slot is free: an actor waiting for CPUs that never free would hold its call forever.
                free = [n for n in nodes if (self.placed.get(n["NodeID"], 0) + 1) * self.threads
                        <= n["Resources"]["CPU"]]
                if not free:
                    raise NoWorkerHere(f"{spec.label} worker: every Ray node that may run it is busy")
                chosen = min(free, key=lambda n: (n["NodeID"] in self.stalled,
                                                  self.placed.get(n["NodeID"], 0) / n["Resources"]["CPU"]))
                node = chosen["NodeID"]
                self.placed[node] = self.placed.get(node, 0) + 1
            # A node of an existing cluster does not inherit this process's environment: the plug-in backends the
            # driver loaded ($OCR_HARNESS_BACKENDS) travel with the actor (they must be installed on every node).
            plugins = os.environ.get(PLUGINS_ENV)
            extra = {"runtime_env": {"env_vars": {PLUGINS_ENV: plugins}}} if plugins else {}
            actor = _Host.options(num_cpus=self.threads, name=None, scheduling_strategy=NodeAffinitySchedulingStrategy(
                node, soft=False), **extra).remote(spec, self.base, self.cache, dict(self.hashes), timeout_s)
            starting(actor)
            self._await_placement(actor, node, chosen.get("NodeManagerAddress", "?"), spec.label, timeout_s)
            try:
                info = ray.get(actor.start.remote())
            except RayError as e:
                info = {"load_error": f"{spec.label} worker: Ray actor failed to start: {_first_line(e)}"}
            if "node" in info:
                with self.lock:
                    self.stacks[info["node"]] = info["stack"]
                return actor, node, info
            self.release(actor, node)
            if "load_error" in info:
                raise WorkerError(info["load_error"])
            with self.lock:
                if node not in self.refused:
                    print(f"ocr-harness: refused {info['refused']}", file=sys.stderr)
                self.refused[node] = info["refused"]

    def _await_placement(self, actor: Any, node: str, address: str, label: str, timeout_s: float) -> None:
        """Until the actor runs, at most `timeout_s` (the profile's image_timeout_s): Ray keeps an actor whose CPUs
        are taken by other work (a shared cluster's other jobs) pending without end. Given up, the actor goes and
        its slot hands its calls to the others (NoWorkerHere); the node is tried last from then on. Waits in
        short steps, so a cancelled run does not wait for the deadline."""
        ready = actor.__ray_ready__.remote()
        deadline = time.monotonic() + timeout_s
        while not ray.wait([ready], timeout=min(1.0, max(0.0, deadline - time.monotonic())))[0]:
            if workers_cancelled() or time.monotonic() >= deadline:
                self.release(actor, node)
                if workers_cancelled():
                    raise WorkerError(f"{label} worker: not started, the run is being cancelled")
                with self.lock:
                    self.stalled.add(node)
                raise NoWorkerHere(f"{label} worker: Ray did not start its actor on Ray node {address} "
                                   f"({node[:12]}) within {timeout_s:g} s (image_timeout_s): its CPUs are taken by "
                                   "other work, or it starts processes too slowly")
        with self.lock:
            self.stalled.discard(node)

    def release(self, actor: Any, node: str) -> None:
        with contextlib.suppress(RayError):
            ray.kill(actor, no_restart=True)
        with self.lock:
            self.placed[node] -= 1

    def info(self, slots: int) -> dict[str, Any]:
        """For the report's environment: the slots and each node's stack (by harness node id, never a name)."""
        return {"kind": "ray", "slots": slots, "nodes": {k: self.stacks[k] for k in sorted(self.stacks)},
                "refused_nodes": len(self.refused)}


class RayWorker:
    """Where the scheduler's drive thread holds a `Worker`: the same `infer`, served by an actor."""

    def __init__(self, executor: RayExecutor, spec: WorkerSpec, timeout_s: float) -> None:
        self.spec, self.timeout_s, self._executor = spec, timeout_s, executor
        self.load_s: list[float] = []
        self._actor: Any = None
        self._starting: Any = None  # an actor whose start is awaited
        self._node = ""

    @property
    def alive(self) -> bool:
        return self._actor is not None

    def start(self) -> None:
        if self._actor is not None:
            return
        if workers_cancelled():
            raise WorkerError(f"{self.spec.label} worker: not started, the run is being cancelled")
        track_live(self)
        try:
            self._actor, self._node, info = self._executor.place(self.spec, self.timeout_s,
                                                                 lambda actor: setattr(self, "_starting", actor))
        finally:
            self._starting = None
        self.load_s.append(float(info["load_s"]))

    def infer(self, requests: list[ImageRequest], repeats: int = 1) -> list[ImageOutcome]:
        self.start()
        images = []
        for r in requests:
            data = Path(r.path).read_bytes()
            images.append((r.image_id, r.path, r.sha256 or hashlib.sha256(data).hexdigest(), data))
        try:
            return list(ray.get(self._actor.infer.remote(images, repeats)))
        except RayActorError as e:  # the actor or its node died (or the run is being cancelled)
            self._drop()
            names = ", ".join(r.path for r in requests)
            return [ImageOutcome(r.image_id, error=f"Ray actor died while processing {names}: {_first_line(e)}")
                    for r in requests]

    def kill_process(self) -> None:
        """From any thread (the cancelling signal handler): the actor goes, and its worker with it."""
        for actor in (self._actor, self._starting):
            if actor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)

    def _drop(self) -> None:
        if self._actor is not None:
            self._executor.release(self._actor, self._node)
        self._actor = None
        untrack_live(self)

    def close(self) -> None:
        if self._actor is not None and not workers_cancelled():
            with contextlib.suppress(RayError):
                ray.get(self._actor.close.remote(), timeout=30)
        self._drop()


def _first_line(e: BaseException) -> str:
    """An error's first line for a one-line message; its type when it says nothing."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
