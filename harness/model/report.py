"""report.json as typed records: built by the run (harness.run.pipeline.build_report), by a run that stopped early
(harness.run.pipeline.incomplete) and by `report merge`, and serialised in one place (`RunReport.to_dict`). Renderers read
a written report back through `RunReport.from_dict`, which is tolerant (unknown keys are kept aside, missing
optional sections become empty), so a report of another version still renders."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.model.results import REPORT_SCHEMA

# Report entries that are not checks: a run that stopped early (harness.run.pipeline.incomplete) first, accuracy last.
FIRST, LAST = ("run",), ("accuracy",)


def _map(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _seq(x: Any) -> Sequence[Any]:
    return x if isinstance(x, (list, tuple)) else ()


@dataclass(frozen=True)
class CheckLayout:
    """What renderers need to know of the check catalogue, handed to them as data (the catalogue lives above
    them): the order people read checks in, and the checks whose top-level details are not to be listed."""

    order: tuple[str, ...] = FIRST + LAST
    unlisted: frozenset[str] = frozenset()

    def key(self, name: str) -> tuple[int, str]:
        """Report order; checks the catalogue does not know (another version's, a plug-in's) last, by name."""
        return (self.order.index(name) if name in self.order else len(self.order), name)

    def lists_details(self, name: str) -> bool:
        return name not in self.unlisted


@dataclass(frozen=True)
class CheckOutcome:
    """A model-level check (report["checks"]) or one check on one image (images[i]["checks"]), as read back."""

    name: str
    passed: bool
    skipped: bool = False
    summary: str = ""
    failed_images: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "skipped" if self.skipped else ("passed" if self.passed else "failed")

    @classmethod
    def from_dict(cls, name: str, d: Any) -> CheckOutcome:
        d = _map(d)
        return cls(name=str(name), passed=bool(d.get("passed", False)), skipped=bool(d.get("skipped", False)),
                   summary=str(d.get("summary") or ""),
                   failed_images=tuple(str(i) for i in _seq(d.get("failed_images"))),
                   details=_map(d.get("details")))


def _outcomes(checks: Mapping[str, Any], layout: CheckLayout) -> tuple[CheckOutcome, ...]:
    return tuple(CheckOutcome.from_dict(k, checks[k]) for k in sorted(checks, key=layout.key))


@dataclass(frozen=True)
class ImageOutcome:
    """One image of a report as read back: its checks in report order; an image with an error never passed."""

    id: str
    file: str
    template: str | None
    tags: tuple[str, ...]
    passed: bool
    error: str | None
    checks: tuple[CheckOutcome, ...]
    timings: Mapping[str, float]
    lines: int | None

    @property
    def failed_checks(self) -> tuple[CheckOutcome, ...]:
        return tuple(c for c in self.checks if not c.passed and not c.skipped)

    def check(self, name: str) -> CheckOutcome | None:
        return next((c for c in self.checks if c.name == name), None)

    @classmethod
    def from_dict(cls, d: Any, layout: CheckLayout) -> ImageOutcome:
        d = _map(d)
        error = d.get("error")
        return cls(
            id=str(d.get("id", "?")), file=str(d.get("file") or ""),
            template=None if d.get("template") is None else str(d["template"]),
            tags=tuple(str(t) for t in _seq(d.get("tags"))),
            passed=bool(d.get("passed", False)) and error is None,
            error=None if error is None else str(error),
            checks=_outcomes(_map(d.get("checks")), layout),
            timings={str(k): v for k, v in _map(d.get("timings")).items() if isinstance(v, (int, float))},
            lines=d.get("lines") if isinstance(d.get("lines"), int) else None,
        )


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

    @classmethod
    def from_dict(cls, d: Any) -> Incomplete:
        d = _map(d)
        return cls(str(d.get("reason") or ""), tuple(str(i) for i in _seq(d.get("finished_images"))),
                   None if d.get("traceback") is None else str(d["traceback"]))


@dataclass(frozen=True)
class RunReport:
    passed: bool
    started_at: str
    duration_s: float | None  # None: not recorded (only a report read back can lack it)
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
    # How renderers order and list checks (the catalogue's, see CheckLayout); never written to report.json.
    layout: CheckLayout = field(default_factory=CheckLayout, compare=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], layout: CheckLayout) -> RunReport:
        """A written report.json read back, tolerantly: a report of an older version (without the sections a
        later one added) or of a newer one (its extra sections are kept in `extra`) still reads."""
        duration, exit_code = d.get("duration_s"), d.get("exit_code")
        checks = _map(d.get("checks"))
        return cls(
            passed=bool(d.get("passed", False)), started_at=str(d.get("started_at") or ""),
            duration_s=duration if isinstance(duration, (int, float)) and not isinstance(duration, bool) else None,
            profile=_map(d.get("profile")), environment=_map(d.get("environment")), stack=_map(d.get("stack")),
            corpus=_map(d.get("corpus")), checks={str(k): _map(v) for k, v in checks.items()},
            images=tuple(_map(i) for i in _seq(d.get("images"))), accuracy=_map(d.get("accuracy")) or None,
            timing=_map(d.get("timing")),
            exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
            incomplete=Incomplete.from_dict(d.get("incomplete")) if d.get("complete") is False else None,
            extra={k: v for k, v in d.items() if k not in _SECTIONS}, layout=layout)

    @property
    def complete(self) -> bool:
        return self.incomplete is None

    @property
    def profile_name(self) -> str:
        return str(self.profile.get("name") or "")

    @functools.cached_property
    def outcomes(self) -> tuple[CheckOutcome, ...]:
        """The model-level checks as read back, in report order."""
        return _outcomes(self.checks, self.layout)

    @functools.cached_property
    def image_outcomes(self) -> tuple[ImageOutcome, ...]:
        return tuple(ImageOutcome.from_dict(i.to_dict() if isinstance(i, ImageRecord) else i, self.layout)
                     for i in self.images)

    @property
    def failed_checks(self) -> tuple[CheckOutcome, ...]:
        return tuple(c for c in self.outcomes if not c.passed and not c.skipped)

    @property
    def failed_images(self) -> tuple[ImageOutcome, ...]:
        return tuple(i for i in self.image_outcomes if not i.passed)

    def images_failing_first(self) -> tuple[ImageOutcome, ...]:
        return self.failed_images + tuple(i for i in self.image_outcomes if i.passed)

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


# The keys RunReport.to_dict writes itself; anything else in a report read back is `extra`.
_SECTIONS = frozenset({"schema", "passed", "exit_code", "complete", "incomplete", "started_at", "duration_s", "profile",
                       "environment", "stack", "corpus", "checks", "images", "accuracy", "timing"})
