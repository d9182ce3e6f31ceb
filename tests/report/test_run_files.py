"""Every exit of `ocr-harness run` leaves this run's reports and none of an earlier run's (harness.cli.run_cmd,
harness.run.pipeline.incomplete.write_not_started): a CI step that reads junit.xml after a run that stopped
before it began sees why it stopped, never the last run's PASS."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from harness.backends.http.serving import free_port
from harness.report.writer import RUN_FILES

STALE_PASS = {"schema": "ocr-harness/report/1", "passed": True, "exit_code": 0, "complete": True}


def plant_stale_pass(out: Path) -> Path:
    """An earlier run's passing files in --out, and an unrelated file the run must leave alone."""
    out.mkdir(parents=True)
    for name in RUN_FILES:
        (out / name).write_text(json.dumps(STALE_PASS) if name == "report.json" else "stale PASS\n")
    (out / "notes.txt").write_text("mine\n")
    return out


def failing_run_case(out: Path) -> str:
    cases = [c for c in ET.parse(out / "junit.xml").getroot().iter("testcase") if c.get("classname") == "run"]
    assert len(cases) == 1
    failure = cases[0].find("failure")
    assert failure is not None, "the run testcase must fail"
    return failure.get("message") or ""


@pytest.mark.parametrize(("args", "message"), [
    (["--profile", "no-such-profile"], "no profile 'no-such-profile'"),
    (["--profile", "release", "--corpus", "does-not-exist"], "does-not-exist"),
    (["--profile", "release", "--shard", "5/2"], "--shard '5/2'"),
    (["--profile", "release", "--repeats", "0"], "repeats"),
])
def test_an_exit_2_before_the_run_replaces_an_earlier_pass(tmp_path: Path, args: list[str], message: str) -> None:
    out = plant_stale_pass(tmp_path / "out")
    run = run_cli(["run", *args, "--out", str(out)], out=out, timeout=120)
    assert run.returncode == 2, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and message in run.stderr
    report = run.report
    assert (report["passed"], report["complete"], report["exit_code"]) == (False, False, 2)
    assert message in report["incomplete"]["reason"]
    assert message in failing_run_case(out)
    assert "INCOMPLETE" in (out / "summary.md").read_text(encoding="utf-8")
    for name in ("report.html", "results.jsonl", "traceback.txt"):
        assert not (out / name).exists(), f"{name} of the earlier run survived"
    assert (out / "notes.txt").read_text() == "mine\n"  # only the run's own files are removed
    assert str(tmp_path) not in (out / "report.json").read_text(encoding="utf-8")  # still no machine path


def test_an_unreachable_service_replaces_an_earlier_pass(tmp_path: Path) -> None:
    out = plant_stale_pass(tmp_path / "out")
    url = f"http://127.0.0.1:{free_port()}/ocr"
    run = run_cli(["run", "--profile", "service", "--service-url", url, "--out", str(out)], out=out, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "connection refused" in run.stderr
    assert run.report["exit_code"] == 2 and "connection refused" in failing_run_case(out)


def test_out_that_is_a_file_is_a_usage_error_and_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("not a dir\n")
    run = run_cli(["run", "--profile", "no-such-profile", "--out", str(out)], out=out, timeout=120)
    assert run.returncode == 2 and "not a directory" in run.stderr
    assert out.read_text() == "not a dir\n"


@pytest.mark.slow
def test_a_clean_run_after_a_failed_one_leaves_only_its_own_files(tmp_path: Path) -> None:
    """The clean counterpart, through the same --out: a failed start, then a real run of one slip."""
    out = plant_stale_pass(tmp_path / "out")
    # An earlier run's worker logs: workers append to their log, so a run that kept them would pile up.
    (out / "worker-main.log").write_text("STALE earlier run\n")
    (out / "worker-bs1.log").write_text("STALE earlier run\n")
    assert run_cli(["run", "--profile", "nope", "--out", str(out)], out=out, timeout=120).returncode == 2
    run = run_cli(["run", "--profile", "release", "--id", "slip_0000", "--repeats", "2", "--out", str(out)],
                  out=out, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert run.report["complete"] is True and run.report["passed"] is True
    assert not (out / "report.html").exists() and not (out / "traceback.txt").exists()
    assert [r["id"] for r in run.results()] == ["slip_0000"]
    assert failing_run_case_absent(out)
    logs = sorted(out.glob("worker-*.log"))
    assert logs and not (out / "worker-bs1.log").exists(), logs  # this run has no bs1 path
    assert all("STALE" not in log.read_text(errors="replace") for log in logs)
    assert (out / "notes.txt").read_text() == "mine\n"


def failing_run_case_absent(out: Path) -> bool:
    return not [c for c in ET.parse(out / "junit.xml").getroot().iter("testcase") if c.find("failure") is not None]
