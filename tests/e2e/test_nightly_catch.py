"""The nightly keeps its catch power: every fault the nightly profile is there to catch, planted in one run of the
nightly profile exactly as harness.toml configures it (two single-threaded workers, every extra path fanned out,
the stack checks on the stratified sample), fires and names its image; the same run without the faults passes.

Planted here, on three slips of the full corpus (tests/faults.py, NightlyFaultsEngine):
| fault                                                   | check that must fail | images         |
| score nudged on every 2nd call of one image              | repeat               | A              |
| the engine writes its input array                        | mutation             | B              |
| the service path (rec batch 1) aborts on one image       | batch_paths          | C (+ A, B: below) |
| several images per call read line 0 differently          | batch_paths          | A, B, C (one call of 3) |
| scores move with oneDNN off and with 2 threads           | variations           | A, B, C        |
| state that outlives the process                          | cross_process        | the first main worker's |
| a golden edited by one character                         | golden               | C (the main path, not bs1) |
Model-level checks read the model files, not the images, so neither the worker layout nor the sample changes
them; their planted faults stay where they are: tests/backends/paddle/test_audit.py (variance 0/NaN,
is_test=False, unknown norm op), tests/checks/test_probe.py, tests/checks/bn/test_channels.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from builders import profile_toml, write_profiles
from conftest import ROOT, CliRun, run_cli

from harness.checks.variations import isa_paths
from harness.checks.registry import catalogue
from harness.config import load_profile
from harness.environment import cpu_info, isa_hold

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parents[1]
A, B, C = "slip_0008", "slip_0009", "slip_0010"
FAULTS = {"FAULT_REPEAT_ID": A, "FAULT_MUTATE_ID": B, "FAULT_BS1_ABORT_ID": C, "FAULT_STACK": "1"}


def nightly_with_faults(tmp_path: Path, goldens: Path) -> Path:
    """harness.toml as committed, plus a profile that is the nightly with the fault engine and these goldens."""
    return write_profiles(tmp_path, profile_toml(extends="nightly", golden_dir=goldens,
                                                 engine={"factory": "faults:NightlyFaultsEngine"}), bundled=True)


def run_nightly(tmp_path: Path, name: str, goldens: Path, env: dict[str, str]) -> CliRun:
    out = tmp_path / name
    args = ["run", "--config", str(nightly_with_faults(tmp_path, goldens)), "--profile", "t", "--out", str(out),
            *(a for i in (A, B, C) for a in ("--id", i))]
    return run_cli(args, env={"PYTHONPATH": str(TESTS), **env}, out=out)


def test_every_planted_fault_fires_in_the_nightly_and_the_clean_nightly_passes(tmp_path: Path) -> None:
    clean = run_nightly(tmp_path, "clean", ROOT / "golden", {})
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr[-2000:]
    checks = clean.report["checks"]
    for name in ("inference", "repeat", "mutation", "cross_process", "batch_paths", "variations", "golden", "audit",
                 "probe", "bn_drift"):
        assert checks[name]["passed"] and not checks[name]["skipped"] and checks[name]["judged"], (name, checks[name])
    # Models load once per worker per configuration: several-per-call takes the main pass's two loaded workers;
    # the fresh-process pass never does.
    started = {k: v["workers_started"] for k, v in clean.report["timing"]["phases"].items() if "workers_started" in v}
    nightly, _ = load_profile(ROOT / "harness.toml", "nightly", catalogue())
    isa_here = isa_paths(nightly.engine, cpu_info()["isa"], isa_hold())[0]
    assert started == {"main": 2, "multi": 0, "fresh": 2, "bs1": 2, "onednn-off": 2, "threads-2": 1,
                       "bn-unfused": 2, **{label: 2 for label in isa_here}}, started  # a fresh worker per ISA hold

    goldens = tmp_path / "golden"
    shutil.copytree(ROOT / "golden", goldens)
    path = goldens / "default" / f"{C}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["lines"][1]["text"] = data["lines"][1]["text"][:-1] + "#"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    planted = run_nightly(tmp_path, "planted", goldens, {**FAULTS, "FAULT_STATE": str(tmp_path / "state")})
    assert planted.returncode == 1, planted.stdout[-3000:] + planted.stderr[-2000:]
    checks = planted.report["checks"]
    failed = {name: c["failed_images"] for name, c in checks.items() if not c["passed"]}
    assert failed.pop("repeat") == [A]
    assert failed.pop("mutation") == [B]
    assert failed.pop("batch_paths") == [A, B, C]
    paths = checks["batch_paths"]["details"]["paths"]
    assert (paths["bs1"]["failed_to_run"], paths["3-per-call"]["beyond"]) == (1, 3)
    assert failed.pop("variations") == [A, B, C]
    paths = checks["variations"]["details"]["paths"]
    assert (paths["onednn-off"]["beyond"], paths["threads-2"]["beyond"]) == (3, 3)
    assert failed.pop("golden") == [C]
    # Main's two workers share the images; the one that started second carries the state, so the images the
    # first one read differ from a fresh process.
    crossed = failed.pop("cross_process")
    assert crossed and set(crossed) <= {A, B, C}
    assert checks["cross_process"]["judged"] == 3
    assert failed == {}, failed  # inference and the model-level checks stay clean
