"""What a run executes and what it has done so far: the plan (resolved before any model loads) and the state
that the main pass and every check fill. Checks receive both (typed for them as harness.model.views)."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.execution.pool import WorkerPool
from harness.model.corpus import Corpus, CorpusItem
from harness.model.inference import ImageOutcome
from harness.model.modeldirs import ModelDirs
from harness.model.outcome import CheckResult
from harness.model.settings import Profile
from harness.sampling import sample_info, sample_note, stratified_sample
from harness.util.progress import Progress


@dataclass(frozen=True)
class RunPlan:
    """Everything resolved before inference: what to run, on what, with which models."""

    profile: Profile
    base: Path
    corpus: Corpus
    items: tuple[CorpusItem, ...]
    dirs: ModelDirs
    shard: tuple[int, int] | None = None
    log_dir: Path | None = None
    shard_source: Mapping[str, Any] | None = None  # `run --shard auto`: the engine and variables it was read from
    backend_facts: Mapping[str, Any] = field(default_factory=dict)  # what a service reported in the preflight


@dataclass
class RunState:
    outcomes: dict[str, ImageOutcome] = field(default_factory=dict)
    checks: dict[str, CheckResult] = field(default_factory=dict)
    load_s: list[float] = field(default_factory=list)
    extra_paths: dict[str, dict[str, ImageOutcome]] = field(default_factory=dict)
    accuracy: dict[str, Any] | None = None  # corpus level; the per-image rows below let `report merge` re-aggregate
    image_accuracy: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)  # wall time per inference path and check
    prepared: dict[str, Any] | None = None  # per check: what it read before any model loaded (prepare_checks)
    progress: Progress | None = None
    pool: WorkerPool = field(default_factory=WorkerPool)
    executor: dict[str, Any] | None = None  # a distributed executor's slots and nodes, for the report's environment

    @contextlib.contextmanager
    def phase(self, label: str, images: int, calls_per_image: int = 1) -> Iterator[None]:
        """Times one phase of the run for the report's `timing.phases` (what `ocr-harness plan` predicts from);
        an inference pass (images > 0) also records the workers it started (0: it reused loaded ones)."""
        t0, started = time.perf_counter(), self.pool.started
        try:
            yield
        finally:
            self.phases[label] = {"wall_s": time.perf_counter() - t0, "images": images,
                                  "calls_per_image": calls_per_image}
            if images:
                self.phases[label]["workers_started"] = self.pool.started - started


def usable_items(p: RunPlan) -> list[CorpusItem]:
    return [it for it in p.items if it.problem is None]


def stack_sample(p: RunPlan) -> tuple[RunPlan, dict[str, Any]]:
    """The plan restricted to the profile's stack sample (drawn from the whole selection, so every shard uses
    the same one), and what the report says about it."""
    whole = stratified_sample(p.corpus.items, p.profile.checks.stack_sample)
    chosen = {id(it) for it in whole}
    info = sample_info(whole, sum(1 for it in p.corpus.items if it.problem is None))
    return dataclasses.replace(p, items=tuple(it for it in p.items if id(it) in chosen)), info


def with_sample(check: CheckResult, info: dict[str, Any]) -> CheckResult:
    if info["size"] == info["of"]:
        return check
    return dataclasses.replace(check, summary=check.summary + sample_note(info),
                               details={**check.details, "sample": info})
