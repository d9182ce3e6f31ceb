"""report.json of a run: the typed run report (harness.model.report) of what the plan and the state hold,
serialised with no machine path in it."""

from __future__ import annotations

import datetime as dt
import hashlib
import statistics
from pathlib import Path
from typing import Any

from harness.backends import environment_record
from harness.environment import environment, node_id, stack
from harness.execution.state import RunPlan, RunState
from harness.model.corpus import Corpus, CorpusItem
from harness.model.report import ImageRecord, RunReport
from harness.model.results import canonical_line
from harness.model.timing import timing_summary
from harness.run.pipeline.machine_paths import report_paths


def selection_info(corpus: Corpus) -> dict[str, Any]:
    """The corpus selection before sharding: every shard of one run reports the same, which is how
    `report merge` recognises shards of one corpus and knows how many images make the whole."""
    digest = hashlib.sha256()
    for it in corpus.items:
        digest.update((canonical_line([it.id, _relative(it.path, corpus.root), it.sha256]) + "\n").encode("utf-8"))
    return {"images": len(corpus.items), "complete": corpus.selection_is_complete, "sha256": digest.hexdigest()}


def _selection_index(p: RunPlan) -> list[int | None]:
    """Each planned item's position in the corpus selection, of which `p.items` is a subsequence (by position,
    not id: duplicate ids are distinct, failing items)."""
    out: list[int | None] = []
    n = 0
    for it in p.items:
        while n < len(p.corpus.items) and p.corpus.items[n] != it:
            n += 1
        out.append(n if n < len(p.corpus.items) else None)
        n += 1
    return out


def image_record(it: CorpusItem, index: int | None, file: str, state: RunState, node: str | None = None) -> ImageRecord:
    """One image of the report: its verdict under every check that judged it, its measurements, and where it
    ran (`node`, harness.environment.node_id, and the worker's pid)."""
    out = state.outcomes.get(it.id)
    per_check = {name: c.per_image[it.id] for name, c in state.checks.items() if it.id in c.per_image}
    ran = out is not None and out.ok
    return ImageRecord(
        id=it.id, index=index, file=file, template=it.template, tags=it.tags,
        passed=all(c.passed for c in per_check.values()), error=out.error if out is not None else "not run",
        checks=per_check,
        timings=({"predict_s": statistics.median(out.predict_s), "read_s": out.read_s,
                  "repeats_s": list(out.predict_s)} if out is not None and ran else {}),
        lines=len(out.runs[0].lines) if out is not None and ran else 0,
        accuracy=state.image_accuracy.get(it.id),
        judged_on={"node": (out.node if out is not None and out.node else node),
                   "worker_pid": out.worker_pid if out is not None else None}
        if node is not None else None)


def run_report(p: RunPlan, state: RunState, started: dt.datetime, wall_s: float) -> RunReport:
    """The typed report of what `state` holds (harness.model.report); `build_report` is it as written."""
    node = node_id()
    images = [image_record(it, index, _relative(it.path, p.corpus.root), state, node)
              for it, index in zip(p.items, _selection_index(p), strict=True)]
    env = environment()
    if state.executor is not None:
        env["executor"] = state.executor
    env.update(environment_record(p.profile.engine))
    return RunReport(
        passed=all(c.passed for c in state.checks.values()),
        started_at=started.isoformat(timespec="seconds"),
        duration_s=wall_s,
        profile={"name": p.profile.name, "settings": p.profile.settings_dict()},
        environment=env,
        stack=stack(p.profile.engine, p.dirs.file_hashes(), dict(p.backend_facts)),
        corpus={"root": _display_path(p.corpus.root, p.base), "subset": p.profile.subset, "selected": len(p.items),
                "complete": p.corpus.selection_is_complete and p.shard is None, "has_manifest": p.corpus.has_manifest,
                "shard": list(p.shard) if p.shard else None, "selection": selection_info(p.corpus),
                **({"shard_source": dict(p.shard_source)} if p.shard_source is not None else {})},
        checks={name: c.as_reported() for name, c in state.checks.items()},
        images=tuple(images),
        accuracy=state.accuracy,
        timing=timing_summary([statistics.median(o.predict_s) for o in state.outcomes.values() if o.ok],
                              state.load_s, wall_s, state.phases),
    )


def build_report(p: RunPlan, state: RunState, started: dt.datetime, wall_s: float) -> RunReport:
    """The report of a finished run as written: the typed report with no machine path in it."""
    report: RunReport = report_paths(p, state).scrub(run_report(p, state, started, wall_s))
    return report


def _display_path(path: Path, base: Path) -> str:
    """Relative to the config's directory when inside it, so reports read the same on every checkout."""
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
