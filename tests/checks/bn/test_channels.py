"""BN statistics: the stored BatchNorm statistics against the activations the pipeline really produces.

Judging on synthetic statistics first; then the real PP-OCRv4 det and rec on real slips, captured in a worker at
the predictor's input: the clean slips stay quiet, one channel's moving variance /1000 or x1000 is a finding
naming model, layer and channel in every BN layer of both models; end to end, a planted model fails the nightly
even with goldens made from that same model."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from builders import profile_toml, write_profiles
from conftest import CORPUS, ROOT, run_cli

from harness.checks.bn.capture import Capture, capture_inputs
from harness.checks.bn.channels import (CHANNEL_LIMITS, DEFAULT_THRESHOLD, LayerStats, channel_findings, judge_layers,
                                        score_layer)
from harness.checks.bn.measure import measure_drift, measure_layers
from harness.checks.bn.faults import plant_bn_variance, write_reference_model
from harness.checks.registry import catalogue
from harness.cli import main
from harness.config import load_profile
from harness.golden.approval import load_approval
from harness.corpus.loader import load_corpus
from harness.model.inference import ImageRequest
from harness.model.modeldirs import ModelDirs
from harness.model.settings import EngineSettings
from harness.backends.paddle.pack import resolve_model_dirs
from harness.util.errors import UserError

IDS = ("slip_0008", "slip_0009", "slip_0010", "slip_0011")  # held-out slips of the measurements in the docs
DET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
DET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _layer(stored_var: np.ndarray, corpus_var: np.ndarray, corpus_mean: np.ndarray | None = None) -> LayerStats:
    zeros = np.zeros_like(stored_var)
    return LayerStats("bn_a", 3, 1e-5, zeros, stored_var, zeros if corpus_mean is None else corpus_mean,
                      corpus_var, 1000)


# ---------------------------------------------------------------- judging (no paddle)

def test_channel_findings_on_synthetic_statistics() -> None:
    var = np.linspace(0.5, 2.0, 9)
    assert channel_findings("det", _layer(var, var * 1.3)) == []
    # A quiet channel is not a finding by itself: the corpus confirms it (rec's stem stores 1.1e-4 in one channel).
    quiet = var.copy()
    quiet[4] = 1.1e-4
    assert channel_findings("rec", _layer(quiet, quiet * 1.2)) == []
    [collapsed] = channel_findings("det", _layer(var, var).with_stored_variance(4, 1e-3))
    assert (collapsed.model, collapsed.layer, collapsed.channel, collapsed.reason) == ("det", "bn_a", 4,
                                                                                     "variance-collapsed")
    assert collapsed.log_ratio == pytest.approx(np.log(1000), abs=0.01)
    assert "det bn_a (op #3) channel 4: stored moving variance too small" in str(collapsed)
    [inflated] = channel_findings("rec", _layer(var, var).with_stored_variance(2, 1e3))
    assert (inflated.channel, inflated.reason) == (2, "variance-inflated")
    mean = np.zeros(9)
    mean[7] = 10.0 * np.sqrt(var[7])
    [shifted] = channel_findings("det", _layer(var, var, mean))
    assert (shifted.channel, shifted.reason, round(shifted.shift, 3)) == (7, "mean-shift", 10.0)
    nan = var.copy()
    nan[1] = np.nan
    assert [f.reason for f in channel_findings("det", _layer(nan, var))] == ["non-finite"]


def test_spread_sees_one_channel_in_a_layer_that_sits_far_from_training() -> None:
    """A layer whose channels all measure far less variance than in training (det's head measures r between -4.3
    and -1.1 on single clean slips): +6.9 on one channel can stay inside the limit on r, but not inside the limit
    on its distance from the layer's median."""
    stored = np.full(24, 1e7)
    corpus = stored * np.exp(np.linspace(-5.0, -3.5, 24))
    planted = _layer(stored, corpus).with_stored_variance(12, 1e-3)
    assert planted.log_ratio()[12] < CHANNEL_LIMITS["det"].log_ratio_up
    [finding] = channel_findings("det", planted)
    assert (finding.channel, finding.reason) == (12, "variance-collapsed")


