"""The approval record of a golden set: what a full approval measured besides the goldens themselves.

`<golden root>/<set>/_approval.json`, one file per golden set, one section per kind of measurement, each keyed
by the profile it was measured for:
- `speed`: per-image latency and the fixed CPU yardstick timed next to it (harness.execution.normaliser), and the
  workers' peak memory, with the stack and selection they were measured on (harness.checks.speed judges runs
  against it); per profile a list, one baseline per runner type (CPU model and ISA flags: oneDNN and the yardstick
  gain differently from a new ISA, so a baseline holds only for the runner type that made it); an older record's
  single baseline reads as a list of one;
- `bn`: the per-channel statistics of every BatchNorm layer's input, det and rec, on the images the approval
  captured, keyed by the model hashes and input settings they were measured with and stamped with the stack
  (harness.checks.bn.reference makes it and judges later runs against it); one per golden set, not per
  profile: the profiles that share a golden set run the same models;
- sections this version does not know (a newer harness's) are kept as they are when a section is rewritten.

Written atomically, only by a full approval (`golden refresh --all --yes`, the pytest plugin's `--ocr-regen all`
over the whole selection: harness.run.goldens.approve) or `ocr-harness speed baseline` (speed only); records without a
`bn` section (older ones) still load;
read strictly: a hand-edited record that is not this schema is a `UserError` naming the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.model.results import canonical_json
from harness.util import atomic
from harness.util.errors import UserError
from harness.util.files import RECORD_MAX, read_input
from harness.util.values import no_constant, shown_key, value_problem

APPROVAL_NAME = "_approval.json"
SCHEMA = "ocr-harness/approval/1"


@dataclass(frozen=True)
class ImageSpeed:
    cost_s: float  # what the engine cost per image (median over repeats), in the baseline's `clock`
    reference_s: float  # the yardstick, timed the same way in the same process around the same call
    latency_s: float  # wall seconds per image (median over repeats): shown, not judged

    @property
    def ratio(self) -> float:
        return self.cost_s / self.reference_s

    def to_dict(self) -> dict[str, float]:
        return {"cost_s": self.cost_s, "reference_s": self.reference_s, "latency_s": self.latency_s}


def runner_type(stack: Mapping[str, Any]) -> str:
    """The CPU a speed baseline holds for: its model name and ISA flags ('AMD EPYC [avx2 fma ...]')."""
    isa = stack.get("isa")
    flags = " ".join(str(f) for f in isa) if isinstance(isa, (list, tuple)) else "?"
    held = f" (oneDNN held to {stack['onednn_max_isa']})" if stack.get("onednn_max_isa") else ""
    return f"{stack.get('cpu_model', '?')} [{flags}]{held}"


@dataclass(frozen=True)
class SpeedBaseline:
    """One profile's approved speed and memory on one runner type."""

    approved_at: str
    stack: Mapping[str, Any]  # the engine stack of the run, plus workers and the yardstick's name
    selection: int  # images in the run that measured it
    clock: str  # "cpu" (worker processes) or "wall" (in the harness process: the http backend)
    images: Mapping[str, ImageSpeed]
    peak_rss_kib: int | None  # the largest worker peak (VmHWM)
    served_at_peak: int  # the most images one worker had served when that peak was read

    @property
    def runner(self) -> str:
        return runner_type(self.stack)

    def to_dict(self) -> dict[str, Any]:
        return {"approved_at": self.approved_at, "stack": dict(self.stack), "selection": self.selection,
                "clock": self.clock, "images": {k: v.to_dict() for k, v in sorted(self.images.items())},
                "peak_rss_kib": self.peak_rss_kib, "served_at_peak": self.served_at_peak}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> SpeedBaseline:
        try:
            images = {str(k): ImageSpeed(_positive(v["cost_s"]), _positive(v["reference_s"]),
                                         _positive(v["latency_s"])) for k, v in d["images"].items()}
            peak = d.get("peak_rss_kib")
            clock = str(d["clock"])
            if clock not in ("cpu", "wall"):
                raise ValueError(f"clock {clock!r} is not cpu or wall")
            return cls(str(d["approved_at"]), dict(d["stack"]), _count(d["selection"], "selection"), clock, images,
                       None if peak is None else _count(peak, "peak_rss_kib", least=1),
                       _count(d.get("served_at_peak", 0), "served_at_peak"))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise UserError(f"{where}: not a speed baseline ({type(e).__name__}: {e})") from None


def _count(x: Any, key: str, least: int = 0) -> int:
    # A negative peak turned the memory gate off (a ratio below zero always passed): counts are whole and >= least.
    if isinstance(x, bool) or not isinstance(x, int) or x < least:
        raise ValueError(f"{key} {x!r} is not a whole number >= {least}")
    return x


def _positive(x: Any) -> float:
    v = float(x)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{x!r} is not a positive finite number")
    return v


def _floats(values: Any, channels: int | None = None) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    if not all(math.isfinite(v) for v in out):
        raise ValueError("a per-channel value is not finite")
    if channels is not None and len(out) != channels:
        raise ValueError(f"{len(out)} values for {channels} channels")
    return out


