"""A check that judged nothing never passes; images it could not judge are counted, never "all clean"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builders import profile_toml, write_profiles
from conftest import ROOT, run_cli
from harness.model.outcome import ImageCheck, from_images

BN_DRIFT = {"goldens": False, "audit": False, "bn_drift": True}  # bn_drift, the check under test, on; goldens, audit off


def test_judged_nothing_fails() -> None:
    empty = from_images("repeat", {}, "not reproducible")
    assert not empty.passed and empty.summary == "judged nothing: no image ran" and empty.judged == 0
    unjudged = from_images("golden", {"a": ImageCheck(True, "no golden", judged=False)}, "differ")
    assert not unjudged.passed and unjudged.summary.startswith("judged nothing: 1 images not judged (no golden")


def test_unjudged_images_are_counted_apart() -> None:
    per_image = {"a": ImageCheck(True, "ok"), "b": ImageCheck(True, "no golden", judged=False),
                 "c": ImageCheck(True, "ok")}
    check = from_images("golden", per_image, "differ")
    assert check.passed and check.judged == 2
    assert check.summary == "2 of 3 images judged, all clean; 1 not judged (no golden): b"
    assert check.to_dict()["judged"] == 2 and check.to_dict()["unit"] == "images"


def test_all_judged_and_clean_and_failures() -> None:
    assert from_images("x", {"a": ImageCheck(True)}, "bad").summary == "all 1 images clean"
    failed = from_images("x", {"a": ImageCheck(False), "b": ImageCheck(True)}, "bad")
    assert not failed.passed and failed.summary == "1 of 2 images bad: a" and failed.failed_images == ["a"]


@pytest.mark.slow
def test_bn_drift_with_no_readable_image_fails(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "slip.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    # The bundled golden set's approval calibrates the bundled models: the capture itself finds nothing to read.
    config = write_profiles(tmp_path, profile_toml(corpus=corpus, golden_dir=ROOT / "golden", golden_set="default",
                                                   checks=BN_DRIFT))
    out = tmp_path / "out"
    res = run_cli(["run", "--config", str(config), "--profile", "t", "--out", str(out)], out=out)
    assert res.returncode == 1, res.stderr[-2000:]
    check = res.report["checks"]["bn_drift"]
    assert not check["passed"] and not check["skipped"]
    assert check["summary"] == "judged nothing: no readable image to measure"


@pytest.mark.slow
def test_bn_drift_without_a_calibration_of_its_own_is_not_judged(tmp_path: Path) -> None:
    """A golden set with no approval record: bn_drift says the model is not calibrated and fails, judging nothing
    (it never borrows another model's limits), before any capture."""
    config = write_profiles(tmp_path, profile_toml(golden_dir=tmp_path / "g", checks=BN_DRIFT))
    out = tmp_path / "out"
    res = run_cli(["run", "--config", str(config), "--profile", "t", "--id", "slip_0000", "--out", str(out)],
                  out=out)
    assert res.returncode == 1, res.stderr[-2000:]
    check = res.report["checks"]["bn_drift"]
    assert not check["passed"] and not check["judged"], check
    assert check["summary"] == ("not calibrated for this model: run a full approval (`ocr-harness golden refresh "
                                "--profile t --all --yes`); golden set 't' has no _approval.json"), check["summary"]
    assert set(check["details"]["not_calibrated"]) == {"det", "rec"}


@pytest.mark.slow
def test_bn_drift_with_one_model_calibrated_judges_it_and_fails_naming_the_other(tmp_path: Path) -> None:
    """Planted: the bundled approval with rec's record taken out. det is judged with its own calibration; rec has BN
    layers and no calibration of its own, so the check does not pass and names rec (a model whose BN is all folded
    would have nothing to calibrate and is no gap)."""
    golden = tmp_path / "golden" / "default"
    golden.mkdir(parents=True)
    approval = json.loads((ROOT / "golden" / "default" / "_approval.json").read_text(encoding="utf-8"))
    del approval["bn"]["models"]["rec"]
    (golden / "_approval.json").write_text(json.dumps(approval), encoding="utf-8")
    config = write_profiles(tmp_path, profile_toml(golden_dir=tmp_path / "golden", golden_set="default",
                                                   checks={**BN_DRIFT, "bn_drift_images": 2}))
    out = tmp_path / "out"
    res = run_cli(["run", "--config", str(config), "--profile", "t", "--id", "slip_0040", "--id", "slip_0041",
                   "--out", str(out)], out=out)
    check = res.report["checks"]["bn_drift"]
    assert res.returncode == 1 and not check["passed"] and check["judged"] == 2, check
    assert check["summary"].startswith("not calibrated for this model: rec: the BN reference has no record of it"), \
        check["summary"]
    assert check["details"]["not_calibrated"] == {"rec": "the BN reference has no record of it"}
    assert check["details"]["det"]["layer_thresholds"] and "rec" not in check["details"]