def test_score_layer() -> None:
    var = np.ones(4)
    same = score_layer(_layer(var, var), 2.0)
    assert same.score < 1e-6 and not same.flagged
    shifted = score_layer(_layer(var, var, np.array([0, 0, 0, 12.0])), 2.0)
    assert shifted.shift == pytest.approx(3.0, rel=1e-4) and shifted.flagged and shifted.worst_channel == 3
    weak = score_layer(_layer(var, np.full(4, 0.01)), 2.0)
    assert weak.scale == pytest.approx(np.log(0.01), rel=1e-3) and weak.flagged
    assert (weak.log_ratio_min, weak.spread_max) == (pytest.approx(weak.scale), 0.0)


def test_bad_inputs_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        measure_layers(tmp_path, [])
    with pytest.raises(UserError, match="threshold"):
        measure_drift(tmp_path, [np.zeros((1, 3, 16, 16), np.float32)], threshold=0)


@pytest.mark.parametrize("pir", [True, False], ids=["pir-json", "pdmodel"])
def test_reference_model_both_formats(tmp_path: Path, pir: bool) -> None:
    """The tiny reference net was trained (BN statistics) on N(0.5, 2): the same distribution stays quiet, inputs
    ten times larger are flagged. Covers fetching BN inputs from both program formats."""
    files = write_reference_model(tmp_path / "ref", pir=pir)
    rng = np.random.default_rng(1)
    like_training = [rng.normal(0.5, 2.0, (4, 3, 16, 16)).astype(np.float32) for _ in range(2)]
    clean = measure_drift(files.prefix.parent, like_training)
    shifted = measure_drift(files.prefix.parent, [b * 10 for b in like_training])
    assert [layer.name for layer in clean.layers] == ["batch_norm2d_0"] and clean.images == 8
    assert clean.passed and not shifted.passed, clean.render() + "\n" + shifted.render()
    assert shifted.layers[0].scale > DEFAULT_THRESHOLD and shifted.findings


# ---------------------------------------------------------------- the pinned pack, captured in a worker

@dataclasses.dataclass(frozen=True)
class Measured:
    dirs: ModelDirs
    capture: Capture
    layers: dict[str, list[LayerStats]]


def _engine(profile_name: str = "nightly") -> EngineSettings:
    profile, _ = load_profile(ROOT / "harness.toml", profile_name, catalogue())
    return profile.engine


def _measure(profile_name: str, tmp: Path) -> Measured:
    """Four held-out slips through one capturing worker of the profile's engine; det and rec measured."""
    engine = _engine(profile_name)
    dirs = resolve_model_dirs(engine, ROOT)
    items = {it.id: it for it in load_corpus(CORPUS).items}
    requests = [ImageRequest(i, str(items[i].path), items[i].sha256) for i in IDS]
    capture = capture_inputs(engine, dirs, requests, tmp)
    assert capture.images == IDS and not capture.failed
    assert [len(b) for b in capture.per_image("det")] == [1] * len(IDS)  # one det batch per slip, in order
    assert sum(map(len, capture.per_image("rec"))) == len(capture.files("rec"))
    with ThreadPoolExecutor(max_workers=2) as pool:  # each measurement is a child process: overlap them
        det, rec = pool.map(measure_layers, [dirs.det, dirs.rec], [capture.files("det"), capture.files("rec")])
    return Measured(dirs, capture, {"det": det, "rec": rec})


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Measured:
    return _measure("nightly", tmp_path_factory.mktemp("capture"))


@pytest.fixture(scope="module")
def measured_v5(tmp_path_factory: pytest.TempPathFactory) -> Measured:
    return _measure("nightly-v5", tmp_path_factory.mktemp("capture-v5"))


def test_capture_is_what_the_predictor_gets(measured: Measured) -> None:
    """One det batch per slip, resized as the profile says (long side 960, multiples of 32, ImageNet-normalised);
    rec batches of at most the profile's batch size, height 48."""
    det = [np.load(f) for f in measured.capture.files("det")]
    rec = [np.load(f) for f in measured.capture.files("rec")]
    assert len(det) == len(IDS)
    for batch in det:
        n, c, h, w = batch.shape
        assert (n, c, max(h, w), h % 32, w % 32) == (1, 3, 960, 0, 0) and batch.dtype == np.float32
        assert -2.2 < batch.min() < batch.max() < 2.7  # (pixel/255 - mean) / std
    assert rec and all(b.shape[1:3] == (3, 48) and 1 <= b.shape[0] <= _engine().rec_batch_size for b in rec)
    assert sum(b.shape[0] for b in rec) > 4 * 20  # every slip has more than 20 text lines


