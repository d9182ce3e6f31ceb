"""Check results: one record per check with a verdict per image, as the runner and reports consume them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ImageCheck:
    passed: bool
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "summary": self.summary, "details": self.details}


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    summary: str
    per_image: dict[str, ImageCheck] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failed_images(self) -> list[str]:
        return sorted(i for i, c in self.per_image.items() if not c.passed)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "skipped": self.skipped, "summary": self.summary,
                "failed_images": self.failed_images, "details": self.details}


def from_images(name: str, per_image: dict[str, ImageCheck], what: str, details: dict[str, Any] | None = None) -> CheckResult:
    """A check that passes when every image passes; the summary counts failures."""
    failed = [i for i, c in per_image.items() if not c.passed]
    if failed:
        summary = f"{len(failed)} of {len(per_image)} images {what}: " + ", ".join(sorted(failed)[:5])
        if len(failed) > 5:
            summary += f" and {len(failed) - 5} more"
    elif per_image:
        summary = f"all {len(per_image)} images clean"
    else:
        summary = "no image to check (none ran)"
    return CheckResult(name=name, passed=not failed, summary=summary, per_image=per_image, details=details or {})


def skipped(name: str, why: str) -> CheckResult:
    return CheckResult(name=name, passed=True, summary=f"skipped: {why}", skipped=True)
