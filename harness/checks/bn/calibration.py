"""bn_drift's limits, measured for each model on the slips of its own full approval (pure numpy).

A limit measured on one model does not hold for another: PP-OCRv5's det stem reads a layer drift of 3.2 on clean
slips where PP-OCRv4's reads 2.2. So every full approval, besides recording the BN reference, calibrates:

1. Samples: consecutive runs of 2, 4 and 8 of the approval's slips (every size up to half of them), each the size
   of a sample the check may take; the rest of the slips is the sample's leave-out record.
2. Envelope: over every sample and layer, the extremes the check judges - against the training statistics the
   channel ln variance ratio r (up and down), its distance |d| from its layer's median and the mean shift z, and
   per layer its drift score; against the leave-out record the channel |r| and z and the layer's |mean r| and
   mean z (a sample judged against a record of other clean slips, as a run is judged against the approval's).
3. Limits: the envelope plus a margin (ln 3 on r and |d| against training, ln 2 on r against the record, x1.5 +
   0.5 on a channel's z, x1.5 + 0.25 on a layer's mean z, x1.25 + 0.25 on a layer's drift score). The added parts
   hold a small approval's envelope off zero: 8 approved slips bound z less well than the 64 of a benchmark (a
   clean slip pair read a det stem mean z of 0.36 against an 8-slip envelope x1.5 of 0.3).

A channel whose ln variance ratio over all the approval's slips sits more than ln 100 from its layer's median is
not absorbed into the envelope: a stored variance 100x out of line with its layer on the model's own clean slips is
a fault of the model file (a variance polluted by a tiny batch), not a property of the data; it is listed in the
calibration (`excluded`) and the check names it on every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from harness.checks.bn.channels import LayerStats, score_layer
from harness.golden.approval import BnCalibration

SAMPLE_SIZES = (2, 4, 8)
# Fewer approved slips give too few samples to bound a clean run: approved on 4 slips (2 samples), the clean
# det stem of two other slips moved beyond the limits against the record (layer mean ln ratio +0.65).
CALIBRATION_MIN_IMAGES = 8
EXCLUDE_SPREAD = math.log(100.0)
MARGIN = {"log_ratio": math.log(3.0), "reference_log_ratio": math.log(2.0), "shift_factor": 1.5, "shift_add": 0.5,
          "layer_shift_add": 0.25, "layer_factor": 1.25, "layer_add": 0.25}
METHOD = ("leave-out samples of 2, 4 and 8 consecutive approved slips (up to half of them), each against the "
          "training statistics and against a record of the other slips; envelope = extremes over samples and "
          "layers; limit = envelope + margin; channels more than ln 100 from their layer's median over all the "
          "slips are not absorbed")


def sample_plan(images: int) -> list[list[int]]:
    """The samples (image positions) a calibration measures on `images` approved slips."""
    return [list(range(start, start + size)) for size in SAMPLE_SIZES if size <= images // 2
            for start in range(0, images - size + 1, size)]


def excluded_channels(pooled: Sequence[LayerStats]) -> dict[str, list[int]]:
    """Per layer, the channels too far from their layer over all the slips to be part of the clean envelope."""
    out: dict[str, list[int]] = {}
    for layer in pooled:
        d = layer.spread()
        bad = [int(c) for c in np.flatnonzero(~np.isfinite(d) | (np.abs(d) > EXCLUDE_SPREAD))]
        if bad:
            out[layer.name] = bad
    return out


def calibrate(pooled: Sequence[LayerStats], samples: Sequence[tuple[Sequence[LayerStats], Sequence[LayerStats]]],
              sizes: Sequence[int]) -> BnCalibration:
    """`samples`: per sample its layers and those of its leave-out record (the other slips), in `pooled`'s order."""
    if not samples:
        raise ValueError("a calibration needs at least one sample")
    skip = excluded_channels(pooled)
    env = {"log_ratio_up": 0.0, "log_ratio_down": 0.0, "spread": 0.0, "shift": 0.0}
    ref = {"channel_log_ratio": 0.0, "channel_shift": 0.0, "layer_log_ratio": 0.0, "layer_shift": 0.0}
    layer_env: dict[str, float] = {layer.name: 0.0 for layer in pooled}
    for sample, rest in samples:
        for now, other in zip(sample, rest):
            keep = np.ones(now.channels, bool)
            keep[skip.get(now.name, [])] = False
            r, d, z = now.log_ratio()[keep], now.spread()[keep], now.shift()[keep]
            env["log_ratio_up"] = max(env["log_ratio_up"], float(r.max(initial=0.0)))
            env["log_ratio_down"] = max(env["log_ratio_down"], float(-r.min(initial=0.0)))
            env["spread"] = max(env["spread"], float(np.abs(d).max(initial=0.0)))
            env["shift"] = max(env["shift"], float(z.max(initial=0.0)))
            layer_env[now.name] = max(layer_env[now.name], score_layer(now, math.inf).score)
            eps = max(now.epsilon, 1e-12)
            rr = np.log((now.corpus_var + eps) / (other.corpus_var + eps))
            zz = np.abs(now.corpus_mean - other.corpus_mean) / np.sqrt(other.corpus_var + eps)
            ref["channel_log_ratio"] = max(ref["channel_log_ratio"], float(np.abs(rr).max()))
            ref["channel_shift"] = max(ref["channel_shift"], float(zz.max()))
            ref["layer_log_ratio"] = max(ref["layer_log_ratio"], abs(float(np.mean(rr))))
            ref["layer_shift"] = max(ref["layer_shift"], float(np.mean(zz)))
    m = MARGIN
    limits = {"log_ratio_up": env["log_ratio_up"] + m["log_ratio"],
              "log_ratio_down": env["log_ratio_down"] + m["log_ratio"],
              "spread": env["spread"] + m["log_ratio"],
              "shift": env["shift"] * m["shift_factor"] + m["shift_add"]}
    reference_limits = {"channel_log_ratio": ref["channel_log_ratio"] + m["reference_log_ratio"],
                        "channel_shift": ref["channel_shift"] * m["shift_factor"] + m["shift_add"],
                        "layer_log_ratio": ref["layer_log_ratio"] + m["reference_log_ratio"],
                        "layer_shift": ref["layer_shift"] * m["shift_factor"] + m["layer_shift_add"]}
    layer_limits = {k: v * m["layer_factor"] + m["layer_add"] for k, v in layer_env.items()}
    excluded = tuple(f"{name} channel {c}" for name, chans in sorted(skip.items()) for c in chans)
    return BnCalibration(METHOD, len(samples), tuple(sorted(set(sizes))), env, ref, layer_env, dict(m), limits,
                         reference_limits, layer_limits, excluded)
