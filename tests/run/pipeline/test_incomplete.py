"""Every way a run can stop leaves its reports (harness.run.pipeline.incomplete, harness.execution.cancel): a crashed
audit/probe/bn_drift child fails that check and the run goes on; a bug exits 3 with its traceback saved and the
reports marked incomplete; SIGINT/SIGTERM stop the workers and leave the reports of what finished, marked
incomplete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ROOT, CliRun, run_cli
from cli.test_run_cmd import TESTS, fault_config

import harness.checks.builtin
from harness.cli import main

pytestmark = pytest.mark.slow

# Planted in the environment, not in the harness: the real child process of a model check dies of a real
# SIGABRT (as Paddle's native crashes do) when its task is listed in FAULT_CHILD_ABORT.
CHILD_ABORT_SITECUSTOMIZE = """
import os
import sys

_argv = sys.orig_argv
if "harness.backends.paddle.child" in _argv:
    _task = _argv[_argv.index("harness.backends.paddle.child") + 1]
    if _task in os.environ.get("FAULT_CHILD_ABORT", "").split(","):
        os.abort()
"""


def junit_failures(out: Path) -> dict[tuple[str, str], str]:
    """(classname, name) -> failure message, for every failing testcase."""
    cases = ET.parse(out / "junit.xml").getroot().iter("testcase")
    return {(c.get("classname"), c.get("name")): f.get("message") for c in cases
            if (f := c.find("failure")) is not None}


def test_clean_run_is_complete(smoke_run: CliRun) -> None:
    assert smoke_run.returncode == 0
    assert smoke_run.report["complete"] is True and smoke_run.report["incomplete"] is None
    assert "run" not in smoke_run.report["checks"]
    assert not (smoke_run.out / "traceback.txt").exists()


def test_crashed_check_child_fails_that_check_and_the_run_goes_on(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(CHILD_ABORT_SITECUSTOMIZE, encoding="utf-8")
    out = tmp_path / "out"
    res = run_cli(["run", "--profile", "release", "--id", "slip_0003", "--repeats", "1", "--probe", "--bn-drift",
                   "--out", str(out)], env={"PYTHONPATH": str(site), "FAULT_CHILD_ABORT": "audit.inspect,drift.measure"},
                  out=out)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    checks = res.report["checks"]
    for name, task in (("audit", "audit.inspect"), ("bn_drift", "drift.measure")):
        assert not checks[name]["passed"] and not checks[name]["skipped"]
        assert checks[name]["summary"] == f"{name} did not run: {task}: child process killed by SIGABRT"
    # The check whose child was left alone ran after the crash and passed; so did everything per image.
    assert checks["probe"]["passed"] and not checks["probe"]["skipped"]
    assert checks["inference"]["passed"] and checks["golden"]["passed"]
    assert res.report["complete"] is True and res.report["exit_code"] == 1
    failures = junit_failures(out)
    assert set(failures) == {("audit", "(model)"), ("bn_drift", "(model)")}
    assert "SIGABRT" in failures[("audit", "(model)")]
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "audit did not run" in summary and "bn_drift did not run" in summary
    assert [r["id"] for r in res.results()] == ["slip_0003"] and res.results()[0]["result"]["lines"]


def test_internal_error_exits_3_with_incomplete_reports_and_a_saved_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def planted_bug(outcomes: object) -> None:  # a check with a bug, after both images ran
        raise RuntimeError("planted bug in a check")

    monkeypatch.setattr(harness.checks.builtin, "repeat_check", planted_bug)  # the repeat check's registered run
    out = tmp_path / "out"
    code = main(["run", "--config", str(ROOT / "harness.toml"), "--profile", "release", "--id", "slip_0006",
                 "--id", "slip_0007", "--repeats", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 3
    assert err.strip() == (f"ocr-harness: internal error (a bug): internal error: RuntimeError: planted bug in a "
                           f"check; traceback in {out / 'traceback.txt'}")
    trace = (out / "traceback.txt").read_text(encoding="utf-8")
    assert trace.startswith("Traceback") and "planted_bug" in trace and "RuntimeError: planted bug" in trace
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["complete"] is False and report["passed"] is False and report["exit_code"] == 3
    assert report["incomplete"] == {"reason": "internal error: RuntimeError: planted bug in a check",
                                    "finished_images": ["slip_0006", "slip_0007"], "traceback": "traceback.txt"}
    assert report["checks"]["inference"]["passed"] and not report["checks"]["run"]["passed"]
    results = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in results] == ["slip_0006", "slip_0007"] and all(r["result"] for r in results)
    assert ("run", "(model)") in junit_failures(out)
    assert (out / "summary.md").read_text(encoding="utf-8").startswith(
        "## ❌ INCOMPLETE (internal error: RuntimeError: planted bug in a check): 2 of 2 images finished")


def live_processes_with(env_entry: str) -> list[int]:
    """Pids of live processes whose environment holds `env_entry` (the run and everything it started)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                environ = (d / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if env_entry.encode() in environ:
                found.append(int(d.name))
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_workers_and_leaves_an_incomplete_report(tmp_path: Path, signum: int) -> None:
    config = fault_config(tmp_path, "faults:MarkingEngine", repeats=1)
    marks = tmp_path / "marks"
    marks.mkdir()
    out = tmp_path / "out"
    ids = [f"slip_{n:04d}" for n in range(6)]
    env = {**os.environ, "PYTHONPATH": str(TESTS), "FAULT_MARK_DIR": str(marks)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--config", str(config), "--profile", "t", "--out", str(out),
         *(a for i in ids for a in ("--id", i))],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as from a terminal, even if we ignore it
    try:
        # The worker starts image 2 only after the run recorded image 1: its mark means image 1 finished.
        deadline = time.monotonic() + 600
        while not (marks / ids[1]).exists():
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no image finished in 10 minutes"
            time.sleep(0.05)
        worker = int((marks / ids[1]).read_text())
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, stderr[-2000:]
    # No worker (nor anything else the run started) outlives it.
    deadline = time.monotonic() + 10
    while (left := live_processes_with(f"FAULT_MARK_DIR={marks}")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [] and not Path(f"/proc/{worker}").exists()

    assert (out / "report.json").is_file(), stderr[-2000:]
    assert stderr.strip() == f"ocr-harness: cancelled by {name}; reports of what finished, marked incomplete, in {out}"
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    finished = report["incomplete"]["finished_images"]
    assert report["complete"] is False and report["passed"] is False and report["exit_code"] == 128 + signum
    assert report["incomplete"]["reason"] == f"cancelled by {name}" and report["incomplete"]["traceback"] is None
    assert ids[0] in finished and finished == ids[:len(finished)] and len(finished) < len(ids)
    images = {i["id"]: i for i in report["images"]}
    for i in ids:
        if i in finished:
            assert images[i]["error"] is None and images[i]["lines"] > 0
        else:
            assert images[i]["error"] == f"not run (cancelled by {name})" and not images[i]["passed"]
    assert report["checks"]["run"]["summary"] == (f"incomplete, cancelled by {name}: {len(finished)} of {len(ids)} "
                                                  "images finished")
    results = {r["id"]: r for r in map(json.loads, (out / "results.jsonl").read_text(encoding="utf-8").splitlines())}
    assert all(results[i]["result"]["lines"] for i in finished)
    assert ("run", "(model)") in junit_failures(out)
    assert (out / "summary.md").read_text(encoding="utf-8").startswith(f"## ❌ INCOMPLETE (cancelled by {name})")
