"""`ocr-harness plan`: how long a profile's run takes for N images on K shards, from a measured run.

A run's report carries `timing.phases`: the wall time of each inference path and model-level check, with the
images it ran. Each phase costs a fixed start (a worker spawn + model load, `timing.model_load_s`; none for a
phase that reused loaded workers, `workers_started` 0) plus a per-image cost. Phases scale in three ways:
- corpus: every image (main repeats, the bs1 service path);
- sample: the stack checks run on `checks.stack_sample` images (harness.sampling), or every image when 0;
- fixed: model-level checks (audit, probe, BN drift) cost the same whatever the corpus.
The rest of the run (golden comparison, accuracy, reports) is taken as per-image. Shards run side by side:
each pays every worker start and its share of the images; the model-level checks run on shard 1 only, so the
prediction is shard 1's, the longest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.checks import registry
from harness.checks.registry import Scaling
from harness.model.settings import Profile


@dataclass(frozen=True)
class PhaseCost:
    label: str
    scaling: Scaling
    start_s: float
    per_image_s: float

    def predict(self, images: int) -> float:
        return self.start_s + self.per_image_s * images if self.scaling != "fixed" else self.start_s


@dataclass(frozen=True)
class Prediction:
    images: int
    shards: int
    phases: tuple[tuple[str, float], ...]  # per shard, side by side

    @property
    def wall_s(self) -> float:
        return sum(s for _, s in self.phases)

    def table(self) -> str:
        rows = [f"  {label:<16} {s / 60:7.2f} min" for label, s in self.phases]
        return "\n".join([*rows, f"  {'total':<16} {self.wall_s / 60:7.2f} min per shard "
                                  f"({self.images} images, {self.shards} shard{'s' if self.shards > 1 else ''})"])


def _phase_costs(profile: Profile) -> dict[str, Scaling]:
    """Each phase a run of `profile` has, as `timing.phases` names them (harness.checks.registry), and how its
    cost scales; the main pass first."""
    out: dict[str, Scaling] = {"main": "corpus"}
    for spec in registry.specs():
        for label, scaling in spec.phase_costs(profile):
            out.setdefault(label, scaling)
    return out


def expected_phases(profile: Profile) -> list[str]:
    """The phases a run of `profile` has, as `timing.phases` names them."""
    return list(_phase_costs(profile))


def fit(report: Mapping[str, Any], profile: Profile) -> tuple[list[PhaseCost], list[str]]:
    """Per-phase costs from a measured report, scaled to the profile's repeats; and the phases the profile
    needs that the report did not measure."""
    timing = report["timing"]
    phases: Mapping[str, Mapping[str, Any]] = timing.get("phases") or {}
    load = float(timing.get("model_load_s") or 0.0)
    costs, missing = [], []
    for label, scaling in _phase_costs(profile).items():
        ph = phases.get(label)
        if ph is None:
            missing.append(label)
            continue
        if scaling == "fixed" or not ph["images"]:
            costs.append(PhaseCost(label, "fixed", float(ph["wall_s"]), 0.0))
            continue
        # A phase that reused loaded workers paid no load (reports before `workers_started` are taken as loading).
        start = min(load, float(ph["wall_s"])) if ph.get("workers_started", 1) else 0.0
        per_image = (float(ph["wall_s"]) - start) / ph["images"]
        if label == "main":  # repeats are calls per image
            per_image *= profile.checks.repeats / max(1, int(ph.get("calls_per_image", 1)))
        costs.append(PhaseCost(label, scaling, start, per_image))
    measured = sum(float(ph["wall_s"]) for ph in phases.values())
    images = int(report["corpus"]["selected"]) or 1
    rest = max(0.0, float(timing["wall_s"]) - measured) / images
    costs.append(PhaseCost("checks+reports", "corpus", 0.0, rest))
    return costs, missing


def largest_shard(images: int, shards: int) -> int:
    """The images planned for the largest of `shards` shards. The split hashes each id (harness.run.pipeline.plan.
    shard_items), so shards are uneven: nearly Poisson counts of mean m = images / shards, whose largest is about
    m + sqrt(2 ln shards) standard deviations; crc32 of sequential ids strays further (3.1 sd: 1547 of 10,000
    ids on one of 7 shards, 1429 on average). Planned: m + z sqrt(m) + z^2 / 3 with z = sqrt(2 ln shards) + 1.5,
    which held for every shard count up to `most_shards` on four id families
    (tests/run/shards/test_costmodel.py); 10,000 on 37 shards: 345 planned, 314 real, 270 on average."""
    if shards <= 1 or images <= 0:
        return max(images, 0)
    m, z = images / shards, math.sqrt(2 * math.log(shards)) + 1.5
    return min(images, math.ceil(m + z * math.sqrt(m) + z * z / 3))


def most_shards(images: int) -> int:
    """The most shards for `images` with at most a 1% chance that the hash split leaves one empty (an empty shard
    has nothing to run and stops): shards * exp(-images / shards) <= 0.01."""
    return max([1, *(k for k in range(2, images + 1) if k * math.exp(-images / k) <= 0.01)])


def predict(costs: list[PhaseCost], profile: Profile, images: int, shards: int = 1) -> Prediction:
    """The largest shard's time: each phase at that shard's share of the images (or of the sample)."""
    sample = min(profile.checks.stack_sample or images, images)
    per_shard = {"corpus": largest_shard(images, shards), "sample": largest_shard(sample, shards), "fixed": 0}
    return Prediction(images, shards, tuple((c.label, c.predict(per_shard[c.scaling])) for c in costs))


def fewest_shards(costs: list[PhaseCost], profile: Profile, images: int, budget_s: float) -> Prediction | None:
    """The fewest shards whose largest shard fits the budget, at most `most_shards` (none left empty); None if
    none. The largest shard never grows with the shard count, so this bisects."""
    low, high = 1, most_shards(images)
    if predict(costs, profile, images, high).wall_s > budget_s:
        return None
    while low < high:
        mid = (low + high) // 2
        if predict(costs, profile, images, mid).wall_s <= budget_s:
            high = mid
        else:
            low = mid + 1
    return predict(costs, profile, images, low)


def shards_for_budget(costs: list[PhaseCost], profile: Profile, images: int, budget_s: float,
                      max_shards: int = 256) -> Prediction | None:
    """The fewest shards (GitHub's matrix allows 256; none left empty) whose largest shard fits the budget; None
    if none."""
    for k in range(1, min(max_shards, most_shards(images)) + 1):
        p = predict(costs, profile, images, k)
        if p.wall_s <= budget_s:
            return p
    return None
