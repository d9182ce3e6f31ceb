"""bn_drift's per-model calibration (harness.checks.bn.calibration, the `calibration` of each model in the BN
reference of _approval.json), on synthetic statistics: the envelope of clean samples with its margin, a channel
planted in the model itself kept out of the envelope and named by the check, the record's strict decoder. The real
packs end to end: tests/checks/bn/test_channels.py (planted channels through the nightly, v4 and v5) and
tests/checks/bn/test_reference.py (an approval records it)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.checks.bn.calibration import EXCLUDE_SPREAD, MARGIN, calibrate, sample_plan
from harness.checks.bn.channels import ChannelLimits, LayerStats, judge_layers
from harness.golden.approval import BnCalibration

CHANNELS = 32
SLIPS = 16


def _slips(seed: int = 0, factor: float = 1.0, channel: int = 5) -> list[list[LayerStats]]:
    """Per slip, two layers whose corpus statistics wander around the stored ones (log-normal variance, mean
    within a tenth of a std); `factor` multiplies one stored variance of the second layer (a planted fault)."""
    rng = np.random.default_rng(seed)
    stored = [rng.uniform(0.5, 2.0, CHANNELS), rng.uniform(0.01, 0.1, CHANNELS)]
    planted = stored[1].copy()
    planted[channel] *= factor
    out = []
    for _ in range(SLIPS):
        layers = []
        for k, var in enumerate(stored):
            corpus_var = var * np.exp(rng.normal(0.0, 0.3, CHANNELS))
            corpus_mean = rng.normal(0.0, 0.1, CHANNELS) * np.sqrt(var)
            layers.append(LayerStats(f"bn_{k}", k, 1e-5, np.zeros(CHANNELS), planted if k else var, corpus_mean,
                                     corpus_var, 1000))
        out.append(layers)
    return out


def _pool(slips: list[list[LayerStats]], picks: list[int]) -> list[LayerStats]:
    """The layers pooled over some slips (equal weights: mean of means, variance of the mixture)."""
    pooled = []
    for k, first in enumerate(slips[0]):
        means = np.array([slips[i][k].corpus_mean for i in picks])
        variances = np.array([slips[i][k].corpus_var for i in picks])
        mean = means.mean(axis=0)
        var = (variances + (means - mean) ** 2).mean(axis=0)
        pooled.append(LayerStats(first.name, first.op_index, first.epsilon, first.stored_mean, first.stored_var,
                                 mean, var, first.samples * len(picks)))
    return pooled


def _calibrate(slips: list[list[LayerStats]]) -> BnCalibration:
    plan = sample_plan(len(slips))
    pairs = [(_pool(slips, s), _pool(slips, [i for i in range(len(slips)) if i not in s])) for s in plan]
    return calibrate(_pool(slips, list(range(len(slips)))), pairs, [len(s) for s in plan])


def test_the_samples_are_consecutive_runs_of_2_4_8_up_to_half_the_slips() -> None:
    assert sample_plan(4) == [[0, 1], [2, 3]]
    plan = sample_plan(16)
    assert [len(s) for s in plan] == [2] * 8 + [4] * 4 + [8] * 2
    assert sample_plan(12)[-1] == [8, 9, 10, 11] and all(len(s) <= 6 for s in sample_plan(12))


def test_clean_limits_are_the_envelope_plus_the_margin_and_a_clean_sample_passes() -> None:
    slips = _slips()
    cal = _calibrate(slips)
    assert cal.excluded == () and cal.samples == 14 and cal.sample_sizes == (2, 4, 8)
    assert cal.limits["log_ratio_up"] == pytest.approx(cal.envelope["log_ratio_up"] + MARGIN["log_ratio"])
    assert cal.limits["shift"] == pytest.approx(cal.envelope["shift"] * MARGIN["shift_factor"] + MARGIN["shift_add"])
    assert cal.reference_limits["channel_log_ratio"] == pytest.approx(
        cal.reference_envelope["channel_log_ratio"] + MARGIN["reference_log_ratio"])
    assert set(cal.layer_limits) == {"bn_0", "bn_1"}
    assert all(cal.layer_limits[k] > cal.layer_envelope[k] for k in cal.layer_limits)
    # Another draw of the same clean data, judged with these limits: quiet (the margin covers a new sample).
    other = _slips(seed=1)
    fresh = _pool([[LayerStats(a.name, a.op_index, a.epsilon, a.stored_mean, b.stored_var, a.corpus_mean,
                                a.corpus_var, a.samples) for a, b in zip(new, old)]
                   for new, old in zip(other, slips)], list(range(8)))
    report = judge_layers("m", "m", fresh, images=8, batches=8, limits=ChannelLimits(**cal.limits),
                          layer_thresholds=cal.layer_limits)
    assert report.passed, report.render()


@pytest.mark.parametrize("factor", [1e-3, 1e3], ids=["var-div-1000", "var-x1000"])
def test_a_channel_planted_in_the_approved_model_is_not_absorbed_and_the_check_names_it(factor: float) -> None:
    """Goldens and approval made from the faulty model itself: the calibration must not learn the fault."""
    slips = _slips(factor=factor)
    cal = _calibrate(slips)
    assert cal.excluded == ("bn_1 channel 5",)
    clean = _calibrate(_slips())
    assert cal.limits == pytest.approx(clean.limits, rel=0.2)  # the envelope is that of the clean channels
    report = judge_layers("m", "m", _pool(slips, [0, 1]), images=2, batches=2,
                          limits=ChannelLimits(**cal.limits), layer_thresholds=cal.layer_limits)
    assert [(f.layer, f.channel) for f in report.findings] == [("bn_1", 5)], report.render()
    assert report.findings[0].reason == ("variance-collapsed" if factor < 1 else "variance-inflated")
    assert abs(math.log(factor)) > EXCLUDE_SPREAD


def test_a_calibration_round_trips_and_a_bad_one_is_refused() -> None:
    cal = _calibrate(_slips(factor=1e-3))
    assert BnCalibration.from_dict(cal.to_dict()) == cal
    for key, value, problem in [("limits", {"log_ratio_up": 1.0}, "exactly"),
                                ("envelope", {**cal.envelope, "shift": -1.0}, ">= 0"),
                                ("layer_limits", {"bn_0": 1.0}, "different layers"),
                                ("samples", 0, ">= 1")]:
        bad = {**cal.to_dict(), key: value}
        with pytest.raises(ValueError, match=problem):
            BnCalibration.from_dict(bad)
