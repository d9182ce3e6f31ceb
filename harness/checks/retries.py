"""Retries a service needed, counted per image and judged against `max_retry_rate`.

A retry hides a failure from the verdict: two 503s and then an answer read like a clean pass. A service that
fails one request in ten is a finding about the deployment, not noise, so every retry is named in the
`inference` check, and more images needing one than `max_retry_rate` allows fails it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from harness.checks.outcome import CheckResult
from harness.worker import ImageOutcome

SHOWN_REASONS = 12


def retries_by_image(outcomes: Mapping[str, ImageOutcome]) -> dict[str, tuple[str, ...]]:
    """Why each retried image was retried, by image id (sorted: the report reads the same every run)."""
    return {i: o.transport.retries for i, o in sorted(outcomes.items()) if o.transport and o.transport.retries}


def describe(retried: Mapping[str, Sequence[str]], images: int) -> str:
    if not retried:
        return f"none of {images} images needed a retry"
    reasons = [r for rs in retried.values() for r in rs]
    shown = ", ".join(reasons[:SHOWN_REASONS]) + (f" and {len(reasons) - SHOWN_REASONS} more"
                                                  if len(reasons) > SHOWN_REASONS else "")
    return f"{len(retried)} of {images} images needed a retry: {shown}"


def judge_retries(check: CheckResult, outcomes: Mapping[str, ImageOutcome], max_rate: float) -> CheckResult:
    """`check` (inference) with the retries in its summary and details, failed when the share of images that
    needed a retry is above `max_rate`."""
    retried = retries_by_image(outcomes)
    images = len(outcomes)
    rate = len(retried) / images if images else 0.0
    note = describe(retried, images)
    over = rate > max_rate
    if over:
        note += f" (rate {rate:.3f} above max_retry_rate {max_rate:g})"
    details: dict[str, Any] = {**check.details, "retries": {
        "images": len(retried), "of": images, "rate": rate, "max_retry_rate": max_rate,
        "total": sum(len(r) for r in retried.values()), "by_image": {i: list(r) for i, r in retried.items()}}}
    per_image = {i: dataclasses.replace(c, details={**c.details, "retries": list(retried[i])}) if i in retried else c
                 for i, c in check.per_image.items()}
    return dataclasses.replace(check, passed=check.passed and not over, summary=f"{check.summary}; {note}",
                               details=details, per_image=per_image)
