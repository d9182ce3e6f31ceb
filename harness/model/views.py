"""What a check's hooks see of a run and of a shard: read-only views, so that the plug-in API (CheckSpec in
harness.checks.registry) names no runner or merge internals. harness.execution.state's RunPlan and RunState and
harness.run.shards.shard_run.ShardRun are what the harness hands in."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from harness.model.corpus import Corpus, CorpusItem
from harness.model.inference import ImageOutcome
from harness.model.modeldirs import ModelDirs
from harness.model.outcome import CheckResult
from harness.model.report import RunReport
from harness.model.settings import Profile


class PlanView(Protocol):
    """A planned run: the resolved profile, the selected images and the models, before anything ran."""

    @property
    def profile(self) -> Profile: ...

    @property
    def base(self) -> Path: ...  # the directory the profile's relative paths are relative to

    @property
    def corpus(self) -> Corpus: ...

    @property
    def items(self) -> tuple[CorpusItem, ...]: ...  # this shard's images

    @property
    def dirs(self) -> ModelDirs: ...

    @property
    def shard(self) -> tuple[int, int] | None: ...

    @property
    def backend_facts(self) -> Mapping[str, Any]: ...  # what a service reported in the preflight


class StateView(Protocol):
    """A run under way: the main pass's outcomes, the checks judged so far, what each check prepared."""

    outcomes: dict[str, ImageOutcome]
    checks: dict[str, CheckResult]
    extra_paths: dict[str, dict[str, ImageOutcome]]  # other inference paths (batch sizes) by label
    image_accuracy: dict[str, Any]
    prepared: dict[str, Any] | None  # per check: its `prepare` result

    def phase(self, label: str, images: int, calls_per_image: int = 1) -> AbstractContextManager[None]: ...


class ShardView(Protocol):
    """One shard's report.json and results.jsonl lines, as `report merge` hands them to a check's merge."""

    @property
    def source(self) -> str: ...  # the directory, for messages

    @property
    def report(self) -> RunReport: ...  # report.json read back, typed

    @property
    def results(self) -> tuple[str, ...]: ...

    @property
    def shard(self) -> tuple[int, int]: ...

    @property
    def label(self) -> str: ...
