"""BN statistics measured: every batch_norm op's input, per channel, over captured input batches, in a child
process that runs the program in eval mode (harness.backends.paddle.child); judged by harness.checks.bn.channels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.backends.paddle.child import Arrays, child_task, locate_model, run_in_child
from harness.checks.bn.channels import DEFAULT_THRESHOLD, ChannelLimits, DriftReport, LayerStats, judge_layers
from harness.util.errors import UserError

# A measuring child's time limit: a start plus a share per input batch. Measured on a busy 2-core EPYC (another job's
# test suite beside it), 16 slips of PP-OCRv5_mobile: det 0.70 s per batch, rec 2.01 s (117 batches, 235 s), which
# hit the fixed 600 s of before on a slower machine. 6 s per batch is about 3x that.
MEASURE_START_S = 60.0
MEASURE_PER_BATCH_S = 6.0


def measure_layers(model_dir: Path, inputs: list[Path] | list[np.ndarray]) -> list[LayerStats]:
    """Per-channel statistics of every BN layer's input over `inputs` (NCHW float32 batches as `.npy` files or
    arrays), measured in a child process."""
    res, out = _measure(model_dir, inputs, per_input=False)
    return [_layer_stats(bn, out, k, slice(None)) for k, bn in enumerate(res["bn"])]


def measure_groups(model_dir: Path, inputs: list[Path], groups: list[list[int]], *,
                   timeout_s: float | None = None) -> list[list[LayerStats]]:
    """The same, one list of layers per group of input indices (e.g. the batches of one image), in one pass."""
    res, out = _measure(model_dir, inputs, per_input=True, timeout_s=timeout_s)
    return [[_layer_stats(bn, out, k, group) for k, bn in enumerate(res["bn"])] for group in groups]


def measure_limit_s(batches: int) -> float:
    """The child's time limit for measuring `batches` input batches: a start (imports, program load) plus a share
    per batch, about 3x what a busy 2-core machine took (docs/batchnorm.md); $OCR_HARNESS_TIMEOUT_SCALE scales it."""
    return MEASURE_START_S + MEASURE_PER_BATCH_S * batches


def _measure(model_dir: Path, inputs: list[Path] | list[np.ndarray], *, per_input: bool,
             timeout_s: float | None = None) -> tuple[dict[str, Any], Arrays]:
    if not inputs:
        raise UserError("bn statistics need at least one input batch")
    timeout_s = measure_limit_s(len(inputs)) if timeout_s is None else timeout_s
    files = locate_model(Path(model_dir))
    if isinstance(inputs[0], np.ndarray):
        arrays: Arrays = {f"in{i}": np.asarray(b) for i, b in enumerate(inputs)}
        payload: dict[str, Any] = {"inputs": len(inputs), "files": []}
    else:
        arrays, payload = {}, {"inputs": 0, "files": [str(p) for p in inputs]}
    return run_in_child("drift.measure", {"prefix": str(files.prefix), "pir": files.pir, **payload,
                                          "per_input": per_input}, arrays=arrays, pir=files.pir, timeout=timeout_s)


def _layer_stats(bn: dict[str, Any], out: Arrays, k: int, rows: slice | list[int]) -> LayerStats:
    per_input = isinstance(rows, list)
    count = float(out[f"bn{k}.in_count"][rows].sum() if per_input else out[f"bn{k}.count"][0])
    dsum = out[f"bn{k}.in_dsum"][rows].sum(axis=0) if per_input else out[f"bn{k}.dsum"]
    dsumsq = out[f"bn{k}.in_dsumsq"][rows].sum(axis=0) if per_input else out[f"bn{k}.dsumsq"]
    stored_mean = out[f"bn{k}.mean"]
    d_mean = dsum / count  # deviations from the stored mean: no cancellation in the variance
    return LayerStats(name=bn["name"], op_index=int(bn["index"]), epsilon=float(bn["epsilon"]),
                      stored_mean=stored_mean, stored_var=out[f"bn{k}.variance"], corpus_mean=stored_mean + d_mean,
                      corpus_var=np.maximum(dsumsq / count - d_mean * d_mean, 0.0), samples=int(count))


def measure_drift(model_dir: Path, inputs: list[Path] | list[np.ndarray], *, kind: str = "custom",
                  images: int | None = None, threshold: float = DEFAULT_THRESHOLD,
                  limits: ChannelLimits | None = None) -> DriftReport:
    """Measures and judges one model on captured input batches."""
    if not threshold > 0:
        raise UserError(f"threshold must be > 0, got {threshold}")
    stats = measure_layers(model_dir, inputs)
    if images is None:
        images = sum(int(b.shape[0]) for b in inputs) if isinstance(inputs[0], np.ndarray) else len(inputs)
    return judge_layers(str(model_dir), kind, stats, images=images, batches=len(inputs), threshold=threshold,
                        limits=limits)


# ---------------------------------------------------------------- child side


@child_task("drift.measure")
def measure_in_child(payload: dict[str, Any], arrays: Arrays) -> tuple[dict[str, Any], Arrays]:
    from harness.backends.paddle.program_view import BN_TYPES, load_program

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
        acc = [np.zeros((3, out[f"bn{k}.mean"].size), np.float64) for k in range(len(bns))]
        sources = [arrays[f"in{i}"] for i in range(payload["inputs"])] + list(payload["files"])
        per_input = [np.zeros((len(sources), 3, out[f"bn{k}.mean"].size)) for k in range(len(bns))]
        for i, src in enumerate(sources):
            batch = np.load(src, allow_pickle=False) if isinstance(src, str) else src
            with paddle.static.scope_guard(view.scope):
                acts = exe.run(view.program, feed={feeds[0]: np.ascontiguousarray(batch, np.float32)},
                               fetch_list=fetch)
            for k, act in enumerate(acts):
                a = np.asarray(act, np.float64)
                a = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1) - out[f"bn{k}.mean"][:, None]  # C x (N*H*W)
                per_input[k][i, 0] = a.shape[1]
                per_input[k][i, 1] = a.sum(axis=1)
                per_input[k][i, 2] = np.square(a).sum(axis=1)
                acc[k] += per_input[k][i]
        for k, a in enumerate(acc):
            out[f"bn{k}.count"], out[f"bn{k}.dsum"], out[f"bn{k}.dsumsq"] = a[0][:1].copy(), a[1], a[2]
            if payload.get("per_input"):  # calibration: statistics per image, from the same pass
                p = per_input[k]
                out[f"bn{k}.in_count"], out[f"bn{k}.in_dsum"], out[f"bn{k}.in_dsumsq"] = p[:, 0, 0], p[:, 1], p[:, 2]
    return {"bn": facts}, out
