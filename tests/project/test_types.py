"""The strict type check: `mypy --strict` over the whole package (pyproject's [tool.mypy] `files`), with
third-party packages read as Any. A planted type error under
the same configuration fails, so the check is not one that cannot fail."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import ROOT


def _mypy(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The cache goes to the test's tmp dir: the checkout stays the user's.
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"),
                           "--config-file", str(ROOT / "pyproject.toml"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, check=False)


def test_the_listed_packages_pass_mypy_strict(tmp_path: Path) -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["strict"] is True and all((ROOT / f).exists() for f in config["files"])
    res = _mypy(tmp_path)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    checked = int(res.stdout.rsplit("in ", 1)[1].split()[0])  # "Success: no issues found in N source files"
    assert checked >= 170, res.stdout  # every module of harness/


def test_a_planted_type_error_fails_the_check(tmp_path: Path) -> None:
    bad = tmp_path / "planted.py"
    bad.write_text("def half(n: int) -> int:\n    return n / 2\n\n\ndef untyped(x):\n    return x\n",
                   encoding="utf-8")
    res = _mypy(tmp_path, str(bad))
    assert res.returncode == 1, res.stdout
    assert "planted.py:2: error: Incompatible return value type" in res.stdout
    assert "planted.py:5: error: Function is missing a type annotation" in res.stdout  # strict: no untyped defs
