"""The checkout stays the newcomer's: `checkout_guard` (loaded by conftest.py) fails a session whose tests wrote
inside the repository. Planted: an inner suite (its own copy of the guard, so its checkout is a tmp dir) whose test
writes `out/report.json` and changes a committed file; clean: the same suite writing only to tmp_path passes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from checkout_guard import changes, snapshot

TESTS = Path(__file__).resolve().parents[1]


def test_snapshot_names_added_removed_and_changed_files_and_ignores_venvs_and_caches(tmp_path: Path) -> None:
    (tmp_path / "kept.txt").write_text("a")
    (tmp_path / "gone.txt").write_text("a")
    (tmp_path / "edited.txt").write_text("a")
    before = snapshot(tmp_path)
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "edited.txt").write_text("ab")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.json").write_text("{}")
    for ignored in (".venv312", "__pycache__", ".git", "pkg.egg-info"):
        (tmp_path / ignored).mkdir()
        (tmp_path / ignored / "x").write_text("x")
    assert changes(before, snapshot(tmp_path)) == ["changed edited.txt", "removed gone.txt", "added out/report.json"]


def inner(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "tests").mkdir()
    shutil.copy(TESTS / "checkout_guard.py", tmp_path / "tests" / "checkout_guard.py")
    (tmp_path / "committed.txt").write_text("as committed\n")
    (tmp_path / "tests" / "conftest.py").write_text('pytest_plugins = ["checkout_guard"]\n')
    (tmp_path / "tests" / "test_inner.py").write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                           str(tmp_path / "tests")], cwd=tmp_path / "tests", capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(tmp_path / "tests"), "PATH": "/usr/bin:/bin"})


def test_a_test_that_writes_into_the_checkout_fails_the_session_naming_the_files(tmp_path: Path) -> None:
    run = inner(tmp_path, '''
        from pathlib import Path
        ROOT = Path(__file__).resolve().parents[1]

        def test_writes_out():
            (ROOT / "out").mkdir()
            (ROOT / "out" / "report.json").write_text("{}")
            (ROOT / "committed.txt").write_text("overwritten, longer than before\\n")
    ''')
    assert run.returncode == 1, run.stdout + run.stderr
    assert "checkout_guard: the suite wrote inside the checkout (2 files):" in run.stdout
    assert "changed committed.txt" in run.stdout and "added out/report.json" in run.stdout


def test_a_suite_that_writes_only_to_tmp_path_passes(tmp_path: Path) -> None:
    run = inner(tmp_path, '''
        def test_writes_tmp(tmp_path):
            (tmp_path / "report.json").write_text("{}")
    ''')
    assert run.returncode == 0, run.stdout + run.stderr
    assert "checkout_guard" not in run.stdout


def test_hypothesis_keeps_its_files_outside_the_checkout() -> None:
    """CI once failed here: the fuzz tests left .hypothesis/constants/* in the checkout (Hypothesis writes its
    constants cache even with no example database). conftest.py points Hypothesis's storage at the temp dir."""
    from hypothesis.configuration import storage_directory

    where = storage_directory("constants", intent_to_write=False).path.resolve()
    assert not where.is_relative_to(TESTS.parent), where
