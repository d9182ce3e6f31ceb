"""The whole job behind `ocr-harness run`: plan, infer, check, write results and reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import atomic
from harness.config import Profile
from harness.results import canonical_json, canonical_line
from harness.runner import RunPlan, RunState, execute, plan, terminal_progress


def write_results(out: Path, p: RunPlan, state: RunState) -> None:
    """results.jsonl: one canonical record per image in corpus order (the first repeat; errors included)."""
    lines = []
    for it in p.items:
        o = state.outcomes.get(it.id)
        record: dict[str, Any] = {"id": it.id, "error": o.error if o else "not run"}
        if o is not None and o.ok:
            record["result"] = o.runs[0].to_dict()
        lines.append(canonical_line(record))
    atomic.write_text(out / "results.jsonl", "".join(line + "\n" for line in lines))


def run_and_report(profile: Profile, base: Path, out: Path, *, shard: tuple[int, int] | None = None,
                   html: bool = False, history: Path | None = None) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    p = plan(profile, base, shard=shard, log_dir=out)
    report, state = execute(p, progress=terminal_progress())
    write_results(out, p, state)
    atomic.write_text(out / "report.json", canonical_json(report))
    return report
