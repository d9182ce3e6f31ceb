"""`ocr-harness golden status|refresh` through the CLI, on a temp copy of the committed goldens."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

from harness.config import load_profile
from harness.golden.compare import compare_image
from harness.golden.store import loads_golden

pytestmark = pytest.mark.slow


def copy_goldens(tmp_path: Path) -> Path:
    goldens = tmp_path / "golden"
    shutil.copytree(ROOT / "golden", goldens)
    return goldens


def test_status_on_committed_goldens_is_clean() -> None:
    res = run_cli(["golden", "status", "--profile", "release"])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "12 of 12 images have one" in res.stdout
    assert "orphans not judged" in res.stdout  # smoke is a partial selection of the corpus


def test_status_names_missing_and_orphaned(tmp_path: Path) -> None:
    goldens = copy_goldens(tmp_path)
    (goldens / "default" / "slip_0003.json").unlink()
    (goldens / "default" / "ghost.json").write_text((goldens / "default" / "slip_0004.json").read_text(encoding="utf-8")
                                                   .replace('"slip_0004"', '"ghost"'), encoding="utf-8")
    res = run_cli(["golden", "status", "--profile", "default", "--subset", "full", "--golden-dir", str(goldens)])
    assert res.returncode == 1
    assert "missing   slip_0003" in res.stdout and "orphaned  ghost" in res.stdout
    partial = run_cli(["golden", "status", "--profile", "default", "--golden-dir", str(goldens)])
    assert "ghost" not in partial.stdout  # never judged on a partial selection


def test_refresh_is_a_dry_run_until_yes(tmp_path: Path) -> None:
    goldens = copy_goldens(tmp_path)
    path = goldens / "default" / "slip_0006.json"
    original = path.read_text(encoding="utf-8")
    data = json.loads(original)
    old_text = data["lines"][0]["text"]
    path.write_text(original.replace(json.dumps(old_text, ensure_ascii=False), json.dumps("XX", ensure_ascii=False), 1),
                    encoding="utf-8")
    edited = path.read_text(encoding="utf-8")
    base = ["golden", "refresh", "--profile", "default", "--id", "slip_0006", "--id", "slip_0007", "--failed",
            "--golden-dir", str(goldens), "--out", str(tmp_path / "out")]
    dry = run_cli(base)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert f"text 'XX' -> {old_text!r}" in dry.stdout, dry.stdout[-2000:]
    assert "dry run: nothing written" in dry.stdout
    assert path.read_text(encoding="utf-8") == edited
    review = (tmp_path / "out" / "golden-review.md").read_text(encoding="utf-8")
    assert "slip_0006" in review and old_text in review
    applied = run_cli([*base, "--yes"])
    assert applied.returncode == 0, applied.stderr[-2000:]
    assert "wrote 1 goldens" in applied.stdout  # slip_0007 passed its golden: kept
    # The refreshed golden is this machine's reading; the committed one was written on another CPU (scores move in
    # the 7th digit between AVX2 and AVX-512). So: the edited text is back exactly, the rest within the profile's
    # tolerances; never the committed bytes.
    committed = loads_golden(original, "committed slip_0006.json")
    refreshed = loads_golden(path.read_text(encoding="utf-8"), str(path))
    assert refreshed.result.lines[0].text == old_text and refreshed.image_sha256 == committed.image_sha256
    profile, _ = load_profile(ROOT / "harness.toml", "default")
    comparison = compare_image(committed.result, refreshed.result, profile.tolerances)
    assert comparison.passed, comparison.summary()
    assert comparison.counts["identical"] + comparison.counts["within"] == len(committed.result.lines)
    kept = goldens / "default" / "slip_0007.json"
    assert kept.read_bytes() == (ROOT / "golden" / "default" / "slip_0007.json").read_bytes()  # never rewritten


def test_force_needs_a_reason() -> None:
    res = run_cli(["golden", "refresh", "--force"])
    assert res.returncode == 2 and "--force needs --reason" in res.stderr
