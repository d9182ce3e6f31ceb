"""pytest plugin: a skipped test is a failed test.

A skip is a check that judged nothing, and a suite that skips on a machine without a font, a browser or a
matching toolchain reports green while proving less. So every skip (`pytest.skip`, `skipif`, `importorskip`,
a skip at collection) is reported as a failure naming its reason, locally and in CI alike: what a test needs is
installed by `.ci/run` and named in the failure. `tests/conftest.py` loads this plugin; any project can load it
with `-p no_skips` (this directory on the path). xfail is not a skip and is left alone.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

PREFIX = "skipped, and this suite does not skip (a test that cannot run is a failure)"


def _reason(longrepr: Any) -> str:
    # A skip's longrepr is (path, lineno, "Skipped: reason").
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, lineno, message = longrepr
        return f"{path}:{int(lineno) + 1}: {message}"
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"{PREFIX}: {_reason(report.longrepr)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if report.skipped:
        report.outcome = "failed"
        report.longrepr = f"{PREFIX}: {_reason(report.longrepr)}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Last line of defence: a skip that reached the report some other way still fails the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter is not None:
            reporter.write_line(f"no_skips: {skipped} skipped, and this suite does not skip", red=True)
