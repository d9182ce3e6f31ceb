"""BN drift: do the stored BatchNorm statistics still describe the images this deployment sees?

For each batch_norm op left in the program, the per-channel mean and variance of its *input* activations are
measured on real images and compared with the stored moving statistics:

- shift = mean over channels of |mu_obs - mu_stored| / sqrt(var_stored + eps)  (in stored standard deviations)
- scale = mean over channels of ln((var_obs + eps) / (var_stored + eps))        (signed: < 0 weaker activations
          than in training, > 0 stronger; 0 same spread; 2 = e^2, about 7x the stored variance)
- score = max(shift, |scale|)

The signed mean of the log ratio measures a gain change of the whole layer (darker, washed-out or rescaled
input); the mean of its absolute value was tried and rejected: flat document backgrounds already give some
channels a far smaller variance than the training images did, which drowned the planted shifts.

A layer whose score passes the threshold sees a different distribution than it was trained on (domain
shift); that is the case where re-estimating the running statistics on target-domain data helps. It is a
signal for a person, not a bug by itself: BN ops folded into convolutions cannot be measured at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.checks.audit import json_number
from harness.checks.paddle_child import Arrays, locate_model, run_in_child
from harness.errors import UserError

# Measured on PP-OCRv4 det: the project's clean bank slips score up to 2.3 (head layer batch_norm_0: documents
# give it about 1/9 of the stored variance, a real but harmless domain difference); pipeline faults score
# far higher: intensity x0.3 -> 3.3, ImageNet mean/std forgotten -> 3.9, raw 0-255 pixels -> 94.
DEFAULT_THRESHOLD = 2.5
DET_LONG_SIDE = 960
DET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # applied to BGR channels as PaddleOCR does
DET_STD = np.array([0.229, 0.224, 0.225], np.float32)
REC_SHAPE = (3, 48, 320)
REC_BATCH = 8


@dataclass(frozen=True)
class LayerDrift:
    name: str
    op_index: int
    channels: int
    samples: int  # activations per channel that were measured
    shift: float
    scale: float
    worst_channel: int  # channel with the largest |z| + |ln ratio|
    flagged: bool

    @property
    def score(self) -> float:
        return max(self.shift, abs(self.scale))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op_index": self.op_index, "channels": self.channels, "samples": self.samples,
                "shift": json_number(self.shift), "scale": json_number(self.scale),
                "score": json_number(self.score),
                "worst_channel": self.worst_channel, "flagged": self.flagged}


@dataclass(frozen=True)
class DriftReport:
    model_dir: str
    kind: str
    images: int
    threshold: float
    layers: tuple[LayerDrift, ...]

    @property
    def flagged(self) -> tuple[LayerDrift, ...]:
        return tuple(layer for layer in self.layers if layer.flagged)

    @property
    def passed(self) -> bool:
        return not self.flagged

    def __bool__(self) -> bool:
        return self.passed

    @property
    def max_score(self) -> float:
        return max((layer.score for layer in self.layers), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"model_dir": self.model_dir, "kind": self.kind, "images": self.images,
                "threshold": self.threshold, "passed": self.passed, "max_score": json_number(self.max_score),
                "layers": [layer.to_dict() for layer in self.layers]}

    def render(self) -> str:
        lines = [f"bn drift {self.model_dir} ({self.kind}, {self.images} images): stored BN statistics vs "
                 f"measured input statistics, threshold {self.threshold:g}"]
        head = ("op#", "layer", "ch", "shift", "scale", "score", "worst ch", "")
        rows = [(str(d.op_index), d.name, str(d.channels), f"{d.shift:.3f}", f"{d.scale:+.3f}", f"{d.score:.3f}",
                 str(d.worst_channel), "DRIFT" if d.flagged else "ok") for d in self.layers]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
        if not self.layers:
            lines.append("  no batch_norm ops left in the program (folded into conv): nothing to measure")
        verdict = "PASS" if self.passed else f"DRIFT in {len(self.flagged)} of {len(self.layers)} layers"
        lines.append(f"{verdict}: max score {self.max_score:.3f}")
        if not self.passed:
            lines.append("  stored statistics do not match these images: check the input pipeline (colour order, "
                         "scaling), or re-estimate BN statistics on target-domain images")
        return "\n".join(lines)


def bn_drift(model_dir: Path, images: list[np.ndarray], *, kind: Literal["det", "rec"] = "det",
             threshold: float = DEFAULT_THRESHOLD) -> DriftReport:
    """Measures every BN layer's input statistics on `images` (BGR uint8; for rec: text-line crops)."""
    if kind not in ("det", "rec"):
        raise UserError(f"kind must be 'det' or 'rec', got {kind!r}")
    if not images:
        raise UserError("bn drift needs at least one image")
    batches = [preprocess_det(img) for img in images] if kind == "det" else _rec_batches(images)
    return measure_drift(model_dir, batches, threshold=threshold, kind=kind, images=len(images))


def measure_drift(model_dir: Path, batches: list[np.ndarray], *, threshold: float = DEFAULT_THRESHOLD,
                  kind: str = "custom", images: int | None = None) -> DriftReport:
    """The same on already pre-processed NCHW float32 batches, for any model with one image input."""
    if not threshold > 0:
        raise UserError(f"threshold must be > 0, got {threshold}")
    if not batches or any(b.ndim != 4 or b.dtype != np.float32 for b in batches):
        raise UserError("bn drift needs at least one NCHW float32 batch")
    files = locate_model(Path(model_dir))
    arrays = {f"in{i}": b for i, b in enumerate(batches)}
    res, stats = run_in_child("drift.measure", {"prefix": str(files.prefix), "pir": files.pir,
                                                "inputs": len(batches)}, arrays=arrays, pir=files.pir)
    layers = tuple(score_layer(bn, stats, f"bn{k}", threshold) for k, bn in enumerate(res["bn"]))
    return DriftReport(model_dir=str(model_dir), kind=kind, threshold=float(threshold), layers=layers,
                       images=sum(b.shape[0] for b in batches) if images is None else images)


