"""False alarms of the `speed` check (harness.checks.speed): ten clean release runs against a baseline made in
this benchmark (without the hog), each next to a CPU-bound process competing for a core. Records the judged ratio
(median and p90 image, peak memory) of each run, and fails on any false alarm: a clean run must stay quiet on a
shared machine, which is what the yardstick is for. Never part of the unit tests: it takes 10 runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import IMAGES_ENV, ROOT, profile_named, summary

from harness.run.pipeline.plan import plan

pytestmark = pytest.mark.bench

RUNS = 10


def test_speed_false_alarms(benchmark: Any, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "golden", tmp_path / "golden")
    (tmp_path / "golden" / "default" / "_approval.json").unlink(missing_ok=True)
    profile, base = profile_named("release")
    ids = [it.id for it in plan(profile, base).items]
    limit = os.environ.get(IMAGES_ENV)
    selection = [a for i in ids[: int(limit) if limit else None] for a in ("--id", i)]
    common = ["--profile", "release", "--golden-dir", str(tmp_path / "golden"), *selection]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False)

    made = cli("speed", "baseline", *common, "--out", str(tmp_path / "baseline"))
    assert made.returncode == 0, made.stderr[-2000:]
    runs: list[dict[str, Any]] = []

    def clean_runs() -> None:
        for n in range(RUNS):
            loaded = True  # the baseline was made without one: the yardstick must take the load out
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if loaded else None
            try:
                out = tmp_path / f"run{n}"
                proc = cli("run", *common, "--out", str(out))
            finally:
                if hog is not None:
                    hog.kill()
                    hog.wait()
            check = json.loads((out / "report.json").read_text(encoding="utf-8"))["checks"]["speed"]
            runs.append({"loaded": loaded, "exit_code": proc.returncode, "passed": check["passed"],
                         "ratio_median": check["details"]["ratio"]["median"],
                         "ratio_p90": check["details"]["ratio"]["p90"],
                         "memory_ratio": check["details"]["memory"]["ratio"],
                         "wall_latency_median_s": check["details"]["latency"]["now_median_s"]})

    benchmark.pedantic(clean_runs, rounds=1, warmup_rounds=0)
    by_load = {name: [r for r in runs if r["loaded"] is loaded] for name, loaded in (("quiet", False), ("loaded", True))}
    benchmark.extra_info.update({
        "baseline": made.stdout.strip(),
        "runs": runs,
        **{f"{name}_ratio_median": summary([r["ratio_median"] for r in rs]) for name, rs in by_load.items() if rs},
        **{f"{name}_wall_latency_s": summary([r["wall_latency_median_s"] for r in rs])
           for name, rs in by_load.items() if rs},
        "memory_ratio": summary([r["memory_ratio"] for r in runs if r["memory_ratio"] is not None]),
        "false_alarms": sum(not r["passed"] for r in runs),
    })
    assert not [r for r in runs if not r["passed"]], f"false alarms: {runs}"
