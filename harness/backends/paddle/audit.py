"""Static eval-mode audit of a Paddle inference model: what the saved program and params say.

Every batch_norm must normalise with its stored statistics and every dropout must be in test mode; the stored
`_mean`/`_variance` must exist, be finite, and the variances must be positive and not collapsed (the tiny-batch
pollution of the moving variance). The program is read in a child process (see harness.backends.paddle.child); judging
happens here, on plain data.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends.paddle import audit_child  # noqa: F401  registers the child task "audit.inspect"
from harness.backends.paddle.audit_report import SUSPECT_RATIO, AuditReport, BnLayer, Finding, SuspectChannel, fmt
from harness.backends.paddle.child import Arrays, locate_model, run_in_child
from harness.util.errors import UserError

DEFAULT_MIN_VARIANCE = 1e-6


def audit_model_dir(model_dir: Path, *, min_variance: float | None = None) -> AuditReport:
    """Audits one inference model dir (old `.pdmodel` or PIR `.json` + `.pdiparams`) in a child process."""
    floor = DEFAULT_MIN_VARIANCE if min_variance is None else float(min_variance)
    if not (math.isfinite(floor) and floor >= 0):
        raise UserError(f"min_variance must be a finite number >= 0, got {min_variance}")
    files = locate_model(Path(model_dir))
    facts, arrays = run_in_child("audit.inspect", {"prefix": str(files.prefix), "format": files.format},
                                 pir=files.pir)
    return judge(str(model_dir), files.format, facts, arrays, min_variance=floor)


def judge(model_dir: str, program_format: str, facts: dict[str, Any], arrays: Arrays, *,
          min_variance: float) -> AuditReport:
    """Turns the facts read from a program into findings (pure: no paddle)."""
    findings: list[Finding] = []
    if "load_error" in facts:
        findings.append(Finding("load", "<model>", None, None, f"cannot load: {facts['load_error']}"))
    layers: list[BnLayer] = []
    suspects: list[SuspectChannel] = []
    for k, bn in enumerate(facts.get("bn", [])):
        mean, var = arrays.get(f"bn{k}.mean"), arrays.get(f"bn{k}.variance")
        layer = BnLayer(
            op_index=bn["index"], name=bn["name"], op_type=bn["type"], source=bn["source"],
            is_test=bool(bn["is_test"]), use_global_stats=bool(bn["use_global_stats"]),
            trainable_statistics=bool(bn["trainable_statistics"]), epsilon=float(bn["epsilon"]),
            momentum=None if bn.get("momentum") is None else float(bn["momentum"]),
            mean_param=bn["mean_param"], variance_param=bn["variance_param"],
            channels=int(var.size if var is not None else (mean.size if mean is not None else 0)),
            **_variance_range(var))
        layers.append(layer)
        findings += _bn_mode_findings(layer)
        findings += _stat_findings(layer, mean, var, min_variance)
        suspects += _suspect_channels(layer, var)
    for d in facts.get("dropout", []):
        if not d["is_test"]:
            findings.append(Finding("dropout-mode", d["name"], d["index"], None,
                                    "is_test=False: dropout is active, outputs are random"))
    for u in facts.get("unknown", []):
        findings.append(Finding("unknown-op", u["name"], u["index"], None,
                                f"op type {u['type']!r} looks like a normalisation or dropout that the audit does "
                                "not understand: its eval mode is not proven"))
    counts = facts.get("op_counts", {})
    return AuditReport(
        model_dir=model_dir, program_format=program_format, min_variance=min_variance,
        op_counts=tuple(sorted((str(k), int(v)) for k, v in counts.items())),
        conv_count=int(facts.get("conv_count", 0)), convs_feeding_bn=int(facts.get("convs_feeding_bn", 0)),
        convs_folded_likely=int(facts.get("conv_kinds", {}).get("bias", 0)),
        dropout_count=len(facts.get("dropout", [])), bn_layers=tuple(layers), findings=tuple(findings),
        suspects=tuple(suspects))


def _variance_range(var: np.ndarray | None) -> dict[str, float | None]:
    """Min and max for the table; a non-finite value anywhere makes the min NaN so it cannot look sane."""
    if var is None or var.size == 0:
        return {"variance_min": None, "variance_max": None}
    finite = var[np.isfinite(var)]
    return {"variance_min": float(finite.min()) if finite.size == var.size else math.nan,
            "variance_max": float(finite.max()) if finite.size else None}


def _bn_mode_findings(b: BnLayer) -> list[Finding]:
    out = []
    if not b.is_test:
        tail = ("; use_global_stats=True still selects the stored statistics in Paddle's own kernel, other "
                "runtimes may not honour it" if b.uses_stored_stats else "; it normalises with batch statistics")
        out.append(Finding("bn-mode", b.name, b.op_index, None, f"is_test=False: saved in training mode{tail}"))
    elif not b.uses_stored_stats:
        out.append(Finding("bn-mode", b.name, b.op_index, None,
                           "trainable_statistics=True: normalises with batch statistics"))
    return out


def _stat_findings(b: BnLayer, mean: np.ndarray | None, var: np.ndarray | None, floor: float) -> list[Finding]:
    out = []

    def add(param: str | None, message: str) -> None:
        out.append(Finding("bn-stats", b.name, b.op_index, param, message))

    for param, arr in ((b.mean_param, mean), (b.variance_param, var)):
        if param is None:
            add(None, "mean/variance input is not a stored parameter")
        elif arr is None:
            add(param, "missing from the params file")
        elif not np.isfinite(arr).all():
            add(param, f"non-finite values in {_channels(~np.isfinite(arr), arr)}")
    if mean is not None and var is not None and mean.shape != var.shape:
        add(b.variance_param, f"shape {list(var.shape)} differs from the mean's {list(mean.shape)}")
    elif mean is not None and var is not None and _initial(mean, var):
        # Trained statistics are never exactly 0 and 1 in every channel: the moving averages were never updated,
        # or a fresh model received only the learnable parameters before export. The layer then normalises
        # nothing (x / sqrt(1 + eps)): outputs move by the whole scale of its input.
        out.append(Finding("bn-init", b.name, b.op_index, f"{b.mean_param}, {b.variance_param}",
                           f"statistics at their initial values (mean 0 and variance 1 in all {var.size} "
                           "channels): were only the learnable parameters loaded?"))
    if var is not None:
        with np.errstate(invalid="ignore"):
            nonpos, tiny = var <= 0, (var > 0) & (var < floor)
        if nonpos.any():
            add(b.variance_param, f"variance <= 0 in {_channels(nonpos, var)}")
        if tiny.any():
            add(b.variance_param, f"variance below {floor:g} in {_channels(tiny, var)} "
                                  "(collapsed moving variance: noise is amplified at inference)")
    return out


def _suspect_channels(b: BnLayer, var: np.ndarray | None) -> list[SuspectChannel]:
    """Channels far from the median of the layer's positive, finite variances (the rest are findings already)."""
    if var is None:
        return []
    flat = var.ravel()
    with np.errstate(invalid="ignore"):
        sane = np.isfinite(flat) & (flat > 0)
    if sane.sum() < 2:
        return []
    median = float(np.median(flat[sane]))
    with np.errstate(invalid="ignore"):
        far = sane & ((flat < SUSPECT_RATIO * median) | (flat > median / SUSPECT_RATIO))
    return [SuspectChannel(b.name, b.op_index, b.variance_param, int(c), float(flat[c]), median)
            for c in np.flatnonzero(far)]


def _initial(mean: np.ndarray, var: np.ndarray) -> bool:
    return var.size > 0 and bool((mean == 0).all()) and bool((var == 1).all())


def _channels(mask: np.ndarray, values: np.ndarray, shown: int = 5) -> str:
    idx = np.flatnonzero(mask.ravel())
    flat = values.ravel()
    listed = ", ".join(f"[{i}]={fmt(float(flat[i]))}" for i in idx[:shown])
    more = f", ... (+{idx.size - shown})" if idx.size > shown else ""
    return f"{idx.size} of {flat.size} channels: {listed}{more}"
