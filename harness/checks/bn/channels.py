"""BN statistics: do the stored BatchNorm statistics describe the activations this deployment really produces?

The input of every batch_norm op left in the program is measured per channel on the tensors the Paddle
predictor really received in a worker (harness.checks.bn.capture): each captured batch is run through the
program in eval mode in a child process and each BN op's `X` is fetched. Then, per channel, against the stored
moving statistics:

- log ratio  r = ln((var_corpus + eps) / (var_stored + eps))   (what the layer's output variance becomes)
- its distance from the layer's median, d = r - median(r)   (one channel out of line with its layer)
- mean shift z = |mu_corpus - mu_stored| / sqrt(var_stored + eps)   (in stored standard deviations)

Per-channel findings (always on): a channel whose r, d or z lies beyond what the full clean corpus reaches
(`CHANNEL_LIMITS`, measured maxima plus a margin) is a finding naming model, layer and channel. d sees one
polluted channel in a layer whose channels all sit far from their training statistics (det's head layer measures
r between -4.3 and -1.1 on single clean slips), where a moved channel can stay inside the limits on r. That is the
polluted moving variance of why-bn.md: one channel's stored variance divided by 1000 raises det CER on held-out
slips from 0.075 to 0.213, yet every stored value stays positive and finite. A quiet channel is not a finding by
itself: it is judged against what the corpus measures in it, not against its neighbours.

Layer drift (recorded, and flagged above `threshold`): the mean over channels of z and of signed r. It moves
with a gain change of the whole layer (darkened scans, a forgotten normalisation). It is measured against the
training statistics, whose gap to bank slips is permanent and harmless, so it says "the input differs from
training", never "this model is better": a det model with its BN naively re-estimated on these very slips
scores best and reads worst.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.util.values import json_number

# Layer drift, on captured inputs: clean slips score up to about 2.2 (det head layer batch_norm_0: documents give
# it about 1/8 of the stored variance; 2.14 on the 8 first smoke slips); a forgotten ImageNet mean/std scores 3.55
# on det's stem. The head sits close to this threshold: a sample of one or two odd slips may cross it.
DEFAULT_THRESHOLD = 2.5
# The check measures at least this many images: one slip alone leaves a rec-stem channel nearly constant (r down
# to -8.8 on most slips, -2.2 pooled over all 64), a property of one small sample, not of the statistics.
MIN_IMAGES = 2


@dataclass(frozen=True)
class ChannelLimits:
    """How far a channel may sit from its stored statistics before it is a finding (see CHANNEL_LIMITS)."""

    log_ratio_up: float  # r above: the stored variance is too small for what the corpus produces (collapsed)
    log_ratio_down: float  # r below minus this: the stored variance is too large (inflated)
    spread: float  # |d| above: the channel is out of line with the rest of its layer
    shift: float  # z above: the stored mean is off by this many stored standard deviations

    def to_dict(self) -> dict[str, float]:
        return {"log_ratio_up": self.log_ratio_up, "log_ratio_down": self.log_ratio_down, "spread": self.spread,
                "shift": self.shift}


# Maxima over every BN layer of the pinned PP-OCRv4 det and rec, measured on the full clean corpus (64 slips of
# datasets/bank_slips) as the pipeline feeds it, oneDNN on and off, on samples of MIN_IMAGES consecutive slips (32
# of them), of 8 (8) and on all 64 pooled; `python benchmarks/bn_limits.py` reproduces them:
#   det: r from -4.231 to +1.806, |d| up to 3.589 (stem, 2 slips), z up to 1.664
#   rec: r from -4.295 to +1.452, |d| up to 4.998 (stem, 2 slips), z up to 0.792
# oneDNN off gave the same maxima to the third decimal, det and rec. (Single slips reach further: det r -6.74,
# rec stem r -8.84 / |d| 8.78; hence MIN_IMAGES.)
MEASURED = {"det": (1.806, 4.231, 3.589, 1.664), "rec": (1.452, 4.295, 4.998, 0.792)}  # r up, -r down, |d|, z

MARGIN_LOG_RATIO = math.log(3.0)  # a channel may measure three times (or a third of) what the worst clean one did
MARGIN_SHIFT = 1.5


def _with_margin(up: float, down: float, spread: float, shift: float) -> ChannelLimits:
    return ChannelLimits(log_ratio_up=up + MARGIN_LOG_RATIO, log_ratio_down=down + MARGIN_LOG_RATIO,
                         spread=spread + MARGIN_LOG_RATIO, shift=shift * MARGIN_SHIFT)


CHANNEL_LIMITS = {"det": _with_margin(*MEASURED["det"]), "rec": _with_margin(*MEASURED["rec"])}


def limits_for(kind: str) -> ChannelLimits:
    """The measured limits of det or rec; for any other model the looser of both (nothing measured for it)."""
    if kind in CHANNEL_LIMITS:
        return CHANNEL_LIMITS[kind]
    both = list(CHANNEL_LIMITS.values())
    return ChannelLimits(*(max(getattr(lim, f) for lim in both) for f in ("log_ratio_up", "log_ratio_down",
                                                                         "spread", "shift")))


@dataclass(frozen=True, eq=False)
class LayerStats:
    """One BN layer, per channel: stored statistics and what the corpus measured (float64 arrays)."""

    name: str
    op_index: int
    epsilon: float
    stored_mean: np.ndarray
    stored_var: np.ndarray
    corpus_mean: np.ndarray
    corpus_var: np.ndarray
    samples: int  # activations per channel that were measured

    @property
    def channels(self) -> int:
        return int(self.stored_var.size)

    def log_ratio(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):  # a broken stored variance must not crash the scorer
            ratio: np.ndarray = np.log((self.corpus_var + self.epsilon)
                                       / (np.maximum(self.stored_var, 0.0) + self.epsilon))
            return ratio

    def spread(self) -> np.ndarray:
        r = self.log_ratio()
        return r - np.median(r) if r.size and np.isfinite(r).all() else r

    def shift(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            shift: np.ndarray = np.abs(self.corpus_mean - self.stored_mean) / np.sqrt(np.maximum(self.stored_var, 0.0)
                                                                                      + self.epsilon)
            return shift

    def with_stored_variance(self, channel: int, factor: float) -> LayerStats:
        """The same layer with one stored variance multiplied by `factor` (a planted fault, for tests)."""
        var = self.stored_var.copy()
        var[channel] *= factor
        return LayerStats(self.name, self.op_index, self.epsilon, self.stored_mean, var, self.corpus_mean,
                          self.corpus_var, self.samples)


@dataclass(frozen=True)
class ChannelFinding:
    model: str  # det | rec | the model dir's kind label
    layer: str
    op_index: int
    channel: int
    log_ratio: float
    spread: float
    shift: float
    stored_var: float
    corpus_var: float
    reason: str  # variance-collapsed | variance-inflated | mean-shift | non-finite

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "layer": self.layer, "op_index": self.op_index, "channel": self.channel,
                "log_ratio": json_number(self.log_ratio), "spread": json_number(self.spread),
                "shift": json_number(self.shift),
                "stored_var": json_number(self.stored_var), "corpus_var": json_number(self.corpus_var),
                "reason": self.reason, "message": str(self)}

    def __str__(self) -> str:
        where = f"{self.model} {self.layer} (op #{self.op_index}) channel {self.channel}"
        stats = (f"corpus variance {self.corpus_var:.3g} vs stored {self.stored_var:.3g} "
                 f"(ln ratio {self.log_ratio:+.2f}, {self.spread:+.2f} from its layer's median), "
                 f"mean shift {self.shift:.2f} stored std")
        why = {"variance-collapsed": "stored moving variance too small for what the corpus produces (collapsed)",
               "variance-inflated": "stored moving variance too large for what the corpus produces",
               "mean-shift": "stored moving mean far from what the corpus produces",
               "non-finite": "statistics are not finite"}[self.reason]
        return f"{where}: {why}: {stats}"


def channel_findings(model: str, layer: LayerStats, limits: ChannelLimits | None = None) -> list[ChannelFinding]:
    """Every channel of `layer` beyond `limits` (default: the model kind's) (pure numpy)."""
    limits = limits_for(model) if limits is None else limits
    r, d, z = layer.log_ratio(), layer.spread(), layer.shift()
    out = []
    for c in range(layer.channels):
        if not (math.isfinite(r[c]) and math.isfinite(z[c])):
            reason = "non-finite"
        elif r[c] > limits.log_ratio_up or d[c] > limits.spread:
            reason = "variance-collapsed"
        elif r[c] < -limits.log_ratio_down or d[c] < -limits.spread:
            reason = "variance-inflated"
        elif z[c] > limits.shift:
            reason = "mean-shift"
        else:
            continue
        out.append(ChannelFinding(model, layer.name, layer.op_index, c, float(r[c]), float(d[c]), float(z[c]),
                                  float(layer.stored_var[c]), float(layer.corpus_var[c]), reason))
    return out


@dataclass(frozen=True)
class LayerDrift:
    name: str
    op_index: int
    channels: int
    samples: int  # activations per channel that were measured
    shift: float  # mean over channels of z
    scale: float  # mean over channels of r (signed)
    worst_channel: int  # channel with the largest z + |r|
    flagged: bool  # layer drift above the threshold
    log_ratio_max: float  # per-channel extremes: what the limits are measured from
    log_ratio_min: float
    spread_max: float  # max |d|
    shift_max: float

    @property
    def score(self) -> float:
        return max(self.shift, abs(self.scale))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op_index": self.op_index, "channels": self.channels, "samples": self.samples,
                "shift": json_number(self.shift), "scale": json_number(self.scale),
                "score": json_number(self.score), "worst_channel": self.worst_channel, "flagged": self.flagged,
                "log_ratio_max": json_number(self.log_ratio_max), "log_ratio_min": json_number(self.log_ratio_min),
                "spread_max": json_number(self.spread_max), "shift_max": json_number(self.shift_max)}


