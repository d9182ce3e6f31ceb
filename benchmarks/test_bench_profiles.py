"""Wall time of whole runs: `ocr-harness run --profile release` as CI runs it, and the nightly profile on a subset
of the full corpus with a per-phase breakdown, extrapolated to the full corpus (nightly's budget is 30 min)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, PhaseClock, profile_named

from harness.runner import plan

pytestmark = pytest.mark.bench

NIGHTLY_BUDGET_S = 30 * 60
NIGHTLY_SAMPLE_STRIDE = 8  # every 8th image of the full corpus: 8 of 64


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


def test_nightly_sample(benchmark: Any, tmp_path: Path, phase_clock: PhaseClock) -> None:
    from harness.pipeline import run_and_report

    full, base = profile_named("nightly")
    all_ids = [it.id for it in plan(full, base).items]
    sample = tuple(all_ids[::NIGHTLY_SAMPLE_STRIDE])
    profile = full.replace(ids=sample)
    runs: list[tuple[float, dict[str, Any]]] = []

    def nightly() -> None:
        t0 = time.perf_counter()
        # As `tox -e nightly` runs it: HTML report and history line included.
        report = run_and_report(profile, base, tmp_path / "nightly", html=True, history=tmp_path / "history.jsonl")
        runs.append((time.perf_counter() - t0, report))

    benchmark.pedantic(nightly, rounds=1, warmup_rounds=0)
    measured, report = runs[-1]
    factor = len(all_ids) / len(sample)
    phases = [{"phase": ph.name, "wall_s": round(ph.wall_s, 2), "predict_s": round(ph.predict_s, 2),
               "images": ph.images, "full_corpus_s": round(ph.scaled(factor if ph.predict_s else 1.0), 1)}
              for ph in phase_clock.phases]
    other = measured - sum(ph.wall_s for ph in phase_clock.phases)  # goldens, comparisons, accuracy, reports
    estimate = sum(ph["full_corpus_s"] for ph in phases) + other * factor
    benchmark.extra_info.update({
        "command": "ocr-harness run --profile nightly  (here: in-process, "
                   f"every {NIGHTLY_SAMPLE_STRIDE}th image of {len(all_ids)})",
        "sample_images": len(sample), "full_images": len(all_ids),
        "phases": phases, "other_s": round(other, 2),
        "full_corpus_estimate_s": round(estimate, 1),
        "budget_s": NIGHTLY_BUDGET_S, "budget_fraction": round(estimate / NIGHTLY_BUDGET_S, 3),
        "passed": report["passed"],
        "failed_checks": sorted(k for k, c in report["checks"].items() if not c["passed"]),
    })
