"""Wall time of whole runs: `ocr-harness run --profile release` as CI runs it, and the nightly on the full corpus
with the per-phase breakdown its report measures, extrapolated by the cost model to larger corpora."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import IMAGES_ENV, ROOT, profile_named

from harness.run.pipeline.plan import plan

pytestmark = pytest.mark.bench

SCALING = (64, 1_000, 10_000, 100_000)  # corpus sizes the cost model predicts from the measured nightly


def test_release_run(benchmark: Any, tmp_path: Path) -> None:
    out = tmp_path / "release"
    cmd = [sys.executable, "-m", "harness", "run", "--profile", "release", "--out", str(out)]
    procs: list[subprocess.CompletedProcess[str]] = []

    def release() -> None:
        procs.append(subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False))

    benchmark.pedantic(release, rounds=1, warmup_rounds=0)
    proc = procs[-1]
    assert proc.returncode in (0, 1), f"release run could not run (exit {proc.returncode}): {proc.stderr[-2000:]}"
    timing = json.loads((out / "report.json").read_text(encoding="utf-8"))["timing"]
    benchmark.extra_info.update({"command": "ocr-harness run --profile release", "exit_code": proc.returncode,
                                 "report_timing": timing})


def test_nightly(benchmark: Any, tmp_path: Path) -> None:
    """The nightly as `tox -e nightly` runs it (HTML report and history line included) on the full corpus, or on
    its first OCR_HARNESS_BENCH_IMAGES images; its phases as the report measures them, and what the cost model
    (`ocr-harness plan`) fitted on this run predicts for larger corpora."""
    from harness.run.shards.costmodel import fit, predict
    from harness.run.pipeline.job import run_and_report

    full, base = profile_named("nightly")
    ids = [it.id for it in plan(full, base).items]
    limit = os.environ.get(IMAGES_ENV)
    profile = full.replace(ids=tuple(ids[: int(limit)])) if limit else full
    runs: list[dict[str, Any]] = []

    def nightly() -> None:
        runs.append(run_and_report(profile, base, tmp_path / "nightly",
                                   formats={"html": True, "history": tmp_path / "history.jsonl"}))

    benchmark.pedantic(nightly, rounds=1, warmup_rounds=0)
    report = runs[-1]
    timing = report["timing"]
    costs, missing = fit(report, full)
    assert not missing, f"phases the nightly should have but did not measure: {missing}"
    benchmark.extra_info.update({
        "command": "ocr-harness run --profile nightly --html --history ...  (in-process)",
        "images": timing["images"], "wall_s": round(timing["wall_s"], 1),
        "phases": {k: {"wall_s": round(v["wall_s"], 1), "images": v["images"], "calls_per_image": v["calls_per_image"]}
                   for k, v in timing["phases"].items()},
        "predicted_wall_s": {n: round(predict(costs, full, n).wall_s, 1) for n in SCALING},
        "passed": report["passed"],
        "failed_checks": sorted(k for k, c in report["checks"].items() if not c["passed"]),
    })
