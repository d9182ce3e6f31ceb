"""The whole job behind `ocr-harness run`: plan, infer, check, write results and reports.

Inputs that can be wrong (profile, corpus, goldens, model pack) are all read and validated before the first
model loads. The checks are the registry's (harness.checks.registry); harness.run.pipeline.execute runs them on the shared
`RunState`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness.checks import registry
from harness.corpus.loader import read_image
from harness.execution.state import RunPlan, RunState
from harness.metrics import corpus_accuracy, image_accuracy
from harness.model.report import RunReport
from harness.model.results import OcrResult, canonical_line
from harness.model.settings import Profile
from harness.report.writer import write_reports
from harness.run.pipeline.execute import execute, prepare_checks
from harness.run.pipeline.incomplete import TRACEBACK_FILE, Stop, write_incomplete
from harness.run.pipeline.machine_paths import machine_paths
from harness.run.pipeline.plan import plan
from harness.util import atomic
from harness.util.errors import ImageError, InternalError, UserError, environment_problem
from harness.util.progress import terminal_progress


def write_results(out: Path, p: RunPlan, state: RunState) -> None:
    """results.jsonl: one canonical record per image in corpus order (the first repeat; errors included)."""
    paths = machine_paths(p)
    lines = []
    for it in p.items:
        o = state.outcomes.get(it.id)
        error = (paths.text(o.error) if o.error else None) if o is not None else "not run"
        record: dict[str, Any] = {"id": it.id, "error": error}
        if o is not None and o.ok:
            record["result"] = o.runs[0].to_dict()
        lines.append(canonical_line(record))
    atomic.write_text(out / "results.jsonl", "".join(line + "\n" for line in lines))


def first_results(outcomes: dict[str, Any]) -> dict[str, OcrResult]:
    return {i: o.runs[0] for i, o in outcomes.items() if o.ok}


def accuracy_hook(p: RunPlan, state: RunState) -> None:
    """Per-image accuracy (kept in the report for merging) and its corpus aggregate, from the same rows."""
    current = first_results(state.outcomes)
    rows = []
    for it in p.items:
        if it.truth and it.id in current:
            acc = image_accuracy([(t.text, t.poly) for t in it.truth], dict(it.fields), current[it.id])
            state.image_accuracy[it.id] = acc
            rows.append((it.id, it.template, it.tags, acc))
    state.accuracy = corpus_accuracy(rows) if rows else None


def run_and_report(profile: Profile, base: Path, out: Path, *, shard: tuple[int, int] | None = None,
                   formats: Mapping[str, Any] | None = None,
                   shard_source: Mapping[str, Any] | None = None) -> RunReport:
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("worker-*.log"):  # an earlier run's: workers append, so each run starts its own
        stale.unlink(missing_ok=True)
    p = plan(profile, base, shard=shard, log_dir=out, shard_source=shard_source)
    state = RunState(prepared=prepare_checks(p))  # goldens, a reference's models: read before any model loads
    golden_inputs = (state.prepared or {}).get("golden")  # prepare_checks returns a dict: set just above
    goldens: dict[str, OcrResult] = {i: g.result for i, g in golden_inputs.goldens.items()} if golden_inputs else {}
    by_id = {it.id: it for it in p.items}

    def load(image_id: str) -> np.ndarray | None:
        item = by_id.get(image_id)
        try:
            return (read_image(item.path, max_pixels=profile.max_image_pixels, max_bytes=profile.max_image_bytes)
                    if item else None)
        except ImageError:  # the image already failed the run; the HTML shows it without a picture
            return None

    started, t0 = dt.datetime.now(dt.timezone.utc), time.perf_counter()
    try:
        report, state = execute(p, progress=terminal_progress(), state=state,
                                extra_checks=[accuracy_hook] if profile.checks.accuracy else [])
        write_results(out, p, state)
        write_reports(out, report, first_results(state.outcomes), load, layout=registry.layout(), goldens=goldens,
                      **(formats or {}))
    except BaseException as e:  # every way a run can stop leaves reports marked incomplete
        stop = Stop.from_exception(e, out)

        def write(report: RunReport) -> None:
            write_results(out, p, state)
            write_reports(out, report, first_results(state.outcomes), load, layout=registry.layout(),
                          goldens=goldens, complete=False, **(formats or {}))

        write_incomplete(p, state, started, time.perf_counter() - t0, stop, write, out)
        if stop.internal:
            raise InternalError(stop.reason, out / TRACEBACK_FILE) from e
        if (problem := environment_problem(e)) is not None:
            raise UserError(problem) from e
        raise
    return report
