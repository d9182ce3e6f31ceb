"""Check results: one record per check with a verdict per image, as the run and reports consume them.

A check that judged nothing never passes: every result says how many images (or models) it judged, and an
image that a check could not judge (no golden under `missing_golden = "warn"`) is counted apart, never
folded into "all clean".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.model import tolerant


@dataclass(frozen=True)
class ImageCheck:
    """One check's verdict on one image (images[i].checks[name] in report.json)."""

    passed: bool
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    judged: bool = True  # False: the check could not look at this image (a warning when passed, else a failure)
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys of another version, written back as read

    @property
    def skipped(self) -> bool:
        """Never: a check that skips does so for the run. Renderers read a verdict on one image like a CheckResult."""
        return False

    @property
    def failed_images(self) -> tuple[str, ...]:
        return ()

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "passed": self.passed, "summary": self.summary, "details": self.details,
                "judged": self.judged}

    @classmethod
    def from_dict(cls, d: Any) -> ImageCheck:
        """Read back tolerantly (harness.model.tolerant)."""
        d = tolerant.mapping(d)
        judged = d.get("judged", True)
        return cls(passed=bool(d.get("passed", False)), summary=str(d.get("summary") or ""),
                   details=dict(tolerant.mapping(d.get("details"))),
                   judged=judged if isinstance(judged, bool) else True, extra=tolerant.rest(d, _IMAGE_KEYS))


_IMAGE_KEYS = frozenset({"passed", "summary", "details", "judged"})


@dataclass(frozen=True)
class CheckResult:
    """One check over the run (report.json's checks[name]): made by the check, or read back from a report,
    which holds the per-image verdicts under images[i].checks and only the failing ids here."""

    name: str
    passed: bool
    summary: str
    per_image: dict[str, ImageCheck] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False
    judged: int = 0
    unit: str = "images"  # what `judged` counts: images, models (model-level checks), settings (a service's)
    failed: tuple[str, ...] | None = None  # the failing ids as read back (per_image is not in report.json)
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys of another version, written back as read

    def __bool__(self) -> bool:
        return self.passed

    @property
    def status(self) -> str:
        return "skipped" if self.skipped else ("passed" if self.passed else "failed")

    @property
    def failed_images(self) -> list[str]:
        if self.failed is not None:
            return list(self.failed)
        return sorted(i for i, c in self.per_image.items() if not c.passed)

    def as_reported(self) -> CheckResult:
        """The result as report.json holds it: the failing ids here, each image's verdict with the image."""
        return dataclasses.replace(self, per_image={}, failed=tuple(self.failed_images))

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "passed": self.passed, "skipped": self.skipped, "summary": self.summary,
                "failed_images": self.failed_images, "judged": self.judged, "unit": self.unit,
                "details": self.details}

    @classmethod
    def from_dict(cls, name: str, d: Any) -> CheckResult:
        """Read back tolerantly (harness.model.tolerant): a missing key is its default, a wrong-typed one too."""
        d = tolerant.mapping(d)
        return cls(name=str(name), passed=bool(d.get("passed", False)), summary=str(d.get("summary") or ""),
                   details=dict(tolerant.mapping(d.get("details"))), skipped=bool(d.get("skipped", False)),
                   judged=tolerant.count(d.get("judged")), unit=str(d.get("unit") or "images"),
                   failed=tolerant.strings(d.get("failed_images")), extra=tolerant.rest(d, _CHECK_KEYS))


_CHECK_KEYS = frozenset({"passed", "skipped", "summary", "failed_images", "judged", "unit", "details"})


def _ids(ids: list[str]) -> str:
    ids = sorted(ids)
    return ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


def from_images(name: str, per_image: dict[str, ImageCheck], what: str, details: dict[str, Any] | None = None) -> CheckResult:
    """A check that passes when every image passes and at least one image was judged; the summary counts
    failures, and images not judged."""
    failed = [i for i, c in per_image.items() if not c.passed]
    judged = sum(c.judged for c in per_image.values())
    unjudged = [i for i, c in per_image.items() if not c.judged and c.passed]
    if failed:
        summary = f"{len(failed)} of {len(per_image)} images {what}: " + _ids(failed)
    elif not per_image:
        summary = "judged nothing: no image ran"
    elif not judged:
        summary = f"judged nothing: {len(unjudged)} images not judged ({per_image[unjudged[0]].summary})"
    elif unjudged:
        summary = (f"{judged} of {len(per_image)} images judged, all clean; {len(unjudged)} not judged "
                   f"({per_image[unjudged[0]].summary}): {_ids(unjudged)}")
    else:
        summary = f"all {len(per_image)} images clean"
    return CheckResult(name=name, passed=not failed and judged > 0, summary=summary, per_image=per_image,
                       details=details or {}, judged=judged)


def skipped(name: str, why: str) -> CheckResult:
    return CheckResult(name=name, passed=True, summary=f"skipped: {why}", skipped=True)


FIRST_SHARD_KEY = "judged_on_shard"  # a model-level check's details on shards > 1: the shard that judges it


def left_to_first_shard(name: str, shard: tuple[int, int]) -> CheckResult:
    """A model-level check on shard K > 1: not run, because shard 1 judges it (it reads the models, which every
    shard shares); `report merge` takes shard 1's verdict (harness.run.shards.merge)."""
    return CheckResult(name, True, f"skipped: judged on shard 1/{shard[1]} only (a model-level check)",
                       skipped=True, details={FIRST_SHARD_KEY: [1, shard[1]]})
