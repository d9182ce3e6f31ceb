"""One harness run: the main pass, then every check of the catalogue, then the report dict. The CLI and the
pytest entry both call `execute` (through harness.run.pipeline.job or directly).

Data flows one way: this module runs inference and checks; report renderers only read the dict it returns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.checks import registry
from harness.backends.paddle.child import ChildError
from harness.checks.registry import CheckSpec
from harness.execution.executor import main_executor
from harness.execution.scheduler import infer_all
from harness.execution.state import RunPlan, RunState, usable_items
from harness.model.outcome import CheckResult, left_to_first_shard, skipped
from harness.model.report import RunReport
from harness.model.settings import Profile
from harness.run.pipeline.build_report import build_report
from harness.run.pipeline.machine_paths import machine_paths
from harness.util.progress import Progress

def execute(p: RunPlan, *, progress: Progress | None = None,
            extra_checks: Sequence[Callable[[RunPlan, RunState], None]] = (),
            state: RunState | None = None) -> tuple[RunReport, RunState]:
    """Run inference and every registered check (harness.checks.registry) that applies to the profile, then
    `extra_checks`; returns the typed report as written and the raw state for renderers.

    `state` is filled as the run goes: a caller that passes one still has what finished if the run stops."""
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    prof, checks = p.profile, p.profile.checks
    state = state if state is not None else RunState()
    state.progress = progress
    if state.prepared is None:
        state.prepared = prepare_checks(p)
    with main_executor(p, state) as drivers:
        try:
            with state.phase("main", len(usable_items(p)), checks.repeats):
                # Ray actors are not kept: idle, they would hold the CPUs the next pass's actors need.
                infer_all(p, prof.engine, "main", checks.repeats, drivers, progress, state.load_s,
                          into=state.outcomes, pool=state.pool,
                          keep=keeps_main_workers(prof) and prof.executor.kind == "local")
            run_checks(p, state)
            for hook in extra_checks:
                hook(p, state)
        finally:
            state.pool.close()
    report = build_report(p, state, started, time.perf_counter() - t0)
    return report, state


def keeps_main_workers(profile: Profile) -> bool:
    """Whether a check that runs for `profile` takes the main pass's loaded workers afterwards."""
    return any(spec.reuses_main_workers and spec.applies(profile) for spec in registry.specs())


def prepare_checks(p: RunPlan) -> dict[str, Any]:
    """What each check that will run reads before any model loads (goldens, a reference's models)."""
    return {spec.name: spec.prepare(p) for spec in registry.specs()
            if spec.prepare and spec.applies(p.profile) and not spec.left_to_first_shard(p.shard)}


def run_checks(p: RunPlan, state: RunState) -> None:
    """Every registered check in registration order: run when it applies to the profile, else recorded as
    skipped with the reason (or left out, for a check that only exists for some backends)."""
    for spec in registry.specs():
        if spec.absent_unless is not None and not spec.absent_unless(p.profile):
            continue
        why = spec.skip_reason(p.profile)
        if why is None and p.shard is not None and spec.left_to_first_shard(p.shard):
            state.checks[spec.name] = left_to_first_shard(spec.name, p.shard)
            continue
        state.checks[spec.name] = skipped(spec.name, why) if why is not None else _run_one(spec, p, state)


def _run_one(spec: CheckSpec, p: RunPlan, state: RunState) -> CheckResult:
    """A child check (audit, probe, bn_drift run Paddle in a child process) that dies, by a signal, an exception
    or a timeout, fails that check with the reason, and the run goes on to its other checks and reports."""
    try:
        with state.phase(spec.name, 0) if spec.timed else contextlib.nullcontext():
            result = spec.run(p, state)
    except ChildError as e:
        if not spec.child:
            raise
        reason = machine_paths(p).text(str(e)).strip()
        return CheckResult(spec.name, False, f"{spec.name} did not run: {reason.splitlines()[0]}",
                           details={"error": reason})
    if result.name != spec.name:
        raise ValueError(f"check {spec.name!r} returned a result named {result.name!r}")
    return result