def score_layer(layer: LayerStats, threshold: float) -> LayerDrift:
    """Layer drift and per-channel extremes of one layer (pure numpy)."""
    r, z = layer.log_ratio(), layer.shift()
    shift, scale = float(np.mean(z)), float(np.mean(r))
    score = max(shift, abs(scale))
    worst = int(np.argmax(np.nan_to_num(z + np.abs(r), nan=np.inf))) if r.size else -1

    def extreme(values: np.ndarray, f: Any) -> float:
        return float(f(values)) if np.isfinite(values).all() else math.nan

    return LayerDrift(name=layer.name, op_index=layer.op_index, channels=layer.channels, samples=layer.samples,
                      shift=shift, scale=scale, worst_channel=worst,
                      flagged=not (math.isfinite(score) and score <= threshold),
                      log_ratio_max=extreme(r, np.max), log_ratio_min=extreme(r, np.min),
                      spread_max=extreme(np.abs(layer.spread()), np.max), shift_max=extreme(z, np.max))


@dataclass(frozen=True)
class DriftReport:
    model_dir: str
    kind: str
    images: int
    batches: int
    threshold: float
    limits: ChannelLimits
    layers: tuple[LayerDrift, ...]
    findings: tuple[ChannelFinding, ...]
    layer_thresholds: Mapping[str, float] = field(default_factory=dict)  # by layer name, replacing `threshold`

    @property
    def flagged(self) -> tuple[LayerDrift, ...]:
        return tuple(layer for layer in self.layers if layer.flagged)

    @property
    def passed(self) -> bool:
        return not self.flagged and not self.findings

    def __bool__(self) -> bool:
        return self.passed

    @property
    def max_score(self) -> float:
        return max((layer.score for layer in self.layers), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"model_dir": self.model_dir, "kind": self.kind, "images": self.images, "batches": self.batches,
                "threshold": None if self.layer_thresholds else self.threshold,
                "layer_thresholds": {k: json_number(v) for k, v in sorted(self.layer_thresholds.items())},
                "limits": self.limits.to_dict(), "passed": self.passed,
                "max_score": json_number(self.max_score), "layers": [layer.to_dict() for layer in self.layers],
                "findings": [f.to_dict() for f in self.findings]}

    def render(self) -> str:
        lim = self.limits
        lines = [f"bn statistics {self.model_dir} ({self.kind}, {self.images} images, {self.batches} captured "
                 f"batches): per channel ln ratio r in [-{lim.log_ratio_down:.2f}, +{lim.log_ratio_up:.2f}], "
                 f"|r - layer median| <= {lim.spread:.2f}, mean shift <= {lim.shift:.2f}; layer drift threshold "
                 + ("per layer (calibrated)" if self.layer_thresholds else f"{self.threshold:g}")]
        head = ("op#", "layer", "ch", "r min", "r max", "|d| max", "z max", "shift", "scale", "score", "")
        rows = [(str(d.op_index), d.name, str(d.channels), f"{d.log_ratio_min:+.2f}", f"{d.log_ratio_max:+.2f}",
                 f"{d.spread_max:.2f}", f"{d.shift_max:.2f}", f"{d.shift:.3f}", f"{d.scale:+.3f}", f"{d.score:.3f}",
                 "DRIFT" if d.flagged else "ok") for d in self.layers]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
        if not self.layers:
            lines.append("  no batch_norm ops left in the program (folded into conv): nothing to measure")
        if self.passed:
            lines.append(f"PASS: no channel beyond the limits, max layer drift {self.max_score:.3f}")
        else:
            lines.append(f"FAIL: {len(self.findings)} channel findings, layer drift in {len(self.flagged)} of "
                         f"{len(self.layers)} layers")
        lines += [f"  {f}" for f in self.findings[:10]]
        if len(self.findings) > 10:
            lines.append(f"  ... (+{len(self.findings) - 10} more channel findings)")
        if self.flagged:
            lines.append("  layer drift: these images differ from the training statistics as a whole: check the "
                         "input pipeline (colour order, scaling)")
        return "\n".join(lines)


def judge_layers(model_dir: str, kind: str, stats: list[LayerStats], *, images: int, batches: int,
                 threshold: float = DEFAULT_THRESHOLD, limits: ChannelLimits | None = None,
                 layer_thresholds: Mapping[str, float] | None = None) -> DriftReport:
    """The report for measured layers (pure numpy). `layer_thresholds` (a calibration's, by layer name) replace
    `threshold` for the layers they name."""
    limits = limits_for(kind) if limits is None else limits
    per_layer = dict(layer_thresholds or {})
    findings = [f for layer in stats for f in channel_findings(kind, layer, limits)]
    return DriftReport(model_dir=model_dir, kind=kind, images=images, batches=batches, threshold=float(threshold),
                       limits=limits, layers=tuple(score_layer(s, per_layer.get(s.name, threshold)) for s in stats),
                       findings=tuple(findings), layer_thresholds=per_layer)
