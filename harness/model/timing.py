"""The report's `timing`: made by a run from its images' predict times, and made again the same way by
`report merge` from the per-image times of its shards."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any


def timing_summary(predict_s: Sequence[float], load_s: Sequence[float], wall_s: float,
                   phases: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The report's `timing` from per-image predict times (each image's median over repeats); shared with
    `report merge`, which re-aggregates the per-image times of its shards."""
    per_image = sorted(predict_s)
    return {
        "images": len(per_image),
        "predict_median_s": statistics.median(per_image) if per_image else None,
        "predict_p90_s": per_image[min(len(per_image) - 1, int(0.9 * len(per_image)))] if per_image else None,
        "model_load_s": statistics.median(load_s) if load_s else None,
        "wall_s": wall_s,
        "phases": {k: dict(v) for k, v in sorted((phases or {}).items())},
    }
