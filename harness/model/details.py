"""A check's details as typed records, for the checks whose details `report merge` combines: the execution-path
totals (batch_paths, variations, parity), the repeat count, the inference retries. A check registers how its
details are read (CheckSpec.details in harness.checks.registry); a check without one (a plug-in's, the golden
check's open-ended status) has its raw mappings handed to its merge.

`from_dict(d, where)` reads details that come from another machine (a shard's report.json), so unlike the
report's own tolerant readers it is strict: every field the merge combines is checked, and a wrong one is one
UserError naming the file and the field (`where`). What it does not know is kept aside and written back, so
`from_dict(d, where).to_dict() == d` for every report this version writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

from harness.util.errors import UserError


class Details(Protocol):
    """A check's details type: its one serialisation (report.json's checks[name].details) and its reader."""

    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Self: ...


def _need(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise UserError(f"{where} must be {what}")


def _table(d: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise UserError(f"{where} must be an object")
    return d


def _count(d: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    v = d.get(key, default)
    _need(isinstance(v, int) and not isinstance(v, bool) and v >= 0, f"{where}.{key}", "a count")
    return int(v)


def _number(d: Mapping[str, Any], key: str, where: str) -> float:
    """The number as written (a whole number stays one: the record writes back what it read)."""
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise UserError(f"{where}.{key} must be a number")
    return v


def _rest(d: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in known}


# The tolerances under which every compared line would have passed (harness.golden.compare.RequiredTolerances).
REQUIRED_TOLERANCES = ("text_max_cer", "poly_max_shift_px", "poly_min_iou", "score_abs", "blocking")


@dataclass(frozen=True)
class PathTotals:
    """One execution path against the reference path, over the images compared: how many were identical, within
    and beyond tolerance, or failed to run, and the tolerances they needed."""

    identical: int
    within: int
    beyond: int
    failed_to_run: int
    required_tolerances: Mapping[str, float]  # REQUIRED_TOLERANCES
    text_differences: int | None = None  # parity's: lines whose text differs from the reference backend's
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {**self.extra, "identical": self.identical, "within": self.within, "beyond": self.beyond,
               "failed_to_run": self.failed_to_run, "required_tolerances": dict(self.required_tolerances)}
        if self.text_differences is not None:
            out["text_differences"] = self.text_differences
        return out

    @classmethod
    def from_dict(cls, d: Any, where: str) -> PathTotals:
        d = _table(d, where)
        identical, within, beyond, failed = (_count(d, k, where) for k in ("identical", "within", "beyond",
                                                                            "failed_to_run"))
        required = _table(d.get("required_tolerances"), f"{where}.required_tolerances")
        return cls(identical=identical, within=within, beyond=beyond, failed_to_run=failed,
                   required_tolerances={k: (_count if k == "blocking" else _number)(
                                            required, k, f"{where}.required_tolerances") for k in REQUIRED_TOLERANCES},
                   text_differences=_count(d, "text_differences", where) if "text_differences" in d else None,
                   extra=_rest(d, _PATH_KEYS))


_PATH_KEYS = frozenset({"identical", "within", "beyond", "failed_to_run", "required_tolerances", "text_differences"})


@dataclass(frozen=True)
class PathDetails:
    """The details of a check that compares execution paths with a reference path (batch_paths, variations,
    parity): each path's totals, by label in the order the check compared them."""

    reference: str
    paths: Mapping[str, PathTotals]
    extra: Mapping[str, Any] = field(default_factory=dict)  # the sample, what a check adds (BN fusions, latency)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "reference": self.reference,
                "paths": {label: t.to_dict() for label, t in self.paths.items()}}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> PathDetails:
        d = _table(d, where)
        paths = _table(d.get("paths"), f"{where}.paths")
        totals = {str(label): PathTotals.from_dict(t, f"{where}.paths.{label}") for label, t in paths.items()}
        _need(isinstance(d.get("reference"), str), f"{where}.reference", "a string")
        return cls(reference=str(d["reference"]), paths=totals, extra=_rest(d, frozenset({"reference", "paths"})))


@dataclass(frozen=True)
class RepeatDetails:
    """The repeat check's details: the most repeats an image had, the model calls compared, and the smallest
    per-call fault rate those calls catch (harness.sampling.detectable_rate)."""

    repeats: int
    calls: int
    detectable_rate: float | None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "repeats": self.repeats, "calls": self.calls, "detectable_rate": self.detectable_rate}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> RepeatDetails:
        d = _table(d, where)
        rate = d.get("detectable_rate")
        _need(rate is None or (isinstance(rate, (int, float)) and not isinstance(rate, bool)),
              f"{where}.detectable_rate", "a number or null")
        return cls(repeats=_count(d, "repeats", where), calls=_count(d, "calls", where, default=0),
                   detectable_rate=rate,
                   extra=_rest(d, frozenset({"repeats", "calls", "detectable_rate"})))


@dataclass(frozen=True)
class Retries:
    """A service's retries over the images of a run: which needed one and why, against the profile's limit."""

    images: int  # images that needed a retry
    of: int  # images sent
    rate: float
    max_retry_rate: float
    total: int  # retries, all images
    by_image: Mapping[str, tuple[str, ...]]  # why each retry happened, by image id

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "of": self.of, "rate": self.rate, "max_retry_rate": self.max_retry_rate,
                "total": self.total, "by_image": {i: list(r) for i, r in self.by_image.items()}}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Retries:
        d = _table(d, where)
        by_image = _table(d.get("by_image"), f"{where}.by_image")
        for i, reasons in by_image.items():
            _need(isinstance(reasons, list) and all(isinstance(r, str) for r in reasons), f"{where}.by_image.{i}",
                  "a list of reasons")
        return cls(images=_count(d, "images", where), of=_count(d, "of", where), rate=_number(d, "rate", where),
                   max_retry_rate=_number(d, "max_retry_rate", where), total=_count(d, "total", where),
                   by_image={str(i): tuple(r) for i, r in by_image.items()})


@dataclass(frozen=True)
class InferenceDetails:
    """The inference check's details: for a service, its retries (none recorded for an engine in-process)."""

    retries: Retries | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, **({"retries": self.retries.to_dict()} if self.retries is not None else {})}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> InferenceDetails:
        d = _table(d, where)
        retries = Retries.from_dict(d["retries"], f"{where}.retries") if "retries" in d else None
        return cls(retries=retries, extra=_rest(d, frozenset({"retries"})))
