"""BN drift against the approved reference: has the input of any BatchNorm layer moved since the goldens were approved?

A full approval captures, at the predictor's input in a worker of the profile's engine (harness.checks.bn.capture),
up to REFERENCE_IMAGES slips of the golden corpus and records every det and rec BN layer's input per channel
(mean and population variance, float64) in the golden set's approval record (harness.golden.approval.BnReference),
keyed by the model files' hashes and the input settings. `bn_drift` then judges each later capture against it,
in addition to the per-channel findings against the stored training statistics (harness.checks.bn.channels):

- per channel, r = ln((var_now + eps) / (var_ref + eps)) and z = |mean_now - mean_ref| / sqrt(var_ref + eps);
- per layer, the mean of r over channels (a gain change of the whole layer) and the mean of z.

The gap between training statistics and bank slips is permanent and harmless; the gap to what was approved is
not: darkened scans, a changed resize or a forgotten normalisation move the inputs away from the record. Limits
are measured maxima on clean slips disjoint from the record's (`python benchmarks/bn_reference_limits.py`) plus
a margin. A record made on another CPU or runtime is still used (the report names the stack keys that differ);
one whose model hashes or input settings differ from the run is not used for that model, and the result says
so: that model is then judged against its stored statistics only.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.util.values import json_number
from harness.checks.bn.capture import capture_inputs
from harness.checks.bn.calibration import CALIBRATION_MIN_IMAGES, calibrate, sample_plan
from harness.checks.bn.channels import LayerStats
from harness.checks.bn.measure import measure_groups
from harness.model.settings import EngineSettings
from harness.util.errors import UserError
from harness.golden.approval import BnCalibration, BnLayerRecord, BnModelRecord, BnReference
from harness.golden.status import stack_differences
from harness.model.modeldirs import ModelDirs
from harness.model.inference import ImageRequest

# The record pools this many slips of the approval's selection (all of them when it has fewer): enough for
# stable per-channel statistics, about a minute of capture and measuring on 2 cores.
REFERENCE_IMAGES = 16
REFERENCE_MIN_IMAGES = 4  # fewer slips make a record one slip's background can dominate (docs/batchnorm.md)
TOP_CHANNELS = 3  # channels shown per layer in the report


@dataclass(frozen=True)
class ReferenceLimits:
    """How far a capture may move from the approved record before it is drift."""

    channel_log_ratio: float  # |r| of one channel
    channel_shift: float  # z of one channel, in the record's standard deviations
    layer_log_ratio: float  # |mean r| over a layer's channels
    layer_shift: float  # mean z over a layer's channels

    def to_dict(self) -> dict[str, float]:
        return {"channel_log_ratio": self.channel_log_ratio, "channel_shift": self.channel_shift,
                "layer_log_ratio": self.layer_log_ratio, "layer_shift": self.layer_shift}


# Maxima on clean slips disjoint from the record's (`python benchmarks/bn_reference_limits.py`): records pooled
# over 16 slips of one half of the full corpus (even positions, then odd), judged on every sample of 2 and of 8
# consecutive slips of the other half and on the whole other half (16 + 4 + 1 samples per record), oneDNN on;
# every BN layer of the pinned PP-OCRv4 det and rec. The stems set every maximum but rec's mean z (det stem:
# |mean r| 1.55 on two slips; slips differ in background and text density, which the first conv sees most):
#   det: max |r| 3.058, max z 0.976, max |mean r| 1.553, max mean z 0.501
#   rec: max |r| 3.286, max z 0.720, max |mean r| 1.165, max mean z 0.303
# oneDNN off: the 12 smoke slips captured with it off give the same statistics as with it on, slip by slip, to
# the last bit (max |r| and z 0.0, det and rec: the captured inputs are pre-processing output, and the
# measuring child is the same program), so these limits hold for it too.
MEASURED = {"det": (3.058, 0.976, 1.553, 0.501), "rec": (3.286, 0.720, 1.165, 0.303)}
MARGIN_LOG_RATIO = math.log(2.0)  # a channel may measure twice (or half) what the worst clean sample did
MARGIN_SHIFT = 1.5


def _with_margin(r: float, z: float, layer_r: float, layer_z: float) -> ReferenceLimits:
    return ReferenceLimits(r + MARGIN_LOG_RATIO, z * MARGIN_SHIFT, layer_r + MARGIN_LOG_RATIO, layer_z * MARGIN_SHIFT)


REFERENCE_LIMITS = {kind: _with_margin(*values) for kind, values in MEASURED.items()}


def reference_limits_for(kind: str) -> ReferenceLimits:
    """The measured limits of det or rec; for any other model the looser of both."""
    if kind in REFERENCE_LIMITS:
        return REFERENCE_LIMITS[kind]
    both = list(REFERENCE_LIMITS.values())
    return ReferenceLimits(*(max(getattr(lim, f) for lim in both) for f in ReferenceLimits.__dataclass_fields__))


# ---------------------------------------------------------------- what a record is keyed by

def input_settings(kind: str, engine: EngineSettings) -> dict[str, Any]:
    """The settings that decide the tensors `kind` receives (besides the images): a record measured with other
    ones describes another distribution."""
    if kind == "det":
        return {"det_limit_type": engine.det_limit_type, "det_limit_side_len": engine.det_limit_side_len}
    shape = None if engine.rec_image_shape is None else list(engine.rec_image_shape)  # None: the model's default
    return {"rec_image_shape": shape, "rec_batch_size": engine.rec_batch_size}


def model_hashes(kind: str, dirs: ModelDirs) -> dict[str, str]:
    return {k: v for k, v in dirs.file_hashes().items() if k.startswith(f"{kind}/")}


def mismatch(record: BnModelRecord, hashes: Mapping[str, str], inputs: Mapping[str, Any]) -> str | None:
    """Why `record` cannot judge a run of these model files and input settings (None: it can)."""
    why = []
    if dict(record.model_hashes) != dict(hashes):
        changed = sorted(k for k in set(record.model_hashes) | set(hashes) if record.model_hashes.get(k) != hashes.get(k))
        why.append("model files differ (" + ", ".join(f"{k} {str(record.model_hashes.get(k))[:12]} -> "
                                                       f"{str(hashes.get(k))[:12]}" for k in changed) + ")")
    diff = [k for k in sorted(set(record.inputs) | set(inputs)) if record.inputs.get(k) != inputs.get(k)]
    if diff:
        why.append("input settings differ (" + ", ".join(f"{k} {record.inputs.get(k)!r} -> {inputs.get(k)!r}"
                                                         for k in diff) + ")")
    return "; ".join(why) or None


# ---------------------------------------------------------------- making the record

def model_record(stats: Sequence[LayerStats], hashes: Mapping[str, str], inputs: Mapping[str, Any],
                 batches: int, calibration: BnCalibration | None = None) -> BnModelRecord:
    return BnModelRecord(dict(hashes), dict(inputs), batches, tuple(
        BnLayerRecord(s.name, s.op_index, s.epsilon, tuple(float(v) for v in s.corpus_mean),
                      tuple(float(v) for v in s.corpus_var), s.samples) for s in stats), calibration)


def measure_and_calibrate(model_dir: Path, files: list[Path], per_image: list[list[int]]
                          ) -> tuple[list[LayerStats], BnCalibration | None]:
    """One measuring child: the layers pooled over every image, and the calibration of their leave-out samples
    (harness.checks.bn.calibration) from the same pass; None when too few images ran to calibrate."""
    plan = sample_plan(len(per_image)) if len(per_image) >= CALIBRATION_MIN_IMAGES else []
    everything = list(range(len(files)))
    groups = [everything]
    for sample in plan:
        inside = set(sample)
        groups.append([b for i in sample for b in per_image[i]])
        groups.append([b for i, batches in enumerate(per_image) if i not in inside for b in batches])
    measured = measure_groups(model_dir, files, groups)
    pooled = measured[0]
    pairs = [(measured[1 + 2 * n], measured[2 + 2 * n]) for n in range(len(plan))]
    return pooled, calibrate(pooled, pairs, [len(s) for s in plan]) if plan else None


def capture_reference(engine: EngineSettings, dirs: ModelDirs, requests: Sequence[ImageRequest], tmp: Path,
                      stack: Mapping[str, Any], *, max_pixels: int, log_path: str | None = None) -> BnReference:
    """Captures up to REFERENCE_IMAGES of `requests` in a worker of `engine` and records det's and rec's BN
    inputs. Every image asked for must run: a record is made only from a capture without failures."""
    capture = capture_inputs(engine, dirs, list(requests), tmp, want=REFERENCE_IMAGES, max_pixels=max_pixels,
                             log_path=log_path)
    if capture.failed:
        raise UserError(f"BN reference not recorded: {len(capture.failed)} image(s) did not run "
                        f"({', '.join(i for i, _ in capture.failed[:5])})")
    if len(capture.images) < REFERENCE_MIN_IMAGES:
        raise UserError(f"BN reference not recorded: {len(capture.images)} image(s) ran, a record needs at least "
                        f"{REFERENCE_MIN_IMAGES} (the limits were measured against 16-slip records)")
    kinds = [(k, d) for k, d in (("det", dirs.det), ("rec", dirs.rec)) if capture.files(k)]
    with ThreadPoolExecutor(max_workers=2) as pool:  # each measurement is a child process: overlap them
        measured = list(pool.map(lambda kd: measure_and_calibrate(kd[1], capture.files(kd[0]),
                                                                  capture.per_image(kd[0])), kinds))
    models = {kind: model_record(stats, model_hashes(kind, dirs), input_settings(kind, engine),
                                 len(capture.files(kind)), calibration)
              for (kind, _), (stats, calibration) in zip(kinds, measured) if stats}
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return BnReference(stamp, dict(stack), capture.images, models)


# ---------------------------------------------------------------- judging a capture against the record

@dataclass(frozen=True)
class ChannelMove:
    channel: int
    log_ratio: float  # r
    shift: float  # z
    ref_mean: float
    ref_var: float
    now_mean: float
    now_var: float

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "log_ratio": json_number(self.log_ratio), "shift": json_number(self.shift),
                "ref_mean": json_number(self.ref_mean), "ref_var": json_number(self.ref_var),
                "now_mean": json_number(self.now_mean), "now_var": json_number(self.now_var)}


@dataclass(frozen=True)
class LayerMove:
    model: str
    layer: str
    op_index: int
    channels: int
    mean_log_ratio: float  # signed mean of r over channels
    mean_shift: float  # mean z over channels
    top: tuple[ChannelMove, ...]  # the channels that moved most (|r| + z), most first
    beyond: tuple[int, ...]  # channels beyond the per-channel limits
    layer_beyond: bool  # the layer's means beyond the layer limits

    @property
    def drifted(self) -> bool:
        return self.layer_beyond or bool(self.beyond)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "layer": self.layer, "op_index": self.op_index, "channels": self.channels,
                "mean_log_ratio": json_number(self.mean_log_ratio), "mean_shift": json_number(self.mean_shift),
                "top_channels": [c.to_dict() for c in self.top], "channels_beyond": list(self.beyond),
                "layer_beyond": self.layer_beyond, "drifted": self.drifted, "message": str(self)}

    def __str__(self) -> str:
        head = (f"{self.model} {self.layer} (op #{self.op_index}): layer mean ln variance ratio "
                f"{self.mean_log_ratio:+.2f}, mean shift {self.mean_shift:.2f} reference std")
        chans = ", ".join(f"ch {c.channel} (r {c.log_ratio:+.2f}, z {c.shift:.2f})" for c in self.top)
        if not self.drifted:
            return f"{head}; most moved: {chans}"
        beyond = f"{len(self.beyond)} of {self.channels} channels beyond the limits" if self.beyond else \
            "no single channel beyond the limits"
        return f"{head}: moved from the approved reference ({beyond}; most moved: {chans})"


def judge_model(model: str, stats: Sequence[LayerStats], record: BnModelRecord,
                limits: ReferenceLimits | None = None, top: int = TOP_CHANNELS) -> tuple[list[LayerMove], str | None]:
    """Each measured layer against its record (pure numpy), its `top` most moved channels listed; the second
    value says why a layer could not be compared (a layer missing on either side: not the recorded program)."""
    limits = reference_limits_for(model) if limits is None else limits
    recorded = {(r.name, r.op_index): r for r in record.layers}
    now = {(s.name, s.op_index) for s in stats}
    if now != set(recorded):
        return [], (f"{model}: BN layers differ from the record's ({sorted(n for n, _ in now)} vs "
                    f"{sorted(n for n, _ in recorded)})")
    moves = []
    for s in stats:
        rec = recorded[(s.name, s.op_index)]
        ref_mean, ref_var = np.asarray(rec.mean, np.float64), np.asarray(rec.var, np.float64)
        if ref_var.size != s.channels:
            return [], f"{model} {s.name}: {s.channels} channels, the record has {ref_var.size}"
        eps = max(s.epsilon, 1e-12)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log((s.corpus_var + eps) / (ref_var + eps))
            z = np.abs(s.corpus_mean - ref_mean) / np.sqrt(ref_var + eps)
        bad = ~(np.isfinite(r) & np.isfinite(z))
        beyond = np.flatnonzero(bad | (np.abs(r) > limits.channel_log_ratio) | (z > limits.channel_shift))
        order = np.argsort(-np.nan_to_num(np.abs(r) + z, nan=np.inf), kind="stable")[:top]
        mean_r, mean_z = float(np.mean(r)), float(np.mean(z))
        layer_beyond = not (abs(mean_r) <= limits.layer_log_ratio and mean_z <= limits.layer_shift)
        moves.append(LayerMove(model, s.name, s.op_index, s.channels, mean_r, mean_z, tuple(
            ChannelMove(int(c), float(r[c]), float(z[c]), float(ref_mean[c]), float(ref_var[c]),
                        float(s.corpus_mean[c]), float(s.corpus_var[c])) for c in order),
            tuple(int(c) for c in beyond), layer_beyond))
    return moves, None


@dataclass(frozen=True)
class ReferenceVerdict:
    """The drift part of `bn_drift`: against the approved record, or why there was none to judge against."""

    status: str  # judged | no-record | mismatch (per model in `why`)
    layers: tuple[LayerMove, ...]
    why: Mapping[str, str]  # model -> why it was not judged against the record
    stack_differences: tuple[str, ...]  # "key: record -> now"
    approved_at: str | None
    record_images: int

    @property
    def drifted(self) -> tuple[LayerMove, ...]:
        return tuple(m for m in self.layers if m.drifted)

    def to_dict(self, limits: Mapping[str, ReferenceLimits]) -> dict[str, Any]:
        return {"status": self.status, "approved_at": self.approved_at, "record_images": self.record_images,
                "not_judged": dict(self.why), "stack_differences": list(self.stack_differences),
                "limits": {k: v.to_dict() for k, v in limits.items()},
                "layers": [m.to_dict() for m in self.layers], "passed": not self.drifted}

    def sentence(self) -> str:
        if self.status == "no-record":
            return "drift measured against training statistics only: " + "; ".join(self.why.values())
        parts = []
        if self.layers:
            judged = sorted({m.model for m in self.layers})
            worst = max(self.layers, key=lambda m: (m.drifted, abs(m.mean_log_ratio) + m.mean_shift))
            if self.drifted:
                parts.append(f"DRIFT from the approved reference ({self.approved_at}, {self.record_images} images) in "
                             f"{len(self.drifted)} of {len(self.layers)} layers: " +
                             "; ".join(str(m) for m in self.drifted[:3]))
            else:
                parts.append(f"no drift from the approved reference ({self.approved_at}, {self.record_images} "
                             f"images) in {'/'.join(judged)}; the layer that moved most: {worst}")
        for model, why in sorted(self.why.items()):
            parts.append(f"{model} not judged against the approved reference ({why}): against training statistics "
                         "only")
        if self.stack_differences:
            parts.append("record made on another stack: " + ", ".join(self.stack_differences[:6]))
        return "; ".join(parts)


def judge_reference(reference: BnReference | None, no_record_why: str, measured: Mapping[str, Sequence[LayerStats]],
                    hashes: Mapping[str, Mapping[str, str]], inputs: Mapping[str, Mapping[str, Any]],
                    stack: Mapping[str, Any], limits: Mapping[str, ReferenceLimits] | None = None) -> ReferenceVerdict:
    """Every measured model against its record, when there is one that fits."""
    if reference is None:
        return ReferenceVerdict("no-record", (), {"all": no_record_why}, (), None, 0)
    layers: list[LayerMove] = []
    why: dict[str, str] = {}
    for model, stats in measured.items():
        record = reference.models.get(model)
        reason = "the record has no such model" if record is None else mismatch(record, hashes[model], inputs[model])
        if reason is None and record is not None:
            moves, reason = judge_model(model, stats, record, (limits or {}).get(model))
            layers += moves
        if reason is not None:
            why[model] = reason
    diffs = tuple(d.brief() for d in stack_differences(reference.stack, stack)
                  if not d.key.startswith("models."))  # model files are judged above, by kind
    return ReferenceVerdict("judged" if layers else "mismatch", tuple(layers), why, diffs, reference.approved_at,
                            len(reference.images))
