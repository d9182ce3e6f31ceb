"""report.json as typed records: built by the run (harness.run.pipeline.build_report), by a run that stopped early
(harness.run.pipeline.incomplete) and by `report merge`, which pass the records themselves to the writer and the
renderers, and serialised in one place (`RunReport.to_dict`). `RunReport.from_dict` reads a written report
back (a shard's, for `report merge`, or one a renderer is handed); it is tolerant (unknown keys are kept aside
and written back, missing optional sections become empty), so a report of another version still renders."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.model import tolerant
from harness.model.accuracy import ImageAccuracy
from harness.model.outcome import CheckResult, ImageCheck
from harness.model.results import REPORT_SCHEMA

# Report entries that are not checks: a run that stopped early (harness.run.pipeline.incomplete) first, accuracy last.
FIRST, LAST = ("run",), ("accuracy",)


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
class ImageRecord:
    """One image of the run: where it stands in the selection, its verdict per check, its measurements."""

    id: str
    index: int | None  # place in the selection before sharding: the order `report merge` restores
    file: str
    template: str | None
    tags: tuple[str, ...]
    passed: bool  # every check that judged it passed (an image that did not run has no verdict: see `error`)
    error: str | None
    checks: Mapping[str, ImageCheck]
    timings: Mapping[str, Any]  # {"predict_s", "read_s", "repeats_s"} of an image that ran, else empty
    lines: int | None  # None: not recorded (only a report read back can lack it)
    accuracy: ImageAccuracy | None = None  # re-aggregated by merges
    # Where it was judged: {"node": harness.environment.node_id(), "worker_pid": the worker process or None}
    judged_on: Mapping[str, Any] | None = None
    stack: str | None = None  # `report merge --allow-mixed-stacks`: the shard ("K/N") whose stack judged it
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys of another version, written back as read

    @property
    def ok(self) -> bool:
        """Passed as renderers show it: an image with an error never passed."""
        return self.passed and self.error is None

    @property
    def predict_s(self) -> float | None:
        return tolerant.opt_number(self.timings.get("predict_s"))

    def to_dict(self) -> dict[str, Any]:
        out = {**self.extra, "id": self.id, "index": self.index,
               "accuracy": None if self.accuracy is None else self.accuracy.to_dict(),
               "file": self.file, "template": self.template, "tags": list(self.tags), "passed": self.passed,
               "error": self.error, "checks": {k: v.to_dict() for k, v in self.checks.items()},
               "timings": dict(self.timings), "lines": self.lines}
        if self.judged_on is not None:
            out["judged_on"] = dict(self.judged_on)
        if self.stack is not None:
            out["stack"] = self.stack
        return out

    @classmethod
    def from_dict(cls, d: Any) -> ImageRecord:
        d = tolerant.mapping(d)
        accuracy, judged_on = d.get("accuracy"), d.get("judged_on")
        return cls(
            id=str(d.get("id", "?")), index=tolerant.opt_int(d.get("index")), file=str(d.get("file") or ""),
            template=tolerant.opt_str(d.get("template")), tags=tolerant.strings(d.get("tags")),
            passed=bool(d.get("passed", False)), error=tolerant.opt_str(d.get("error")),
            checks={str(k): ImageCheck.from_dict(v) for k, v in tolerant.mapping(d.get("checks")).items()},
            timings=dict(tolerant.mapping(d.get("timings"))), lines=tolerant.opt_int(d.get("lines")),
            accuracy=ImageAccuracy.from_dict(accuracy) if isinstance(accuracy, Mapping) else None,
            judged_on=dict(judged_on) if isinstance(judged_on, Mapping) else None,
            stack=tolerant.opt_str(d.get("stack")), extra=tolerant.rest(d, _IMAGE_KEYS))


_IMAGE_KEYS = frozenset({"id", "index", "accuracy", "file", "template", "tags", "passed", "error", "checks",
                         "timings", "lines", "judged_on", "stack"})


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
        d = tolerant.mapping(d)
        return cls(str(d.get("reason") or ""), tolerant.strings(d.get("finished_images")),
                   tolerant.opt_str(d.get("traceback")))


@dataclass(frozen=True)
class RunReport:
    passed: bool
    started_at: str
    duration_s: float | None  # None: not recorded (only a report read back can lack it)
    profile: Mapping[str, Any]  # {"name", "settings"}: the profile's settings as written (Profile.settings_dict)
    environment: Mapping[str, Any]  # open-ended: what the machine and the backend say of themselves
    stack: Mapping[str, Any]  # open-ended: what decides outputs (packages, models, CPU); compared, never parsed
    corpus: Mapping[str, Any]
    checks: Mapping[str, CheckResult]  # in run order; `ordered_checks` is report order
    images: tuple[ImageRecord, ...]
    accuracy: Mapping[str, Any] | None  # harness.metrics.corpus_accuracy: figures derived from the images' rows
    timing: Mapping[str, Any]  # harness.model.timing.timing_summary
    exit_code: int | None = None  # None: 0 when passed, else 1 (a regression)
    incomplete: Incomplete | None = None  # set only for a run that stopped early
    extra: Mapping[str, Any] = field(default_factory=dict)  # sections of a newer version, passed through by merges
    # How renderers order and list checks (the catalogue's, see CheckLayout); never written to report.json.
    layout: CheckLayout = field(default_factory=CheckLayout, compare=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], layout: CheckLayout = CheckLayout()) -> RunReport:
        """A written report.json read back, tolerantly: a report of an older version (without the sections a
        later one added) or of a newer one (its extra sections are kept in `extra`) still reads, and a value of
        the wrong type reads as its default."""
        d = tolerant.mapping(d)
        return cls(
            passed=bool(d.get("passed", False)), started_at=str(d.get("started_at") or ""),
            duration_s=tolerant.opt_number(d.get("duration_s")),
            profile=tolerant.mapping(d.get("profile")), environment=tolerant.mapping(d.get("environment")),
            stack=tolerant.mapping(d.get("stack")), corpus=tolerant.mapping(d.get("corpus")),
            checks={str(k): CheckResult.from_dict(k, v) for k, v in tolerant.mapping(d.get("checks")).items()},
            images=tuple(ImageRecord.from_dict(i) for i in tolerant.sequence(d.get("images"))),
            accuracy=tolerant.mapping(d.get("accuracy")) or None, timing=tolerant.mapping(d.get("timing")),
            exit_code=tolerant.opt_int(d.get("exit_code")),
            incomplete=Incomplete.from_dict(d.get("incomplete")) if d.get("complete") is False else None,
            extra={k: v for k, v in d.items() if k not in _SECTIONS}, layout=layout)

    def laid_out(self, layout: CheckLayout) -> RunReport:
        """The same report, ordered for renderers by the catalogue's `layout`."""
        return dataclasses.replace(self, layout=layout)

    @property
    def complete(self) -> bool:
        return self.incomplete is None

    @property
    def profile_name(self) -> str:
        return str(self.profile.get("name") or "")

    @functools.cached_property
    def ordered_checks(self) -> tuple[CheckResult, ...]:
        """The model-level checks in report order."""
        return tuple(self.checks[k] for k in sorted(self.checks, key=self.layout.key))

    def image_checks(self, image: ImageRecord) -> tuple[tuple[str, ImageCheck], ...]:
        """An image's verdicts in report order."""
        return tuple((k, image.checks[k]) for k in sorted(image.checks, key=self.layout.key))

    def failed_checks_of(self, image: ImageRecord) -> tuple[tuple[str, ImageCheck], ...]:
        return tuple((k, c) for k, c in self.image_checks(image) if not c.passed)

    @property
    def failed_checks(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.ordered_checks if not c.passed and not c.skipped)

    @property
    def failed_images(self) -> tuple[ImageRecord, ...]:
        return tuple(i for i in self.images if not i.ok)

    def images_failing_first(self) -> tuple[ImageRecord, ...]:
        return self.failed_images + tuple(i for i in self.images if i.ok)

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
            "checks": {k: c.to_dict() for k, c in self.checks.items()},
            "images": [img.to_dict() for img in self.images],
            "accuracy": self.accuracy,
            "timing": dict(self.timing),
        }


# The keys RunReport.to_dict writes itself; anything else in a report read back is `extra`.
_SECTIONS = frozenset({"schema", "passed", "exit_code", "complete", "incomplete", "started_at", "duration_s", "profile",
                       "environment", "stack", "corpus", "checks", "images", "accuracy", "timing"})
