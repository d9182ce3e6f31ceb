"""report.json as typed records: built by the run (harness.run.build_report), by a run that stopped early
(harness.run.incomplete) and by `report merge`, and serialised in one place (`RunReport.to_dict`). Renderers read
the written JSON back through harness.report.view, so a report from another version still renders."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.model.results import REPORT_SCHEMA


@dataclass(frozen=True)
class ImageRecord:
    """One image of the run: where it stands in the selection, its verdict per check, its measurements."""

    id: str
    index: int | None  # place in the selection before sharding: the order `report merge` restores
    file: str
    template: str | None
    tags: tuple[str, ...]
    passed: bool
    error: str | None
    checks: Mapping[str, Mapping[str, Any]]  # check name -> harness.model.outcome.ImageCheck.to_dict()
    timings: Mapping[str, Any]
    lines: int
    accuracy: Mapping[str, Any] | None = None  # harness.metrics.ImageAccuracy.to_dict(), re-aggregated by merges
    # Where it was judged: {"node": harness.environment.node_id(), "worker_pid": the worker process or None}
    judged_on: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "index": self.index, "accuracy": None if self.accuracy is None else dict(self.accuracy),
               "file": self.file, "template": self.template, "tags": list(self.tags), "passed": self.passed,
               "error": self.error, "checks": {k: dict(v) for k, v in self.checks.items()},
               "timings": dict(self.timings), "lines": self.lines}
        if self.judged_on is not None:
            out["judged_on"] = dict(self.judged_on)
        return out


@dataclass(frozen=True)
class Incomplete:
    """Why a run stopped early, and which images finished before it did."""

    reason: str
    finished_images: tuple[str, ...]
    traceback: str | None = None  # the file, in the output dir, with a bug's traceback

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "finished_images": list(self.finished_images), "traceback": self.traceback}


@dataclass(frozen=True)
class RunReport:
    passed: bool
    started_at: str
    duration_s: float
    profile: Mapping[str, Any]  # {"name", "settings"}
    environment: Mapping[str, Any]
    stack: Mapping[str, Any]
    corpus: Mapping[str, Any]
    checks: Mapping[str, Mapping[str, Any]]  # check name -> harness.model.outcome.CheckResult.to_dict()
    # A run's own images; `report merge` takes the shards' images as they wrote them (any version's keys).
    images: tuple[ImageRecord | Mapping[str, Any], ...]
    accuracy: Mapping[str, Any] | None
    timing: Mapping[str, Any]
    exit_code: int | None = None  # None: 0 when passed, else 1 (a regression)
    incomplete: Incomplete | None = None  # set only for a run that stopped early
    extra: Mapping[str, Any] = field(default_factory=dict)  # sections of a newer version, passed through by merges

    @property
    def complete(self) -> bool:
        return self.incomplete is None

    def stopped(self, incomplete: Incomplete, exit_code: int) -> RunReport:
        return dataclasses.replace(self, passed=False, exit_code=exit_code, incomplete=incomplete)

    def to_dict(self) -> dict[str, Any]:
        """The one serialisation of report.json."""
        return {
            **self.extra,
            "schema": REPORT_SCHEMA,
            "passed": self.passed,
            "exit_code": self.exit_code if self.exit_code is not None else (0 if self.passed else 1),
            "complete": self.complete,
            "incomplete": None if self.incomplete is None else self.incomplete.to_dict(),
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "profile": dict(self.profile),
            "environment": dict(self.environment),
            "stack": dict(self.stack),
            "corpus": dict(self.corpus),
            "checks": {k: dict(v) for k, v in self.checks.items()},
            "images": [img.to_dict() if isinstance(img, ImageRecord) else dict(img) for img in self.images],
            "accuracy": self.accuracy,
            "timing": dict(self.timing),
        }
