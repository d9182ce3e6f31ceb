"""The audit's child side: reads a program's BN, dropout and conv facts (paddle is imported here only, in the
child process harness.backends.paddle.audit starts); judging happens in harness.backends.paddle.audit, on plain data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends.paddle.child import Arrays, ModelFiles, child_task
from harness.backends.paddle.program_view import BN_TYPES, DROPOUT_TYPES, LOOKS_LIKE_NORM, PER_SAMPLE_NORM_TYPES


@child_task("audit.inspect")
def inspect_in_child(payload: dict[str, Any], _arrays: Arrays) -> tuple[dict[str, Any], Arrays]:
    from harness.backends.paddle.program_view import CONV_TYPES, load_program, short_error

    files = ModelFiles(Path(payload["prefix"]), payload["format"])
    try:
        view, _, _, _ = load_program(str(files.prefix), files.pir)
    except Exception as exc:  # a broken pack is a finding, not a crash
        return {"load_error": short_error(exc)}, {}
    facts: dict[str, Any] = {"bn": [], "dropout": [], "unknown": []}
    arrays: Arrays = {}
    counts: Counter[str] = Counter()
    convs_feeding_bn = 0
    conv_kinds: Counter[str] = Counter()
    for index, op in enumerate(view.ops()):
        kind = view.op_type(op)
        counts[kind] += 1
        if kind in BN_TYPES:
            x = view.input(op, "x")
            source = view.source_type(x) if x is not None else "?"
            convs_feeding_bn += source in CONV_TYPES
            mean_param = view.param_name(view.input(op, "mean"))
            var_param = view.param_name(view.input(op, "variance"))
            k = len(facts["bn"])
            for key, param in (("mean", mean_param), ("variance", var_param)):
                value = view.param_array(param) if param else None
                if value is not None:
                    arrays[f"bn{k}.{key}"] = value.astype(np.float64)
            name = mean_param.rsplit(".", 1)[0] if mean_param else f"{kind}#{index}"
            momentum = view.attr(op, "momentum")
            facts["bn"].append({
                "index": index, "type": kind, "name": name, "source": source,
                "momentum": None if momentum is None else _f32(momentum),
                "is_test": bool(view.attr(op, "is_test")),
                "use_global_stats": bool(view.attr(op, "use_global_stats")),
                "trainable_statistics": bool(view.attr(op, "trainable_statistics")),
                "epsilon": _f32(view.attr(op, "epsilon") or 0.0), "mean_param": mean_param,
                "variance_param": var_param})
        elif kind in CONV_TYPES:
            conv_kinds[_conv_kind(view, op)] += 1
        elif kind in DROPOUT_TYPES:
            facts["dropout"].append({"index": index, "name": view.output_label(op, index),
                                     "is_test": bool(view.attr(op, "is_test"))})
        elif kind not in PER_SAMPLE_NORM_TYPES and LOOKS_LIKE_NORM.search(kind):
            facts["unknown"].append({"index": index, "type": kind, "name": view.output_label(op, index)})
    facts["op_counts"] = dict(counts)
    facts["conv_count"] = sum(n for k, n in counts.items() if k in CONV_TYPES)
    facts["convs_feeding_bn"] = convs_feeding_bn
    facts["conv_kinds"] = dict(conv_kinds)
    return facts, arrays


def _f32(value: Any) -> float:
    """Float32 attributes read back as 0.8999999761581421: the value as written, 0.9."""
    return float(f"{float(value):.7g}")


def _conv_kind(view: Any, op: Any) -> str:
    """`bn` (a norm reads it, through a bias add), `bias` (a stored bias, no norm: a folded BN leaves exactly
    this), or `plain` (neither: a conv trained without BN, or a BN folded without a bias)."""
    out = view.first_output(op)
    if out is None:
        return "plain"
    add = view.bias_add(out)
    readers = view.consumers(out) + (view.consumers(view.first_output(add)) if add is not None else [])
    if any(view.op_type(r) in BN_TYPES or view.op_type(r) in PER_SAMPLE_NORM_TYPES for r in readers):
        return "bn"
    return "bias" if add is not None else "plain"
