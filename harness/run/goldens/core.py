"""The one golden-inference core behind `ocr-harness golden refresh` and the pytest plugin.

The rules a golden is made under, written once:
- the engine: `Profile.golden_engine()` (recognition batch 1 when `golden_path = "bs1"`);
- the repeat floor: a golden is only as good as its reproducibility, so it is made from at least two repeats;
- the refusal: output that differs across those repeats never becomes a golden (harness.golden.refresh gates
  each item on it; `--force --reason` is the CLI's recorded exception);
- who may write: a profile that shares another backend's goldens never writes them;
- the stack stamped on what is written: the golden engine's, with the model files and the backend's facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.backends import check_may_write_goldens
from harness.checks.determinism import first_divergence
from harness.corpus.loader import content_sha256
from harness.environment import stack
from harness.golden.refresh import RefreshMode, RefreshPlan, plan_refresh
from harness.golden.store import GoldenStore
from harness.model.corpus import CorpusItem
from harness.model.inference import ImageOutcome
from harness.model.settings import Profile

if TYPE_CHECKING:
    from harness.execution.state import RunPlan

MIN_REPEATS = 2  # a single run cannot show that an output is reproducible

__all__ = ["MIN_REPEATS", "check_may_write_goldens", "golden_repeats", "golden_stack", "plan_golden_refresh",
           "reproducible"]


def golden_repeats(profile: Profile) -> int:
    """Repeats per image when goldens are (re)made: the profile's, never fewer than MIN_REPEATS."""
    return max(MIN_REPEATS, profile.checks.repeats)


def reproducible(outcome: ImageOutcome) -> bool:
    """Every repeat bit-identical to the first (texts, polygons, scores at full precision)."""
    return all(first_divergence(outcome.runs[0], r) is None for r in outcome.runs[1:])


def golden_stack(p: RunPlan) -> dict[str, Any]:
    """The stack a golden made on this plan records: the golden engine, model files, the backend's facts."""
    return stack(p.profile.golden_engine(), p.dirs.file_hashes(), dict(p.backend_facts))


def plan_golden_refresh(store: GoldenStore, outcomes: Mapping[str, ImageOutcome], items: Mapping[str, CorpusItem],
                        mode: RefreshMode, profile: Profile) -> RefreshPlan:
    """What a refresh in `mode` would write from these outcomes (made with `golden_repeats` on the golden
    engine): each image's first run, refused where its repeats differ, with its image hash and key fields."""
    current = {i: o.runs[0] for i, o in outcomes.items() if o.ok}
    return plan_refresh(store, current, mode, profile.tolerances,
                        {i: reproducible(o) for i, o in outcomes.items() if o.ok},
                        image_sha256={i: sha for i in current if (sha := content_sha256(items[i]))},
                        key_texts={i: dict(items[i].fields) for i in current if items[i].fields})
