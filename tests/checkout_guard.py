"""A newcomer's checkout stays theirs: no test writes inside the repository (every test's `--out`, config and
scratch files live in its tmp dir). The files of the checkout are listed with their size and mtime when the
session starts and again when it ends; any file added, removed or changed fails the session, naming it.

Under xdist only the controller (which starts before and ends after every worker) compares. Left out: what the
set-up makes and tools keep for themselves (the git dir, virtualenvs, caches, the editable install's metadata).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IGNORED_DIRS = {".git", ".tox", "__pycache__", ".pytest_cache", ".benchmarks", ".import_linter_cache", ".mypy_cache"}
_START = pytest.StashKey[dict[str, tuple[int, int]]]()


def snapshot(root: Path = ROOT) -> dict[str, tuple[int, int]]:
    """Every file under `root` outside IGNORED_DIRS, virtualenvs (.venv*) and *.egg-info: (size, mtime_ns)."""
    out: dict[str, tuple[int, int]] = {}
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in IGNORED_DIRS and not d.startswith(".venv")
                   and not d.endswith(".egg-info")]
        for name in files:
            path = Path(here, name)
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            out[path.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def changes(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """'added out/report.json', 'removed ...', 'changed ...', sorted by path."""
    found = [f"added {p}" for p in after.keys() - before.keys()]
    found += [f"removed {p}" for p in before.keys() - after.keys()]
    found += [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(found, key=lambda line: line.split(" ", 1)[1])


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if _is_controller(session.config):
        session.config.stash[_START] = snapshot()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _is_controller(session.config) or _START not in session.config.stash:
        return
    found = changes(session.config.stash[_START], snapshot())
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"checkout_guard: the suite wrote inside the checkout ({len(found)} files):", *found[:20]]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        else:
            print("\n".join(lines))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