@dataclass(frozen=True)
class BnLayerRecord:
    """One BN layer's input on the approval's images, per channel (float64 values, population variance)."""

    name: str  # the layer's parameter prefix, as harness.checks.bn.channels names layers
    op_index: int
    epsilon: float
    mean: tuple[float, ...]
    var: tuple[float, ...]
    samples: int  # activations per channel that were pooled

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op_index": self.op_index, "epsilon": self.epsilon, "mean": list(self.mean),
                "var": list(self.var), "samples": self.samples}

    @classmethod
    def from_dict(cls, d: Any) -> BnLayerRecord:
        mean = _floats(d["mean"])
        var = _floats(d["var"], len(mean))
        if any(v < 0 for v in var):
            raise ValueError(f"layer {d['name']}: a negative variance")
        return cls(str(d["name"]), int(d["op_index"]), float(d["epsilon"]), mean, var, int(d["samples"]))


CHANNEL_KEYS = ("log_ratio_up", "log_ratio_down", "spread", "shift")  # against the training statistics
REFERENCE_KEYS = ("channel_log_ratio", "channel_shift", "layer_log_ratio", "layer_shift")  # against the record


def _limits(d: Any, keys: tuple[str, ...]) -> dict[str, float]:
    if not isinstance(d, dict) or set(d) != set(keys):
        raise ValueError(f"limits must have exactly {', '.join(keys)}")
    return {k: _non_negative(d[k]) for k in keys}


def _non_negative(x: Any) -> float:
    v = float(x)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{x!r} is not a finite number >= 0")
    return v


@dataclass(frozen=True)
class BnCalibration:
    """bn_drift's limits for one model, measured on the slips of the approval that recorded it
    (harness.checks.bn.calibration): the clean envelope, the margin put on it and the limits that result."""

    method: str  # the sentence that says how the envelope was measured
    samples: int  # leave-out samples measured
    sample_sizes: tuple[int, ...]  # slips per sample
    envelope: Mapping[str, float]  # CHANNEL_KEYS: extremes over the samples, every layer
    reference_envelope: Mapping[str, float]  # REFERENCE_KEYS: a sample against the record of the other slips
    layer_envelope: Mapping[str, float]  # per layer name: the highest layer drift score of a sample
    margin: Mapping[str, float]  # what is added to (or multiplies) each envelope value
    limits: Mapping[str, float]  # CHANNEL_KEYS
    reference_limits: Mapping[str, float]  # REFERENCE_KEYS
    layer_limits: Mapping[str, float]  # per layer name: its layer drift threshold
    excluded: tuple[str, ...] = ()  # channels not absorbed into the envelope (too far from their layer)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "samples": self.samples, "sample_sizes": list(self.sample_sizes),
                "envelope": dict(self.envelope), "reference_envelope": dict(self.reference_envelope),
                "layer_envelope": dict(sorted(self.layer_envelope.items())), "margin": dict(self.margin),
                "limits": dict(self.limits), "reference_limits": dict(self.reference_limits),
                "layer_limits": dict(sorted(self.layer_limits.items())), "excluded": list(self.excluded)}

    @classmethod
    def from_dict(cls, d: Any) -> BnCalibration:
        layer_env = {str(k): _non_negative(v) for k, v in d["layer_envelope"].items()}
        layer_lim = {str(k): _positive(v) for k, v in d["layer_limits"].items()}
        if set(layer_env) != set(layer_lim):
            raise ValueError("calibration: layer_envelope and layer_limits name different layers")
        margin = d["margin"]
        if not isinstance(margin, dict):
            raise ValueError("calibration: margin must be an object")
        return cls(str(d["method"]), _count(d["samples"], "samples", 1),
                   tuple(_count(n, "sample_sizes", 1) for n in d["sample_sizes"]), _limits(d["envelope"], CHANNEL_KEYS),
                   _limits(d["reference_envelope"], REFERENCE_KEYS), layer_env,
                   {str(k): _non_negative(v) for k, v in margin.items()}, _limits(d["limits"], CHANNEL_KEYS),
                   _limits(d["reference_limits"], REFERENCE_KEYS), layer_lim,
                   tuple(str(x) for x in d.get("excluded", ())))


@dataclass(frozen=True)
class BnModelRecord:
    """One model's BN layers, with what makes them comparable: the model files and the input settings."""

    model_hashes: Mapping[str, str]  # sha256 of the model's inference files (ModelDirs.file_hashes, this kind's)
    inputs: Mapping[str, Any]  # det: limit type and side; rec: image shape and batch size (padding depends on it)
    batches: int  # input batches the worker fed the model
    layers: tuple[BnLayerRecord, ...]
    calibration: BnCalibration | None = None  # None: an older record, or too few slips to calibrate

    def to_dict(self) -> dict[str, Any]:
        d = {"model_hashes": dict(sorted(self.model_hashes.items())), "inputs": dict(self.inputs),
             "batches": self.batches, "layers": [layer.to_dict() for layer in self.layers]}
        if self.calibration is not None:
            d["calibration"] = self.calibration.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Any) -> BnModelRecord:
        calibration = d.get("calibration")
        return cls({str(k): str(v) for k, v in d["model_hashes"].items()}, dict(d["inputs"]), int(d["batches"]),
                   tuple(BnLayerRecord.from_dict(layer) for layer in d["layers"]),
                   None if calibration is None else BnCalibration.from_dict(calibration))