def score_layer(bn: dict[str, Any], stats: Arrays, key: str, threshold: float) -> LayerDrift:
    """Scores one layer from its stored and measured per-channel statistics (pure numpy)."""
    eps = float(bn["epsilon"])
    count = float(stats[f"{key}.count"][0])
    mu = stats[f"{key}.sum"] / count
    var = np.maximum(stats[f"{key}.sumsq"] / count - mu * mu, 0.0)
    m, v = stats[f"{key}.mean"], stats[f"{key}.variance"]
    with np.errstate(divide="ignore", invalid="ignore"):  # a broken stored variance must not crash the scorer
        z = np.abs(mu - m) / np.sqrt(np.maximum(v, 0.0) + eps)
        r = np.log((var + eps) / (np.maximum(v, 0.0) + eps))
    shift, scale = float(np.mean(z)), float(np.mean(r))
    score = max(shift, abs(scale))
    worst = int(np.argmax(np.nan_to_num(z + np.abs(r), nan=np.inf))) if m.size else -1
    return LayerDrift(name=bn["name"], op_index=int(bn["index"]), channels=int(m.size), samples=int(count),
                      shift=shift, scale=scale, worst_channel=worst,
                      flagged=not (math.isfinite(score) and score <= threshold))


def _check_image(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or min(img.shape[:2]) < 2:
        raise UserError(f"images must be BGR uint8 HxWx3, got {img.dtype} {img.shape}")
    return img


def preprocess_det(img: np.ndarray, long_side: int = DET_LONG_SIDE) -> np.ndarray:
    """Long side to `long_side`, both sides multiples of 32, ImageNet mean/std: 1x3xHxW float32."""
    import cv2

    img = _check_image(img)
    h, w = img.shape[:2]
    scale = long_side / max(h, w)
    nh, nw = (max(32, int(round(s * scale / 32)) * 32) for s in (h, w))
    x = cv2.resize(img, (nw, nh)).astype(np.float32) / 255.0
    x = (x - DET_MEAN) / DET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def preprocess_rec(img: np.ndarray) -> np.ndarray:
    """A text-line crop as PaddleOCR's recogniser sees it: height 48, aspect kept, right-padded: 3x48x320."""
    import cv2

    img = _check_image(img)
    c, h, w = REC_SHAPE
    width = min(w, max(1, int(math.ceil(h * img.shape[1] / img.shape[0]))))
    x = cv2.resize(img, (width, h)).astype(np.float32) / 255.0
    out = np.zeros((c, h, w), np.float32)
    out[:, :, :width] = ((x - 0.5) / 0.5).transpose(2, 0, 1)
    return out


def _rec_batches(images: list[np.ndarray]) -> list[np.ndarray]:
    crops = [preprocess_rec(img) for img in images]
    return [np.stack(crops[i:i + REC_BATCH]) for i in range(0, len(crops), REC_BATCH)]


# ---------------------------------------------------------------- child side

def measure_in_child(payload: dict[str, Any], arrays: Arrays) -> tuple[dict[str, Any], Arrays]:
    from harness.checks.program_view import BN_TYPES, load_program

    view, exe, feeds, _ = load_program(payload["prefix"], bool(payload["pir"]))
    bns = [(i, op) for i, op in enumerate(view.ops()) if view.op_type(op) in BN_TYPES]
    out: Arrays = {}
    facts = []
    for k, (index, op) in enumerate(bns):
        mean_param = view.param_name(view.input(op, "mean"))
        var_param = view.param_name(view.input(op, "variance"))
        mean = view.param_array(mean_param) if mean_param else None
        var = view.param_array(var_param) if var_param else None
        if mean is None or var is None:
            raise ValueError(f"batch_norm op #{index}: stored statistics missing (run the audit)")
        out[f"bn{k}.mean"], out[f"bn{k}.variance"] = mean.astype(np.float64), var.astype(np.float64)
        facts.append({"index": index, "name": mean_param.rsplit(".", 1)[0] if mean_param else f"bn#{index}",
                      "epsilon": float(view.attr(op, "epsilon") or 0.0)})
    if bns:
        import paddle

        fetch = [view.input(op, "x") for _, op in bns]
        view.drop_fetch_ops()
        channels = [out[f"bn{k}.mean"].size for k in range(len(bns))]
        acc = [np.zeros((3, c), np.float64) for c in channels]
        for i in range(payload["inputs"]):
            with paddle.static.scope_guard(view.scope):
                acts = exe.run(view.program, feed={feeds[0]: arrays[f"in{i}"]}, fetch_list=fetch)
            for k, act in enumerate(acts):
                a = np.asarray(act, np.float64)
                a = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)  # NCHW -> C x (N*H*W)
                acc[k][0] += a.shape[1]
                acc[k][1] += a.sum(axis=1)
                acc[k][2] += np.square(a).sum(axis=1)
        for k, a in enumerate(acc):
            out[f"bn{k}.count"], out[f"bn{k}.sum"], out[f"bn{k}.sumsq"] = a[0][:1].copy(), a[1], a[2]
    return {"bn": facts}, out

