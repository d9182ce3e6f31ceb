"""The `inference` check, and the retries a service needed, counted per image and judged against `max_retry_rate`.

A retry hides a failure from the verdict: two 503s and then an answer read like a clean pass. A service that
fails one request in ten is a finding about the deployment, not noise, so every retry is named in the
`inference` check, and when more images needed one than `max_retry_rate` allows, those images fail it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from harness.backends import max_retry_rate
from harness.model.details import InferenceDetails, Retries
from harness.model.inference import ImageOutcome
from harness.model.outcome import CheckResult, ImageCheck, from_images
from harness.model.views import PlanView

SHOWN_REASONS = 12
FAILED = "failed to run"  # what inference says of its failed images (harness.model.outcome.from_images)
FAILED_OVER_RATE = "failed to run or needed a retry"  # ... when the retry rate is above max_retry_rate


def inference_check(p: PlanView, outcomes: Mapping[str, ImageOutcome]) -> CheckResult:
    """The `inference` check: every image ran; for a service, also within its retry budget."""
    per_image = {i: ImageCheck(o.ok, o.error or f"{len(o.runs[0].lines)} lines") for i, o in outcomes.items()}
    check = from_images("inference", per_image, FAILED)
    limit = max_retry_rate(p.profile.engine)
    if limit is None:
        return check
    return judge_retries(check, outcomes, limit)


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
    """`check` (inference, from_images) with the retries in its summary and details. Above `max_rate`, the
    images that needed a retry fail it too (they are named, and `report merge` keeps the verdict image by image)."""
    retried = retries_by_image(outcomes)
    images = len(outcomes)
    details = {**check.details, "retries": _stats({i: list(r) for i, r in retried.items()}, images, max_rate)}
    over = details["retries"]["rate"] > max_rate
    per_image = {}
    for i, c in check.per_image.items():
        if i in retried:
            reasons = ", ".join(retried[i])
            c = dataclasses.replace(c, passed=c.passed and not over, details={**c.details, "retries": list(retried[i])},
                                    summary=c.summary + f"; needed a retry: {reasons}")
        per_image[i] = c
    judged = from_images(check.name, per_image, FAILED_OVER_RATE if over else FAILED, details)
    return dataclasses.replace(judged, summary=f"{judged.summary}; {note(details['retries'])}")


def _stats(by_image: Mapping[str, Sequence[str]], images: int, max_rate: float) -> dict[str, Any]:
    return _retries(by_image, images, max_rate).to_dict()


def _retries(by_image: Mapping[str, Sequence[str]], images: int, max_rate: float) -> Retries:
    return Retries(images=len(by_image), of=images, rate=len(by_image) / images if images else 0.0,
                   max_retry_rate=max_rate, total=sum(len(r) for r in by_image.values()),
                   by_image={i: tuple(r) for i, r in sorted(by_image.items())})


def note(stats: Mapping[str, Any]) -> str:
    """`2 of 24 images needed a retry: 503, 503`, and the rate when it is above the limit."""
    text = describe(stats["by_image"], stats["of"])
    if stats["rate"] > stats["max_retry_rate"]:
        text += f" (rate {stats['rate']:.3f} above max_retry_rate {stats['max_retry_rate']:g})"
    return text


def merged_details(name: str, shards: Sequence[Any], details: Sequence[InferenceDetails],
                   per_image: Mapping[str, Any], stored_goldens: Any) -> InferenceDetails:
    """`report merge`: the shards' retries added up (each shard judged its own rate, image by image)."""
    stats = [d.retries for d in details if d.retries is not None]
    if not stats:
        return details[0]
    by_image = {i: r for s in stats for i, r in s.by_image.items()}
    retries = _retries(by_image, sum(s.of for s in stats), stats[0].max_retry_rate)
    return dataclasses.replace(details[0], retries=retries)


def merged_summary(summary: str, passed: bool, details: Mapping[str, Any], shard_summary: str, tail: str) -> str:
    return f"{summary}; {note(details['retries'])}" if "retries" in details else summary + (tail if not passed else "")