@dataclass(frozen=True)
class BnReference:
    """The approved BN input statistics of a golden set: what later runs' drift is judged against."""

    approved_at: str
    stack: Mapping[str, Any]  # the engine stack of the capture (CPU, runtime, oneDNN...): named when it differs
    images: tuple[str, ...]  # ids of the images pooled, in capture order
    models: Mapping[str, BnModelRecord]  # by kind: det, rec

    def to_dict(self) -> dict[str, Any]:
        return {"approved_at": self.approved_at, "stack": dict(self.stack), "images": list(self.images),
                "models": {k: v.to_dict() for k, v in sorted(self.models.items())}}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> BnReference:
        try:
            return cls(str(d["approved_at"]), dict(d["stack"]), tuple(str(i) for i in d["images"]),
                       {str(k): BnModelRecord.from_dict(v) for k, v in d["models"].items()})
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UserError(f"{where}: not a BN reference ({type(e).__name__}: {e})") from None


@dataclass(frozen=True)
class Approval:
    golden_set: str
    speed: Mapping[str, tuple[SpeedBaseline, ...]] = field(default_factory=dict)  # per profile, one per runner type
    other: Mapping[str, Any] = field(default_factory=dict)  # sections of a newer version, kept as they are
    bn: BnReference | None = None

    def speed_for(self, profile: str, stack: Mapping[str, Any]) -> SpeedBaseline | None:
        """The profile's baseline made on the runner type of `stack`, if any."""
        runner = runner_type(stack)
        return next((b for b in self.speed.get(profile, ()) if b.runner == runner), None)

    def with_speed(self, profile: str, baseline: SpeedBaseline) -> Approval:
        """`baseline` replaces the profile's baseline of the same runner type; the other runner types' stay."""
        kept = tuple(b for b in self.speed.get(profile, ()) if b.runner != baseline.runner)
        ordered = tuple(sorted((*kept, baseline), key=lambda b: b.runner))
        return Approval(self.golden_set, {**self.speed, profile: ordered}, self.other, self.bn)

    def with_bn(self, reference: BnReference) -> Approval:
        return Approval(self.golden_set, self.speed, self.other, reference)

    def to_dict(self) -> dict[str, Any]:
        out = {**self.other, "schema": SCHEMA, "golden_set": self.golden_set,
               "speed": {k: [b.to_dict() for b in v] for k, v in sorted(self.speed.items())}}
        if self.bn is not None:
            out["bn"] = self.bn.to_dict()
        return out


def approval_path(golden_dir: Path) -> Path:
    """`golden_dir`: the golden set's own directory (GoldenStore.directory)."""
    return golden_dir / APPROVAL_NAME


def load_approval(golden_dir: Path) -> Approval | None:
    """The set's approval record, or None when it has none."""
    path = approval_path(golden_dir)
    try:
        raw = json.loads(read_input(path, RECORD_MAX).decode("utf-8"), parse_constant=no_constant)
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise UserError(f"{path}: not a valid approval record ({type(e).__name__}: {e})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    if (bad := value_problem(raw)) is not None:
        raise UserError(f"{path}: {bad[0]}: {bad[1]}")
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
        raise UserError(f"{path}: not an approval record of schema {SCHEMA}")
    speed = raw.get("speed") or {}
    if not isinstance(speed, dict):
        raise UserError(f"{path}: 'speed' must be an object")
    other = {k: v for k, v in raw.items() if k not in ("schema", "golden_set", "speed", "bn")}
    bn = raw.get("bn")
    return Approval(str(raw.get("golden_set", golden_dir.name)),
                    {str(k): _baselines(v, f"{path}: speed.{shown_key(str(k))}") for k, v in speed.items()}, other,
                    None if bn is None else BnReference.from_dict(bn, f"{path}: bn"))


def _baselines(value: Any, where: str) -> tuple[SpeedBaseline, ...]:
    """A profile's baselines: a list, one per runner type, or (an older record) one baseline."""
    items = value if isinstance(value, list) else [value]
    made = tuple(SpeedBaseline.from_dict(v, f"{where}[{n}]" if isinstance(value, list) else where)
                 for n, v in enumerate(items))
    runners = [b.runner for b in made]
    twice = sorted({r for r in runners if runners.count(r) > 1})
    if twice:
        raise UserError(f"{where}: two baselines for one runner type ({twice[0]})")
    return made


def write_approval(golden_dir: Path, approval: Approval) -> Path:
    return atomic.write_text(approval_path(golden_dir), canonical_json(approval.to_dict()))
