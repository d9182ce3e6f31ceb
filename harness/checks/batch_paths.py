"""Same images, other execution paths: batch sizes, several images per call, oneDNN on/off, thread counts.

Each path is compared with a reference path first exactly, then with the golden tolerances: paths may
legitimately differ in the last bits (PaddleOCR pads recognition crops to the widest in their batch; oneDNN
and thread counts change summation order), so the report gives the magnitude of every difference and the
verdict says whether it stays inside what the profile tolerates.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from harness.checks.determinism import first_divergence
from harness.execution.state import RunPlan
from harness.golden.compare import RequiredTolerances, compare_image
from harness.model.details import PathDetails, PathTotals
from harness.model.inference import ImageOutcome
from harness.model.outcome import CheckResult, ImageCheck, from_images
from harness.model.settings import EngineSettings, Tolerances
from harness.model.views import ShardView


def workers_for(p: RunPlan, settings: EngineSettings) -> int:
    """Worker processes for an extra path: as many cores busy as the profile's workers x threads, whatever
    thread count the path's settings take (a threads-2 variation of 2x1 workers runs one worker)."""
    return max(1, p.profile.workers * p.profile.engine.resolved_threads() // settings.resolved_threads())


def key_texts(p: RunPlan) -> dict[str, dict[str, str]]:
    """Each image's key-field values: a path that loses one fails whatever the tolerances say."""
    return {it.id: dict(it.fields) for it in p.items if it.fields}


def report_checks(shards: Sequence[ShardView]) -> Mapping[str, Any]:
    """The `[checks]` settings the shards ran with (they agree: `report merge` refuses other profiles)."""
    checks = shards[0].report.profile.get("settings", {}).get("checks") if shards else None
    return checks if isinstance(checks, Mapping) else {}


def compare_paths(name: str, reference_label: str, reference: Mapping[str, ImageOutcome],
                  others: Mapping[str, Mapping[str, ImageOutcome]], tol: Tolerances,
                  key_texts: Mapping[str, Mapping[str, str]] | None = None,
                  only: Mapping[str, Collection[str]] | None = None) -> CheckResult:
    """`key_texts` (image id -> key field -> value): a key value read on the reference path and lost on
    another path fails the image whatever the tolerances say. `only` (label -> image ids): a path that ran on
    a sample is compared on those images only."""
    per_image: dict[str, ImageCheck] = {}
    stats: dict[str, dict[str, Any]] = {
        label: {"identical": 0, "within": 0, "beyond": 0, "failed_to_run": 0, "required": RequiredTolerances()}
        for label in others
    }
    for image_id, ref in reference.items():
        if not ref.ok:
            continue
        details: dict[str, Any] = {}
        notes: list[str] = []
        ok = True
        for label, outcomes in others.items():
            if only is not None and label in only and image_id not in only[label]:
                continue
            other = outcomes.get(image_id)
            s = stats[label]
            if other is None or not other.ok:
                s["failed_to_run"] += 1
                ok = False
                details[label] = {"error": other.error if other else "not run"}
                notes.append(f"{label}: failed to run")
                continue
            if first_divergence(ref.runs[0], other.runs[0]) is None:
                s["identical"] += 1
                details[label] = {"identical": True}
                continue
            comp = compare_image(ref.runs[0], other.runs[0], tol, (key_texts or {}).get(image_id))
            s["required"] = s["required"].merge(comp.required)
            s["within" if comp.passed else "beyond"] += 1
            ok &= comp.passed
            details[label] = {"identical": False, "passed": comp.passed,
                              "required_tolerances": comp.required.to_dict(),
                              "lines": [d.to_dict() for d in comp.diffs]}
            worst = max(comp.diffs, key=lambda d: (d.kind != "within", abs(d.score_delta or 0)), default=None)
            notes.append(f"{label} vs {reference_label}: " + (worst.describe() if worst else "differs"))
        summary = "; ".join(notes) if notes else f"identical on all {len(others)} paths"
        per_image[image_id] = ImageCheck(ok, summary, {"reference": reference_label, "paths": details})
    check = from_images(name, per_image, f"differ beyond tolerance from the {reference_label} path")
    totals = {label: {**{k: v for k, v in s.items() if k != "required"}, "required_tolerances": s["required"].to_dict()}
              for label, s in stats.items()}
    details = {"reference": reference_label, "paths": totals}
    return CheckResult(name=name, passed=check.passed, summary=totals_summary(check.summary, check.passed, details),
                       per_image=per_image, details=details, judged=check.judged)


def totals_summary(summary: str, passed: bool, details: Mapping[str, Any]) -> str:
    """The sentence after the verdict: each path's counts and required tolerances, paths in the order of
    details["paths"] (a run's, or a merge's: `merged_details` restores it). `summary` leads only on a failure."""
    parts = []
    for label, s in details["paths"].items():
        req = s["required_tolerances"]
        parts.append(f"{label}: {s['identical']} identical, {s['within']} within, {s['beyond']} beyond"
                     f" (max score delta {req['score_abs']:.3g}, max shift {req['poly_max_shift_px']:.3g} px,"
                     f" max CER {req['text_max_cer']:.3g})")
    return (summary + " | " if not passed else "") + f"vs {details['reference']}: " + "; ".join(parts)


# --- `report merge` ---------------------------------------------------------------------------------------------

def merged_details(details: Sequence[PathDetails], order: Sequence[str]) -> PathDetails:
    """compare_paths' totals over every shard: counts add up, required tolerances merge. report.json's sorted
    keys lose the order the check compared its paths in; `order` (the labels as the check makes them) restores
    it, any label not in it last by name."""
    totals: dict[str, PathTotals] = {}
    for d in details:
        for label, s in d.paths.items():
            totals[label] = _added(totals.get(label, NONE_COMPARED), s)
    rank = {label: n for n, label in enumerate(order)}
    paths = dict(sorted(totals.items(), key=lambda lt: (rank.get(lt[0], len(rank)), lt[0])))
    # The sample is drawn from the whole selection: the same in every shard.
    sample = {"sample": details[0].extra["sample"]} if "sample" in details[0].extra else {}
    return PathDetails(details[0].reference, paths, sample)


NONE_COMPARED = PathTotals(0, 0, 0, 0, RequiredTolerances().to_dict())


def _required(r: Mapping[str, float]) -> RequiredTolerances:
    return RequiredTolerances(text_max_cer=r["text_max_cer"], poly_max_shift_px=r["poly_max_shift_px"],
                              poly_min_iou=r["poly_min_iou"], score_abs=r["score_abs"], blocking=int(r["blocking"]))


def _added(t: PathTotals, s: PathTotals) -> PathTotals:
    required = _required(t.required_tolerances).merge(_required(s.required_tolerances))
    return PathTotals(t.identical + s.identical, t.within + s.within, t.beyond + s.beyond,
                      t.failed_to_run + s.failed_to_run, required.to_dict())


def merged_summary(summary: str, passed: bool, details: Mapping[str, Any], shard_summary: str, tail: str) -> str:
    """A registry MergeSummary: the sentence compare_paths writes, from the merged totals."""
    return totals_summary(summary, passed, details)