def test_clean_slips_are_quiet_det_and_rec(measured: Measured) -> None:
    det = judge_layers("det", "det", measured.layers["det"], images=4, batches=4)
    rec = judge_layers("rec", "rec", measured.layers["rec"], images=4, batches=4)
    assert [d.name for d in det.layers] == ["batch_norm2d_0", "batch_norm_0", "batch_norm_1"]
    assert len(rec.layers) == 6
    assert det.passed and rec.passed, det.render() + "\n" + rec.render()
    # rec's stem keeps a channel far quieter than its neighbours, and the corpus confirms it: not a finding.
    stem = measured.layers["rec"][0]
    quiet = int(np.argmin(stem.stored_var))
    assert stem.stored_var[quiet] < 0.01 * np.median(stem.stored_var)
    assert abs(stem.log_ratio()[quiet]) < 1.0


def _median_channel(layer: LayerStats) -> int:
    """The planting rule: the channel with the median clean log ratio (no cherry-picking of easy channels)."""
    r = layer.log_ratio()
    return int(np.argsort(r, kind="stable")[len(r) // 2])


@pytest.mark.parametrize("factor", [1e-3, 1e3], ids=["var-div-1000", "var-x1000"])
@pytest.mark.parametrize("model", ["det", "rec"])
def test_one_planted_channel_is_found_in_every_layer(measured: Measured, model: str, factor: float) -> None:
    for k, layer in enumerate(measured.layers[model]):
        channel = _median_channel(layer)
        planted = [lay.with_stored_variance(channel, factor) if i == k else lay
                   for i, lay in enumerate(measured.layers[model])]
        report = judge_layers(model, model, planted, images=4, batches=4)
        named = [(f.model, f.layer, f.channel) for f in report.findings]
        assert named == [(model, layer.name, channel)], (layer.name, channel, report.render())
        assert report.findings[0].reason == ("variance-collapsed" if factor < 1 else "variance-inflated")


def test_a_pipeline_that_forgot_normalisation_is_flagged(measured: Measured) -> None:
    """What a pipeline feeds when it scales pixels to 0..1 but never applies the ImageNet mean/std."""
    batches = [np.load(f) * DET_STD[None, :, None, None] + DET_MEAN[None, :, None, None]
               for f in measured.capture.files("det")]
    report = measure_drift(measured.dirs.det, [b.astype(np.float32) for b in batches], kind="det")
    # The stem sees it first and most (the head, whose clean score is near the threshold, may follow).
    assert not report.passed and report.flagged[0].name == "batch_norm2d_0", report.render()
    assert report.layers[0].scale < -DEFAULT_THRESHOLD


def test_cli_drift_captures_darkened_slips(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           measured: Measured) -> None:
    items = {it.id: it for it in load_corpus(CORPUS).items}
    for i in IDS[:2]:
        img = cv2.imread(str(items[i].path))
        cv2.imwrite(str(tmp_path / f"{i}.png"), (img.astype(np.float32) * 0.3).astype(np.uint8))  # under-exposed
    assert main(["audit", str(measured.dirs.det), "--drift", str(tmp_path), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)["models"][0]
    assert doc["audit"]["passed"] is True and doc["bn_drift"]["passed"] is False
    assert doc["bn_drift"]["images"] == 2 and doc["bn_drift"]["batches"] == 2
    stem = doc["bn_drift"]["layers"][0]
    assert stem["name"] == "batch_norm2d_0" and stem["flagged"] and stem["scale"] < -DEFAULT_THRESHOLD
    assert main(["audit", str(measured.dirs.det), "--drift", str(tmp_path / "none.png")]) == 2


# ---------------------------------------------------------------- end to end: a planted pack fails the nightly

APPROVED = tuple(f"slip_{i:04d}" for i in range(4, 12))  # a full approval's slips: 8, enough to calibrate
# The nightly's checks but the passes that judge other things (they cost minutes), on two slips for bn_drift.
BN_ONLY = {"repeats": 1, "cross_process": False, "batch_paths": False, "variations": False, "probe": False,
           "bn_drift_images": 2}


def _profile(tmp_path: Path, nightly: str, kind: str | None = None, model_dir: Path | None = None,
             ids: tuple[str, ...] = APPROVED) -> Path:
    """The nightly's engine and BN checks, on a planted model if given, goldens in tmp; the other passes off (they
    judge other things, and cost minutes). The approval's selection is `ids`."""
    engine = {f"{kind}_model_dir": model_dir} if model_dir else None
    return write_profiles(tmp_path, profile_toml(extends=nightly, golden_dir=tmp_path / "golden", top={"ids": ids},
                                                 engine=engine, checks=BN_ONLY), bundled=True)


def _approve(config: Path, tmp_path: Path) -> None:
    refresh = run_cli(["golden", "refresh", "--config", str(config), "--profile", "t", "--all", "--yes",
                       "--reason", "goldens from the model under test", "--out", str(tmp_path / "refresh")])
    assert refresh.returncode == 0, refresh.stdout[-2000:] + refresh.stderr[-2000:]
    assert "BN reference: det 3 layers" in refresh.stdout, refresh.stdout[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize(("nightly", "model", "layer_index", "factor"), [
    ("nightly", "det", 2, 1e-3), ("nightly", "rec", 0, 1e3),
    ("nightly-v5", "det", 0, 1e-3), ("nightly-v5", "rec", 3, 1e3)],
    ids=["v4-det-batch_norm_1-var-div-1000", "v4-rec-stem-var-x1000", "v5-det-stem-var-div-1000",
         "v5-rec-batch_norm2d_148-var-x1000"])
def test_planted_channel_fails_the_nightly_even_with_goldens_from_that_model(
        tmp_path: Path, request: pytest.FixtureRequest, nightly: str, model: str, layer_index: int,
        factor: float) -> None:
    """Goldens, BN reference and calibration all made from the planted model itself: the calibration keeps the
    channel out of its envelope, and the nightly names model, layer and channel. (v5 det's head, batch_norm_1,
    stores variances about 40x epsilon: /1000 there moves a channel's r by only +3.6, inside the clean spread, so
    an approval of that model absorbs it: docs/batchnorm.md says so; its stem is planted instead.)"""
    measured: Measured = request.getfixturevalue("measured" if nightly == "nightly" else "measured_v5")
    layer = measured.layers[model][layer_index]
    channel = _median_channel(layer)
    src = measured.dirs.det if model == "det" else measured.dirs.rec
    plant_bn_variance(src, tmp_path / "planted", factor=factor, layer=layer.name, channel=channel)
    config = _profile(tmp_path, nightly, model, tmp_path / "planted")
    _approve(config, tmp_path)
    approval = load_approval(tmp_path / "golden" / ("default" if nightly == "nightly" else "pp-ocrv5-mobile"))
    assert approval is not None and approval.bn is not None
    calibration = approval.bn.models[model].calibration
    assert calibration is not None and calibration.excluded == (f"{layer.name} channel {channel}",)
    out = tmp_path / "out"
    res = run_cli(["run", "--config", str(config), "--profile", "t", "--id", IDS[0], "--id", IDS[1],
                   "--out", str(out)], out=out)
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-2000:]
    checks = res.report["checks"]
    assert checks["golden"]["passed"]  # the goldens agree: they were made from this model
    bn = checks["bn_drift"]
    assert not bn["passed"] and not bn["skipped"] and bn["judged"] == 2
    findings = bn["details"][model]["findings"]
    assert [(f["model"], f["layer"], f["channel"]) for f in findings] == [(model, layer.name, channel)]
    assert f"{model} {layer.name} (op #{layer.op_index}) channel {channel}:" in bn["summary"]
    print(bn["summary"])


@pytest.mark.slow
def test_clean_v5_passes_the_nightly_judged_against_its_own_calibration(tmp_path: Path) -> None:
    """The clean half: the bundled PP-OCRv5 golden set (its approval: 16 slips, calibrated), the nightly's BN
    checks on two slips outside that approval pass, drift judged against its approved reference and its own limits
    (PP-OCRv4's layer threshold 2.5 failed its det head)."""
    config = write_profiles(tmp_path, profile_toml(extends="nightly-v5", golden_dir=ROOT / "golden", checks=BN_ONLY),
                            bundled=True)
    out = tmp_path / "out"
    res = run_cli(["run", "--config", str(config), "--profile", "t", "--id", "slip_0040", "--id", "slip_0041",
                   "--out", str(out)], out=out)
    bn = res.report["checks"]["bn_drift"]
    assert res.returncode == 0 and bn["passed"] and bn["judged"] == 2, res.stdout[-3000:] + res.stderr[-2000:]
    assert bn["details"]["reference"]["status"] == "judged" and "no drift from the approved reference" in bn["summary"]
    assert bn["details"]["det"]["layer_thresholds"] and not bn["details"]["det"]["findings"]
