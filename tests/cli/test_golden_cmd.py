"""`ocr-harness golden status|refresh` through the CLI, on a temp copy of the committed goldens."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import pytest

from conftest import CORPUS, ROOT, run_cli

from harness.config import load_profile

from harness.checks.registry import catalogue
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
    leftover = goldens / "default" / ".slip_0002.json.k1ll3d.tmp"  # what a refresh killed mid-write leaves
    leftover.write_text(edited[: len(edited) // 2], encoding="utf-8")
    status = run_cli(["golden", "status", "--profile", "default", "--golden-dir", str(goldens)])
    assert status.returncode == 1 and "leftover  .slip_0002.json.k1ll3d.tmp" in status.stdout, status.stdout
    assert "1 temp files of an interrupted refresh" in status.stdout
    base = ["golden", "refresh", "--profile", "default", "--id", "slip_0006", "--id", "slip_0007", "--failed",
            "--golden-dir", str(goldens), "--out", str(tmp_path / "out")]
    dry = run_cli(base)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert f"text 'XX' -> {old_text!r}" in dry.stdout, dry.stdout[-2000:]
    assert "dry run: nothing written" in dry.stdout
    assert path.read_text(encoding="utf-8") == edited and leftover.exists()  # a dry run touches nothing
    review = (tmp_path / "out" / "golden-review.md").read_text(encoding="utf-8")
    assert "slip_0006" in review and old_text in review
    applied = run_cli([*base, "--yes"])
    assert applied.returncode == 0, applied.stderr[-2000:]
    assert "wrote 1 goldens" in applied.stdout  # slip_0007 passed its golden: kept
    assert not leftover.exists() and not list(goldens.rglob("*.tmp"))
    # The refreshed golden is this machine's reading; the committed one was written on another CPU (scores move in
    # the 7th digit between AVX2 and AVX-512). So: the edited text is back exactly, the rest within the profile's
    # tolerances; never the committed bytes.
    committed = loads_golden(original, "committed slip_0006.json")
    refreshed = loads_golden(path.read_text(encoding="utf-8"), str(path))
    assert refreshed.result.lines[0].text == old_text and refreshed.image_sha256 == committed.image_sha256
    profile, _ = load_profile(ROOT / "harness.toml", "default", catalogue())
    comparison = compare_image(committed.result, refreshed.result, profile.tolerances)
    assert comparison.passed, comparison.summary()
    assert comparison.counts["identical"] + comparison.counts["within"] == len(committed.result.lines)
    meta = json.loads((goldens / "default" / "_meta.json").read_text(encoding="utf-8"))
    assert meta["stacks"][refreshed.stack_id]["cpu_threads"] == profile.engine.resolved_threads()  # the stack that made it
    kept = goldens / "default" / "slip_0007.json"
    assert kept.read_bytes() == (ROOT / "golden" / "default" / "slip_0007.json").read_bytes()  # never rewritten


def test_force_needs_a_reason() -> None:
    res = run_cli(["golden", "refresh", "--force"])
    assert res.returncode == 2 and "--force needs --reason" in res.stderr


def test_image_changed_since_its_golden_is_named_by_run_and_status(tmp_path: Path) -> None:
    """slip_0005 re-encoded (same pixels, other bytes) with its manifest entry updated: its golden no longer
    vouches for it. slip_0004 untouched stays quiet."""
    corpus = tmp_path / "corpus"
    (corpus / "images").mkdir(parents=True)
    records = {}
    for line in (CORPUS / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["id"] in ("slip_0004", "slip_0005"):
            records[record["id"]] = record
    for image_id, record in records.items():
        src, dst = CORPUS / record["file"], corpus / record["file"]
        if image_id == "slip_0005":
            cv2.imwrite(str(dst), cv2.imread(str(src), cv2.IMREAD_UNCHANGED), [cv2.IMWRITE_PNG_COMPRESSION, 1])
            record["sha256"] = hashlib.sha256(dst.read_bytes()).hexdigest()
            assert record["sha256"] != hashlib.sha256(src.read_bytes()).hexdigest()
        else:
            shutil.copyfile(src, dst)
    (corpus / "manifest.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records.values()),
                                           encoding="utf-8")
    common = ["--profile", "release", "--corpus", str(corpus), "--golden-dir", str(ROOT / "golden")]
    status = run_cli(["golden", "status", *common])
    assert status.returncode == 1, status.stderr[-2000:]
    assert "changed   slip_0005: image changed since its golden was made" in status.stdout
    assert "slip_0004" not in status.stdout.split("changed", 1)[-1]
    out = tmp_path / "out"
    res = run_cli(["run", *common, "--repeats", "1", "--out", str(out)], out=out)
    assert res.returncode == 1, res.stderr[-2000:]
    golden = res.report["checks"]["golden"]
    assert golden["failed_images"] == ["slip_0005"]
    assert golden["details"]["status"]["changed_images"] == ["slip_0005"]
    summary = next(i for i in res.report["images"] if i["id"] == "slip_0005")["checks"]["golden"]["summary"]
    assert summary.startswith("slip_0005: FAIL image changed since its golden was made (sha256 ")


def test_bs1_goldens_record_and_compare_the_bs1_stack(tmp_path: Path) -> None:
    config = tmp_path / "harness.toml"
    config.write_text(f'[profiles.b]\ncorpus = "{CORPUS.as_posix()}"\ngolden_dir = "{(tmp_path / "g").as_posix()}"\n'
                      '[profiles.b.checks]\nrepeats = 2\naudit = false\ngolden_path = "bs1"\n', encoding="utf-8")
    common = ["--config", str(config), "--profile", "b", "--id", "slip_0004"]
    made = run_cli(["golden", "refresh", *common, "--all", "--yes", "--out", str(tmp_path / "r")])
    assert made.returncode == 0, made.stderr[-2000:]
    meta = json.loads((tmp_path / "g" / "b" / "_meta.json").read_text(encoding="utf-8"))
    assert meta["stack"]["rec_batch_size"] == 1
    out = tmp_path / "out"
    res = run_cli(["run", *common, "--out", str(out)], out=out)
    assert res.returncode == 0, res.stderr[-2000:]
    status = res.report["checks"]["golden"]["details"]["status"]
    assert status["stack_differences"] == [] and status["likely_cause"] is None
