"""A run that stopped early (a signal, a bug, an error found mid-run) still leaves its reports, marked incomplete.

The report of what finished has `complete: false` and `incomplete: {reason, finished_images, traceback}`;
images that did not finish are "not run"; a failing `run` check makes every renderer (and CI) show the run as
failed and why. A bug's traceback goes to `traceback.txt` in the output dir, named in the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.checks import registry
from harness.checks.inference_check import inference_check
from harness.execution.state import RunPlan, RunState
from harness.model.outcome import CheckResult
from harness.model.report import Incomplete, RunReport
from harness.model.results import canonical_json
from harness.report.junit import render_junit
from harness.report.markdown import render_summary
from harness.run.pipeline.build_report import run_report
from harness.run.pipeline.machine_paths import machine_paths, report_paths
from harness.util import atomic
from harness.util.errors import EXIT_INTERNAL, EXIT_SIGINT, EXIT_USAGE, Cancelled, UserError, environment_problem
from harness.util.portable import MachinePaths

TRACEBACK_FILE = "traceback.txt"


@dataclass(frozen=True)
class Stop:
    """Why a run stopped early, and the exit code that says so."""

    reason: str
    exit_code: int
    internal: bool = False  # a bug: its traceback is in TRACEBACK_FILE

    @classmethod
    def from_exception(cls, e: BaseException, out: Path) -> Stop:
        """Classifies `e`; for a bug, also saves its traceback to `out / TRACEBACK_FILE`."""
        if isinstance(e, Cancelled):
            return cls(str(e), e.exit_code)
        if isinstance(e, KeyboardInterrupt):
            return cls("cancelled by SIGINT", EXIT_SIGINT)
        if isinstance(e, UserError):
            return cls(f"error: {e}", EXIT_USAGE)
        if (problem := environment_problem(e)) is not None:  # no traceback: a full disk would leave it empty
            return cls(f"error: {problem}", EXIT_USAGE)
        if isinstance(e, Exception):
            atomic.write_text(out / TRACEBACK_FILE, "".join(traceback.format_exception(e)))
            return cls(f"internal error: {type(e).__name__}: {e}", EXIT_INTERNAL, internal=True)
        return cls(f"stopped by {type(e).__name__}", EXIT_INTERNAL)


def incomplete_report(p: RunPlan, state: RunState, started: dt.datetime, wall_s: float, stop: Stop) -> RunReport:
    reason = machine_paths(p).text(stop.reason)
    finished = [it.id for it in p.items if it.id in state.outcomes]
    if state.outcomes and "inference" not in state.checks:  # stopped during the main pass: judge what finished
        state.checks["inference"] = inference_check(p, state.outcomes)
    state.checks["run"] = CheckResult("run", False, f"incomplete, {reason}: {len(finished)} of {len(p.items)} "
                                                    "images finished")
    report = run_report(p, state, started, wall_s)
    images = tuple(img if img.id in state.outcomes else dataclasses.replace(img, error=f"not run ({reason})",
                                                                              passed=False)
                   for img in report.images)
    report = dataclasses.replace(report, images=images).stopped(
        Incomplete(reason, tuple(finished), TRACEBACK_FILE if stop.internal else None), stop.exit_code)
    scrubbed: RunReport = report_paths(p, state).scrub(report)
    return scrubbed


def write_incomplete(p: RunPlan, state: RunState, started: dt.datetime, wall_s: float, stop: Stop,
                     write: Callable[[RunReport], None], out: Path) -> None:
    """Writes what it can: every report of what finished through `write` (report.json first), or, if building
    that report fails too, the bare verdict."""
    try:
        report = incomplete_report(p, state, started, wall_s, stop)
    except Exception:
        report = bare_verdict(p, stop)
    with contextlib.suppress(Exception):  # a renderer's bug must not hide why the run stopped
        write(report)
    if not (out / "report.json").is_file():
        atomic.write_text(out / "report.json", canonical_json(report.to_dict()))


def bare_verdict(p: RunPlan, stop: Stop) -> RunReport:
    """The report when even the report of what finished cannot be built: the verdict and why, nothing else."""
    return RunReport(passed=False, started_at="", duration_s=None, profile={}, environment={}, stack={}, corpus={},
                     checks={}, images=(), accuracy=None, timing={}).stopped(
        Incomplete(machine_paths(p).text(stop.reason), (), TRACEBACK_FILE if stop.internal else None), stop.exit_code)


def write_not_started(out: Path, e: BaseException, started: dt.datetime, wall_s: float, profile_name: str | None,
                      paths: MachinePaths) -> None:
    """Reports of a run that ended before it had a plan (a bad profile, flag, corpus, golden set or service):
    report.json, junit.xml with a failing `run` testcase and summary.md, so that a CI step reading them sees
    why, never an earlier run's files."""
    stop = Stop.from_exception(e, out)
    reason = paths.text(stop.reason)
    report = RunReport(
        passed=False, started_at=started.isoformat(timespec="seconds"), duration_s=round(wall_s, 3),
        profile={"name": profile_name, "settings": {}}, environment={}, stack={}, corpus={},
        checks={"run": CheckResult("run", False, f"not started, {reason}")}, images=(), accuracy=None,
        timing={},
    ).stopped(Incomplete(reason, (), TRACEBACK_FILE if stop.internal else None), stop.exit_code)
    atomic.write_text(out / "report.json", canonical_json(report.to_dict()))
    with contextlib.suppress(Exception):  # a renderer's bug must not hide why the run stopped
        typed = report.laid_out(registry.layout())
        atomic.write_text(out / "junit.xml", render_junit(typed))
        atomic.write_text(out / "summary.md", render_summary(typed))
