"""The exit codes (harness.util.errors.EXIT_CODES): listed by --help and the README; a bug outside a run exits 3
with one line saying where its traceback is."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from conftest import ROOT

from harness.cli import main
import harness.cli.doctor_cmd
import harness.cli.run_cmd
from harness.util.errors import EXIT_CODES


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"]])
def test_help_lists_every_exit_code(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out
    for code, meaning in EXIT_CODES:
        assert f"  {code:<4} {meaning}" in out
    assert [c for c, _ in EXIT_CODES] == [0, 1, 2, 3, 130, 143]


def test_readme_lists_every_exit_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code, _ in EXIT_CODES:
        assert f"| `{code}` |" in readme


def planted_bug(*args: object, **kwargs: object) -> None:
    raise ZeroDivisionError("planted bug")


def test_a_bug_exits_3_and_names_the_saved_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # A command with --out keeps the traceback there; one without puts it in a temp file.
    monkeypatch.setattr(harness.cli.run_cmd, "resolve_profile", planted_bug)
    assert main(["run", "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    path = tmp_path / "out" / "traceback.txt"
    assert err == f"ocr-harness: internal error (a bug): ZeroDivisionError: planted bug; traceback in {path}\n"
    assert "planted_bug" in path.read_text(encoding="utf-8")

    monkeypatch.setattr(harness.cli.doctor_cmd, "environment", planted_bug)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert main(["doctor"]) == 3
    err = capsys.readouterr().err
    (saved,) = (tmp_path / "tmp").iterdir()
    assert err == f"ocr-harness: internal error (a bug): ZeroDivisionError: planted bug; traceback in {saved}\n"
    assert "Traceback" in saved.read_text(encoding="utf-8")
