"""The wheel as a new user meets it: built with `python -m build`, holding the package, its templates and the
manifest schema (no tests, no corpus), installed into a fresh Python 3.12 venv; then, in an empty directory,
`init`, `corpus import` of a PPOCRLabel Label.txt (three slips), `golden refresh --all --yes` and the release
profile, which must pass.

Slow (a venv with Paddle); pip's cache is reused, only three images are read. The 3.12 interpreter is found
as $OCR_HARNESS_TEST_PY312 or `python3.12` on PATH; none is a failure, never a skip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT
from labels import write_ppocrlabel
from toolchain import find_python312

pytestmark = pytest.mark.slow
IDS = ["slip_0000", "slip_0001", "slip_0002"]
SOURCE_IGNORE = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "out", "__pycache__",
                                       ".pytest_cache", ".tox")


def python312() -> str:
    found = find_python312()
    if found is None:
        pytest.fail("no Python 3.12 interpreter (python3.12 on PATH, pyenv's 3.12, or $OCR_HARNESS_TEST_PY312)",
                    pytrace=False)
    return found


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(argv)} -> {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_wheel_in_a_fresh_312_venv_from_an_empty_directory(tmp_path: Path) -> None:
    py312 = python312()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VIRTUAL_ENV", "PYTHONPATH"))}
    timings = {}

    # Built from a copy of the checkout (tests and corpus included), so leaving them out is the build's doing.
    t0 = time.monotonic()
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=SOURCE_IGNORE)
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(src)], tmp_path, env)
    (wheel,) = (tmp_path / "dist").glob("ocr_harness-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    timings["build"] = time.monotonic() - t0
    assert "harness/schemas/manifest.schema.json" in names
    for rel in (".github/workflows/ocr-release.yml", ".github/workflows/ocr-nightly.yml",
                ".github/workflows/ocr-golden-refresh.yml", "harness.toml", "tox.ini", "datasets/README.md",
                "datasets/slips/manifest.jsonl", "golden/README.md", "tests/test_ocr_golden.py.tmpl"):
        assert f"harness/templates/init/{rel}" in names
    assert not [n for n in names if n.startswith(("tests/", "datasets/", "golden/", "benchmarks/"))]
    assert not [n for n in names if n.endswith((".png", ".jpg"))]
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[pytest11]" in entry_points and "harness.pytest_plugin" in entry_points

    t0 = time.monotonic()
    venv = tmp_path / "venv"
    _run([py312, "-m", "venv", str(venv)], tmp_path, env)
    # pip's cache supplies the wheels; --no-compile skips byte-compiling Paddle's thousands of modules at install
    # (they compile on import, only the ones used).
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", str(wheel)], tmp_path, env)
    timings["install"] = time.monotonic() - t0
    env = {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": str(venv)}
    cli = str(venv / "bin" / "ocr-harness")

    t0 = time.monotonic()
    work = tmp_path / "empty"
    work.mkdir()
    _run([cli, "init"], work, env)
    write_ppocrlabel(work, IDS)  # Label.txt with the images beside it, paths relative to its folder
    _run([cli, "corpus", "import", "--from", "ppocrlabel", "Label.txt", "--out", "datasets/imported",
          "--field", r"amount=[¥￥]\s*([\d,]+\.\d{2})"], work, env)
    assert (work / "datasets" / "imported" / "manifest.jsonl").is_file()
    _run([cli, "corpus", "validate", "datasets/imported"], work, env)
    _run([cli, "golden", "refresh", "--corpus", "datasets/imported", "--all", "--yes"], work, env)
    run = _run([cli, "run", "--profile", "release", "--corpus", "datasets/imported"], work, env)
    timings["harness"] = time.monotonic() - t0
    assert "PASS: 3 images, profile release" in run.stdout
    goldens = json.loads((work / "golden" / "default" / "slip_0001.json").read_text(encoding="utf-8"))
    assert any("82775.49" in line["text"] for line in goldens["lines"])
    print("wheel test timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
