"""A check from outside the harness, in one module: the example of docs/architecture.md's "Extending" section.

Registered by naming this module in `$OCR_HARNESS_CHECKS` (tests/checks/test_registry.py puts tests/ on the
path). It judges the real output of every image: each must read at least `checks.dummy_min_lines` lines.
Planting a fault is setting that above any slip's line count.
"""

from __future__ import annotations

from harness.checks.registry import CheckSpec, register
from harness.model.catalogue import Option
from harness.model.outcome import CheckResult, ImageCheck, from_images
from harness.model.views import PlanView, StateView


def min_lines(p: PlanView, state: StateView) -> CheckResult:
    need = p.profile.checks.get("dummy_min_lines")
    per_image = {}
    for it in p.items:
        outcome = state.outcomes.get(it.id)
        if outcome is None or not outcome.ok:  # not judged: the inference check fails it
            per_image[it.id] = ImageCheck(False, "did not run", judged=False)
            continue
        n = len(outcome.runs[0].lines)
        per_image[it.id] = ImageCheck(n >= need, f"{n} lines (need {need})", {"line_count": n})
    return from_images("dummy", per_image, f"read fewer than {need} lines", {"min_lines": need})


SPEC = register(CheckSpec(
    "dummy", 125, min_lines, key="dummy", flag_help="every image reads at least checks.dummy_min_lines lines",
    options=(Option("dummy_min_lines", int, 1, "lines every image must read",
                    lambda v: None if v >= 1 else "must be >= 1"),)))
