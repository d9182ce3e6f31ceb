"""The benchmarks must not rot between bench runs: their helpers work, and every benchmark body runs on one image
with pytest-benchmark's timing disabled. No time is asserted here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from harness.perf import peak_rss_bytes


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc")
def test_peak_rss_of_this_process_and_of_no_process() -> None:
    assert peak_rss_bytes() > 1 << 20
    assert peak_rss_bytes(2**31 - 1) is None  # above any Linux pid


@pytest.mark.slow
def test_every_benchmark_runs_on_one_image() -> None:
    """Release and nightly runs are left out: they are whole runs, covered by the end-to-end tests."""
    env = {**os.environ, "OCR_HARNESS_BENCH_IMAGES": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-disable", "-p", "no:cacheprovider", "-q",
         "-k", "not test_release_run and not test_nightly_sample"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, f"benchmarks failed on one image:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
