"""The `speed` check: a deployment that got slower or fatter is a regression even if it reads the same.

Each image's cost (median over its repeats: the worker process's CPU seconds, or wall seconds for the http
backend, see harness.execution.normaliser) is divided by the fixed CPU yardstick measured the same way in the same
process around the same call, and that ratio is compared with the ratio approved for the same image: the median
image over `speed_max_ratio` (default 1.5x) fails. Comparing an image with itself, not a median with a median,
keeps a run on another selection honest: only images both runs measured are judged. Wall latency (median, p90)
is reported next to it, never judged: on a shared machine it moves 4x by itself.

Peak memory: the largest worker VmHWM, read after the call that served as many images as the approving run's
busiest worker had (so a longer run, whose allocator grew on more image shapes, is not held against a shorter
baseline), over `memory_max_ratio` (default 1.3x) of the approved peak fails.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from harness.environment import stack
from harness.golden.approval import ImageSpeed, SpeedBaseline, runner_type
from harness.golden.status import stack_differences
from harness.model.inference import ImageOutcome
from harness.model.outcome import CheckResult
from harness.model.views import PlanView
from harness.execution.normaliser import WORKLOAD

SLOWEST_SHOWN = 5


def image_speeds(outcomes: Mapping[str, ImageOutcome]) -> dict[str, ImageSpeed]:
    """Every image that ran warm with the yardstick next to it. A worker's first call builds its kernels (about
    1.5x the CPU of a warm call): its first repeat is left out, and an image with no other repeat is not judged."""
    out = {}
    for i, o in outcomes.items():
        skip = 1 if o.first_call else 0
        cost, wall = o.cost_s[skip:], o.predict_s[skip:]
        if o.ok and cost and wall and o.reference_s and min(cost) > 0:
            out[i] = ImageSpeed(statistics.median(cost), o.reference_s, statistics.median(wall))
    return out


def clock_of(outcomes: Mapping[str, ImageOutcome]) -> str:
    clocks = {o.cost_clock for o in outcomes.values() if o.ok}
    return clocks.pop() if len(clocks) == 1 else "cpu"


def peak_memory(outcomes: Mapping[str, ImageOutcome], served_limit: int | None = None) -> tuple[int | None, int]:
    """(the largest peak RSS in KiB read after a call that ended with at most `served_limit` images served by
    its worker, the most images that worker had served then); (None, 0) when nothing was read."""
    best: tuple[int | None, int] = (None, 0)
    for o in outcomes.values():
        if o.peak_rss_kib is None or (served_limit is not None and o.served > served_limit):
            continue
        if best[0] is None or o.peak_rss_kib > best[0]:
            best = (o.peak_rss_kib, o.served)
    return best


def path_cost(reference: Mapping[str, ImageOutcome], other: Mapping[str, ImageOutcome]) -> dict[str, Any]:
    """What `other` costs the engine over `reference`, image by image, in the speed check's measure (engine cost /
    yardstick, so the two passes of one run compare even when the machine's load moved between them): only images
    both measured warm. The whole pipeline per image: det and rec together."""
    ref, oth = image_speeds(reference), image_speeds(other)
    return cost_of_ratios({i: oth[i].ratio / ref[i].ratio for i in ref.keys() & oth.keys()})


def cost_of_ratios(ratios: Mapping[str, float]) -> dict[str, Any]:
    """path_cost's record from its per-image ratios (also what merging shards' records gives)."""
    values = list(ratios.values())
    return {"images": len(values), "median": statistics.median(values) if values else None,
            "p90": _quantile(values, 0.9) if values else None, "per_image": dict(sorted(ratios.items())),
            "measure": "engine cost / yardstick, per image, other path over reference path"}


def make_baseline(outcomes: Mapping[str, ImageOutcome], stack: Mapping[str, Any], approved_at: str) -> SpeedBaseline:
    peak, served = peak_memory(outcomes)
    return SpeedBaseline(approved_at, dict(stack), len(outcomes), clock_of(outcomes), image_speeds(outcomes), peak,
                         max((o.served for o in outcomes.values()), default=served))


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pick_baseline(baselines: Sequence[SpeedBaseline], current_stack: Mapping[str, Any]) -> SpeedBaseline | None:
    """The baseline made on this runner type (CPU model and ISA flags), if any: a baseline from another CPU
    measured another ratio of engine to yardstick (oneDNN and numpy gain differently from an ISA) and would hide a
    2x regression or invent one."""
    runner = runner_type(current_stack)
    return next((b for b in baselines if b.runner == runner), None)


def speed_check(outcomes: Mapping[str, ImageOutcome], baselines: Sequence[SpeedBaseline],
                current_stack: Mapping[str, Any], *, max_ratio: float, memory_max_ratio: float,
                require_baseline: bool, no_baseline_why: str, approve_hint: str = "") -> CheckResult:
    """Judges the run against the baseline of its own runner type among `baselines` (a profile's, one per runner
    type); `approve_hint` is the command that approves one here."""
    speeds = image_speeds(outcomes)
    latencies = [s.latency_s for s in speeds.values()]
    measured: dict[str, Any] = {
        "images": len(speeds),
        "latency_median_s": statistics.median(latencies) if latencies else None,
        "latency_p90_s": _quantile(latencies, 0.9) if latencies else None,
        "reference_median_s": statistics.median(s.reference_s for s in speeds.values()) if speeds else None,
    }
    baseline = pick_baseline(baselines, current_stack)
    if baseline is None and baselines:  # made on other CPUs: never judged as if it were this runner's
        made_on = "; ".join(b.runner for b in baselines)
        summary = (f"not judged: baseline made on {made_on}; this runner is {runner_type(current_stack)}: approve "
                   f"one on this runner type with {approve_hint or '`ocr-harness speed baseline`'}")
        return CheckResult("speed", not require_baseline, summary,
                           details={"measured": measured, "baseline": None, "other_runners": [b.runner for b in baselines],
                                    "runner": runner_type(current_stack)}, skipped=not require_baseline)
    if baseline is None:
        summary = f"not judged: no baseline ({no_baseline_why})"
        return CheckResult("speed", not require_baseline, summary, details={"measured": measured, "baseline": None},
                           skipped=not require_baseline)
    if clock_of(outcomes) != baseline.clock:
        return CheckResult("speed", False, f"not comparable: this run measured {clock_of(outcomes)} seconds, the "
                           f"baseline {baseline.clock} seconds (another kind of backend); approve a new baseline",
                           details={"measured": measured})
    if not speeds and any(o.ok and o.first_call for o in outcomes.values()):  # not judged: never a pass
        return CheckResult("speed", not require_baseline, "not judged: every image ran once, as its worker's first "
                           "(cold) call; run at least 2 repeats or more images than workers", skipped=True,
                           details={"measured": measured})
    common = sorted(set(speeds) & set(baseline.images))
    if not common:  # judged nothing: never a pass
        return CheckResult("speed", False, f"judged nothing: none of the {len(speeds)} images measured here is among "
                           f"the baseline's {len(baseline.images)}", details={"measured": measured})
    ratios = {i: speeds[i].ratio / baseline.images[i].ratio for i in common}
    median, p90 = statistics.median(ratios.values()), _quantile(list(ratios.values()), 0.9)
    approved_ref = statistics.median(baseline.images[i].reference_s for i in common)
    now_ref = statistics.median(speeds[i].reference_s for i in common)
    slowest = sorted(common, key=lambda i: -speeds[i].latency_s)[:SLOWEST_SHOWN]
    diffs = stack_differences(baseline.stack, current_stack)
    peak, served = peak_memory(outcomes, baseline.served_at_peak or None)
    mem_ratio = peak / baseline.peak_rss_kib if peak and baseline.peak_rss_kib else None
    slow = median > max_ratio
    fat = mem_ratio is not None and mem_ratio > memory_max_ratio
    details: dict[str, Any] = {
        "measured": measured,
        "judged_images": len(common),
        "ratio": {"median": median, "p90": p90, "max_ratio": max_ratio},
        "reference": {"now_median_s": now_ref, "approved_median_s": approved_ref},
        "clock": baseline.clock,
        "cost": {"now_median_s": statistics.median(speeds[i].cost_s for i in common),
                 "approved_median_s": statistics.median(baseline.images[i].cost_s for i in common)},
        "latency": {"now_median_s": statistics.median(speeds[i].latency_s for i in common),
                    "approved_median_s": statistics.median(baseline.images[i].latency_s for i in common)},
        "slowest": [{"id": i, "latency_s": speeds[i].latency_s, "ratio": ratios[i]} for i in slowest],
        "memory": {"peak_rss_mib": None if peak is None else peak / 1024, "served": served,
                   "approved_peak_rss_mib": None if baseline.peak_rss_kib is None else baseline.peak_rss_kib / 1024,
                   "approved_served": baseline.served_at_peak, "ratio": mem_ratio, "max_ratio": memory_max_ratio},
        "baseline": {"approved_at": baseline.approved_at, "selection": baseline.selection},
        "stack_differences": [d.to_dict() for d in diffs],
    }
    cost, lat = details["cost"], details["latency"]
    parts = [f"median image {median:.2f}x its approved cost/yardstick ratio (p90 {p90:.2f}x; fails above "
             f"{max_ratio:g}x) on {len(common)} images; {baseline.clock} s per image {cost['now_median_s']:.3g} "
             f"(approved {cost['approved_median_s']:.3g}), yardstick {now_ref * 1e3:.3g} ms (approved "
             f"{approved_ref * 1e3:.3g} ms); wall latency median {lat['now_median_s']:.3g} s, p90 "
             f"{measured['latency_p90_s']:.3g} s (approved median {lat['approved_median_s']:.3g} s)"]
    if mem_ratio is not None and peak is not None:  # a ratio is measured from a peak
        parts.append(f"peak RSS {peak / 1024:.0f} MiB, {mem_ratio:.2f}x approved (fails above {memory_max_ratio:g}x)")
    else:
        parts.append("peak RSS not measured")
    if diffs:
        parts.append("stack differs from the baseline's: " + ", ".join(d.brief() for d in diffs[:6]))
    verdict = [w for w, bad in (("SLOWER", slow), ("MORE MEMORY", fat)) if bad]
    summary = ("; ".join(verdict) + ": " if verdict else "") + "; ".join(parts)
    return CheckResult("speed", not (slow or fat), summary, details=details, judged=len(common))


def speed_stack(p: PlanView) -> dict[str, Any]:
    """What a speed baseline is measured on: the main pass's engine stack, its workers and the yardstick."""
    return {**stack(p.profile.engine, p.dirs.file_hashes(), dict(p.backend_facts)), "workers": p.profile.workers,
            "yardstick": WORKLOAD}
