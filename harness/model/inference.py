"""What crosses between the harness and an engine for one image: the request, the outcome of its repeats, and
what reaching a service took. Workers, executors, checks and reports all read these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.model.results import OcrResult


@dataclass(frozen=True)
class ImageRequest:
    image_id: str
    path: str
    sha256: str | None = None


@dataclass(frozen=True)
class TransportNotes:
    """What reaching a service took for one image, across its repeats: the report counts it, checks judge it."""

    retries: tuple[str, ...] = ()  # why each retry happened: "503", "429", "timed out", "connection reset"
    reported: tuple[Mapping[str, Any], ...] = ()  # the settings each answer said it ran with


@dataclass(frozen=True)
class ImageOutcome:
    """All repeats of one image in one worker, or the reason there are none."""

    image_id: str
    runs: tuple[OcrResult, ...] = ()
    predict_s: tuple[float, ...] = ()
    read_s: float = 0.0
    mutated: bool = False
    error: str | None = None
    # The speed check's measurements (harness.execution.normaliser), taken in the process that ran the engine: what each
    # repeat cost per image and the fixed workload around this call, both in `cost_clock` seconds ("cpu" in a
    # worker process, "wall" in the harness's), that process's peak RSS after it and the images it had served.
    cost_s: tuple[float, ...] = ()
    reference_s: float | None = None
    cost_clock: str = "cpu"
    peak_rss_kib: int | None = None
    worker_pid: int | None = None
    served: int = 0
    first_call: bool = False  # the worker's first call: its first repeat paid for building kernels (cold)
    transport: TransportNotes | None = None  # a service's backend: its retries and reported settings
    node: str | None = None  # harness.environment.node_id of the machine that ran it, when not this one (Ray)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.runs)
