"""The suite never skips: `no_skips` (loaded by conftest.py) turns every kind of skip into a failure.

Planted: a tiny test file that skips in each way pytest offers, run in a fresh pytest with the plugin; clean: the
same file without the skips passes. Run with and without CI=true: the rule is the same on every machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

SKIPPING = '''
import pytest

def test_passes():
    assert True

def test_skips_in_the_body():
    pytest.skip("no CJK font")

@pytest.mark.skipif(True, reason="chromium not installed")
def test_skipif():
    pass

def test_importorskip():
    pytest.importorskip("no_such_module_anywhere")

@pytest.mark.xfail(reason="known", strict=True)
def test_xfail_is_not_a_skip():
    assert False
'''

MODULE_SKIP = '''
import pytest
pytest.skip("whole module", allow_module_level=True)

def test_never_collected():
    pass
'''

# Marks a passing test's report as skipped after the plugin saw it: only the session-finish guard can catch it.
LATE_SKIP_CONFTEST = '''
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report):
    if report.when == "call" and report.nodeid.endswith("test_passes"):
        report.outcome = "skipped"
        report.longrepr = ("x", 0, "Skipped: late")
'''


def inner(tmp_path: Path, files: dict[str, str], ci: str | None) -> subprocess.CompletedProcess[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no_skips", "-p", "no:cacheprovider", "-rA",
                           "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("ci", [None, "true"])
def test_every_kind_of_skip_fails_the_run(tmp_path: Path, ci: str | None) -> None:
    proc = inner(tmp_path, {"test_skipping.py": SKIPPING}, ci)
    out = proc.stdout
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, out[-3000:]
    summary = last_line(proc)
    assert "skipped" not in summary, summary
    assert "2 failed, 1 passed, 1 xfailed, 1 error" in summary, summary  # skipif is decided in setup: an error
    for reason in ("no CJK font", "chromium not installed", "no_such_module_anywhere"):
        assert f"this suite does not skip (a test that cannot run is a failure): {tmp_path}" in out
        assert reason in out, reason


def test_a_skip_at_collection_is_a_collection_error(tmp_path: Path) -> None:
    proc = inner(tmp_path, {"test_module_skip.py": MODULE_SKIP}, "true")
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, proc.stdout[-3000:]
    assert "ERROR collecting test_module_skip.py" in proc.stdout and "Skipped: whole module" in proc.stdout
    assert "skipped" not in last_line(proc)


def test_a_skip_that_slips_past_the_report_hook_still_fails_the_run(tmp_path: Path) -> None:
    clean = {"test_skipping.py": "def test_passes():\n    assert True\n", "conftest.py": LATE_SKIP_CONFTEST}
    proc = inner(tmp_path, clean, "true")
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-3000:]
    assert "no_skips: 1 skipped, and this suite does not skip" in proc.stdout


def test_a_suite_without_skips_passes(tmp_path: Path) -> None:
    clean = SKIPPING.split("def test_skips_in_the_body")[0]
    proc = inner(tmp_path, {"test_clean.py": clean}, "true")
    assert proc.returncode == pytest.ExitCode.OK, proc.stdout[-3000:]
    assert last_line(proc).startswith("=") and "1 passed" in last_line(proc)


def test_this_suite_loads_the_plugin(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("no_skips")
