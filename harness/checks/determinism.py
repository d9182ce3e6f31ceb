"""Exact repeat checks: in-process repeats, a fresh process, and the engine leaving its input untouched.

Repeats on one machine and stack must be bit-identical: texts, polygons and scores at full precision.
The first divergence names the repeat, the line, the field and the size of the difference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from harness.model.details import RepeatDetails
from harness.model.inference import ImageOutcome
from harness.model.outcome import CheckResult, ImageCheck, from_images
from harness.model.results import OcrResult
from harness.model.views import ShardView
from harness.sampling import describe_power, detectable_rate


def first_divergence(reference: OcrResult, other: OcrResult) -> dict[str, Any] | None:
    """None when identical; else the first differing line and field (line = index in reading order)."""
    if (reference.width, reference.height) != (other.width, other.height):
        return {"line": None, "field": "size", "expected": [reference.width, reference.height],
                "actual": [other.width, other.height], "delta": None}
    for i, (a, b) in enumerate(zip(reference.lines, other.lines)):
        if a.text != b.text:
            return {"line": i, "field": "text", "expected": a.text, "actual": b.text, "delta": None}
        if a.poly != b.poly:
            shift = max(max(abs(pa[0] - pb[0]), abs(pa[1] - pb[1])) for pa, pb in zip(a.poly, b.poly))
            return {"line": i, "field": "poly", "expected": [list(p) for p in a.poly],
                    "actual": [list(p) for p in b.poly], "delta": float(shift)}
        if a.score != b.score:
            return {"line": i, "field": "score", "expected": a.score, "actual": b.score,
                    "delta": abs(a.score - b.score)}
    if len(reference.lines) != len(other.lines):
        n = min(len(reference.lines), len(other.lines))
        return {"line": n, "field": "line_count", "expected": len(reference.lines), "actual": len(other.lines),
                "delta": None}
    return None


def _describe(div: dict[str, Any], where: str) -> str:
    delta = f" (delta {div['delta']:.3g})" if isinstance(div.get("delta"), float) else ""
    line = f"line {div['line']} " if div.get("line") is not None else ""
    return f"{where}: {line}{div['field']} {div['expected']!r} -> {div['actual']!r}{delta}"


def repeat_check(outcomes: Mapping[str, ImageOutcome]) -> CheckResult:
    per_image: dict[str, ImageCheck] = {}
    for image_id, out in outcomes.items():
        if not out.ok:
            continue
        reference = out.runs[0]
        for k, run in enumerate(out.runs[1:], start=2):
            div = first_divergence(reference, run)
            if div is not None:
                div = {"repeat": k, **div}
                per_image[image_id] = ImageCheck(False, _describe(div, f"repeat {k} vs 1"), {"first_divergence": div})
                break
        else:
            per_image[image_id] = ImageCheck(True, f"{len(out.runs)} repeats identical")
    repeats = max((len(o.runs) for o in outcomes.values()), default=0)
    # Every call of an image with two or more repeats is compared (a fault on the first shows on all others).
    calls = sum(len(o.runs) for o in outcomes.values() if o.ok and len(o.runs) > 1)
    check = from_images("repeat", per_image, "not reproducible across repeats",
                        {"repeats": repeats, "calls": calls, "detectable_rate": detectable_rate(calls)})
    return dataclasses.replace(check, summary=f"{check.summary}; {describe_power(calls)}")


def cross_process_check(outcomes: Mapping[str, ImageOutcome], fresh: Mapping[str, ImageOutcome]) -> CheckResult:
    per_image: dict[str, ImageCheck] = {}
    for image_id, out in outcomes.items():
        other = fresh.get(image_id)
        if not out.ok:
            continue
        if other is None or not other.ok:
            why = other.error if other is not None else "not run"
            per_image[image_id] = ImageCheck(False, f"fresh process failed: {why}")
            continue
        div = first_divergence(out.runs[0], other.runs[0])
        per_image[image_id] = (ImageCheck(True, "identical in a fresh process") if div is None else
                               ImageCheck(False, _describe(div, "fresh process vs first"), {"first_divergence": div}))
    return from_images("cross_process", per_image, "differ in a fresh process")


def mutation_check(outcomes: Mapping[str, ImageOutcome]) -> CheckResult:
    per_image = {
        image_id: ImageCheck(not out.mutated, "engine modified its input image" if out.mutated else "input untouched")
        for image_id, out in outcomes.items() if out.ok
    }
    return from_images("mutation", per_image, "modified by the engine")


# --- `report merge` ---------------------------------------------------------------------------------------------

def merged_repeat_details(name: str, shards: Sequence[ShardView], details: Sequence[RepeatDetails],
                          per_image: Mapping[str, ImageCheck],
                          stored_goldens: Collection[str] | None) -> RepeatDetails:
    """The repeat check's details over every shard: the calls add up, and so does the power they give."""
    calls = sum(d.calls for d in details)
    return RepeatDetails(max(d.repeats for d in details), calls, detectable_rate(calls), details[0].extra)


def merged_repeat_summary(summary: str, passed: bool, details: Mapping[str, Any], shard_summary: str,
                          tail: str) -> str:
    return f"{summary}; {describe_power(details['calls'])}"  # the power statement counts every shard's calls
