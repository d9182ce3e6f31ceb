"""Planted faults: copies of a model pack with one known defect, to prove the eval-mode checks catch it.

A check that has never failed proves nothing. These writers produce the defects of why-bn.md on a copy of a
real pack: a collapsed / zero / NaN moving variance, statistics never updated from their initial values, and a BN
or dropout op saved out of test mode. The source
pack is never modified.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends.paddle.child import Arrays, ModelFiles, child_task, locate_model, run_in_child
from harness.util.errors import UserError

_PIR_OP_NAMES = {"batch_norm": ("1.batch_norm_", "1.batch_norm"), "dropout": ("1.dropout",)}


def copy_pack(src: Path, dst: Path) -> ModelFiles:
    """Copies every file of a model dir (program, params, yml, dictionaries) into `dst`."""
    files = locate_model(src)
    if Path(dst).resolve() == Path(src).resolve():
        raise UserError(f"{dst}: a planted fault needs a destination other than the source pack")
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return ModelFiles(Path(dst) / files.prefix.name, files.format)


def plant_bn_variance(src: Path, dst: Path, *, value: float | None = None, factor: float | None = None,
                      layer: str | None = None, channel: int = 0) -> str:
    """Copy of `src` in `dst` with `variance[channel]` of one BN (default: the first) set to `value`, or
    multiplied by `factor` (the polluted moving variance: /1000 or x1000). Old-format and PIR packs.

    Returns the name of the edited parameter."""
    if (value is None) == (factor is None):
        raise UserError("plant_bn_variance needs exactly one of value and factor")
    return _set_stats(src, dst, layer, {"kind": "channel", "channel": channel, "value": value, "factor": factor})


def plant_bn_init(src: Path, dst: Path, *, layer: str | None = None) -> str:
    """Copy of `src` in `dst` whose BN `layer` (default: the first) holds the statistics a BatchNorm starts
    with, mean 0 and variance 1 in every channel: what an export shows when only the learnable parameters
    (gamma, beta, conv weights) were loaded into a fresh model. Old-format and PIR packs.

    Returns the name of the edited layer."""
    return _set_stats(src, dst, layer, {"kind": "init"})


def _set_stats(src: Path, dst: Path, layer: str | None, edit: dict[str, Any]) -> str:
    target = copy_pack(src, dst)
    result, _ = run_in_child("bn_faults.set_stats", {"prefix": str(target.prefix), "pir": target.pir,
                                                  "layer": layer, "edit": edit}, pir=target.pir)
    return str(result["param"] if edit["kind"] == "channel" else result["layer"])


def plant_op_mode(src: Path, dst: Path, *, op_type: str = "batch_norm", nth: int = 0,
                  is_test: bool = False) -> str:
    """Copy of `src` in `dst` whose `nth` op of `op_type` (batch_norm or dropout) has `is_test` rewritten.

    Returns a label of the edited op: `batch_norm[1]` is the second batch_norm op."""
    if op_type not in _PIR_OP_NAMES:
        raise UserError(f"op_type must be one of {sorted(_PIR_OP_NAMES)}, got {op_type!r}")
    target = copy_pack(src, dst)
    if target.pir:
        return _set_pir_json_attr(target.program_path, op_type, nth, "is_test", is_test)
    result, _ = run_in_child("bn_faults.set_op_attr", {"prefix": str(target.prefix), "op_type": op_type,
                                                    "nth": nth, "attr": "is_test", "value": is_test}, pir=False)
    return str(result["op"])


def plant_op_type(src: Path, dst: Path, *, new_type: str, op_type: str = "batch_norm") -> str:
    """Copy of the PIR pack `src` in `dst` whose first `op_type` op is renamed to `new_type` (a fused or
    unknown spelling, e.g. fused_batch_norm_act). Returns the new dialect name."""
    target = copy_pack(src, dst)
    if not target.pir:
        raise UserError(f"{src}: renaming ops is implemented for PIR (inference.json) packs only")
    doc = json.loads(target.program_path.read_text("utf-8"))
    op = next((op for op in _pir_ops(doc) if op.get("#") in _PIR_OP_NAMES[op_type]), None)
    if op is None:
        raise UserError(f"{target.program_path}: no {op_type} op")
    name = f"1.{new_type}"
    op["#"] = name
    target.program_path.write_text(json.dumps(doc, separators=(",", ":")), "utf-8")
    return name


def write_reference_model(dst: Path, *, pir: bool = True, seed: int = 0) -> ModelFiles:
    """A tiny known-good Conv2D + BatchNorm2D + Dropout model (input N x 3 x 16 x 16), saved in eval mode by
    `paddle.jit.save`: PIR `inference.json` by default, old `inference.pdmodel` with `pir=False`."""
    Path(dst).mkdir(parents=True, exist_ok=True)
    run_in_child("bn_faults.reference", {"prefix": str(Path(dst) / "inference"), "seed": seed}, pir=pir)
    return locate_model(Path(dst))


def _set_pir_json_attr(path: Path, op_type: str, nth: int, attr: str, value: bool) -> str:
    """PIR programs are JSON: op `#` is its dialect name, `A` its attributes as {N: name, AT: {#, D}}."""
    doc = json.loads(path.read_text("utf-8"))
    seen = 0
    for op in _pir_ops(doc):
        if op.get("#") not in _PIR_OP_NAMES[op_type]:
            continue
        if seen == nth:
            for a in op.get("A", []):
                if a.get("N") == attr:
                    a["AT"]["D"] = bool(value)
                    path.write_text(json.dumps(doc, separators=(",", ":")), "utf-8")
                    return f"{op_type}[{nth}]"
            raise UserError(f"{path}: {op_type} op #{nth} has no attribute {attr!r}")
        seen += 1
    raise UserError(f"{path}: fewer than {nth + 1} {op_type} ops")


def _pir_ops(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "ops" in node and isinstance(node["ops"], list):
            for op in node["ops"]:
                found.append(op)
                found += _pir_ops(op.get("regions", []))
        else:
            for key, child in node.items():
                if key != "ops":
                    found += _pir_ops(child)
    elif isinstance(node, list):
        for child in node:
            found += _pir_ops(child)
    return found


# ---------------------------------------------------------------- child side (old format, PIR off)

@child_task("bn_faults.set_stats")
def set_stats_in_child(payload: dict[str, Any], _arrays: Arrays) -> tuple[dict[str, Any], Arrays]:
    import paddle

    from harness.backends.paddle.program_view import BN_TYPES, load_program

    prefix, pir, edit = payload["prefix"], bool(payload["pir"]), payload["edit"]
    view, exe, feeds, fetches = load_program(prefix, pir=pir)
    bns = [op for op in view.ops() if view.op_type(op) in BN_TYPES]
    layer = payload["layer"]
    pairs = [(view.param_name(view.input(op, "mean")), view.param_name(view.input(op, "variance"))) for op in bns]
    found = next(((m, v) for m, v in pairs if m and v and (layer is None or v.rsplit(".", 1)[0] == layer)), None)
    if found is None:
        raise ValueError(f"no batch_norm layer {layer!r} in {prefix}; have {[v for _, v in pairs]}")
    mean_t, var_t = (view.scope.find_var(name).get_tensor() for name in found)
    if edit["kind"] == "init":
        mean_t.set(np.zeros_like(np.array(mean_t)), paddle.CPUPlace())
        var_t.set(np.ones_like(np.array(var_t)), paddle.CPUPlace())
    else:
        values = np.array(var_t)
        flat = values.ravel()
        c = int(edit["channel"])
        flat[c] = float(edit["value"]) if edit.get("factor") is None else flat[c] * float(edit["factor"])
        var_t.set(values, paddle.CPUPlace())
    with paddle.static.scope_guard(view.scope):
        if pir:  # PIR: the program is re-saved with the edited scope (same program, same size)
            data_ops = [op.result(0) for op in view.program.global_block().ops if op.name() == "pd_op.data"]
            paddle.static.save_inference_model(prefix, data_ops, fetches, exe, program=view.program)
        else:
            block = view.program.global_block()
            data = paddle.static.serialize_persistables([block.var(f) for f in feeds], fetches, exe,
                                                        program=view.program)
            Path(prefix + ".pdiparams").write_bytes(data)
    return {"param": found[1], "layer": found[1].rsplit(".", 1)[0]}, {}


@child_task("bn_faults.set_op_attr")
def set_op_attr_in_child(payload: dict[str, Any], _arrays: Arrays) -> tuple[dict[str, Any], Arrays]:
    from harness.backends.paddle.program_view import load_program

    prefix = payload["prefix"]
    view, _, _, _ = load_program(prefix, pir=False)
    ops = [(i, op) for i, op in enumerate(view.ops()) if view.op_type(op) == payload["op_type"]]
    if len(ops) <= payload["nth"]:
        raise ValueError(f"fewer than {payload['nth'] + 1} {payload['op_type']} ops in {prefix}")
    index, op = ops[payload["nth"]]
    op._set_attr(payload["attr"], payload["value"])
    # Written raw: save_inference_model would normalise the program and put is_test back to True.
    Path(prefix + ".pdmodel").write_bytes(view.program.desc.serialize_to_string())
    return {"op": f"{payload['op_type']}[{payload['nth']}] (op #{index})"}, {}


@child_task("bn_faults.reference")
def reference_model_in_child(payload: dict[str, Any], _arrays: Arrays) -> tuple[dict[str, Any], Arrays]:
    import paddle

    # Defined in a file: dynamic-to-static reads the forward's source.
    class Reference(paddle.nn.Layer):  # type: ignore[misc]  # paddle has no type stubs: its Layer is Any
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = paddle.nn.Conv2D(3, 8, 3, padding=1), paddle.nn.BatchNorm2D(8)
            self.drop, self.head = paddle.nn.Dropout(0.5), paddle.nn.Conv2D(8, 2, 1)

        def forward(self, x: Any) -> Any:
            return self.head(self.drop(paddle.nn.functional.relu(self.bn(self.conv(x)))))

    paddle.seed(payload["seed"])
    net = Reference()
    net.train()
    rng = np.random.default_rng(payload["seed"])
    for _ in range(3):  # non-trivial moving statistics (momentum 0.9 from mean 0 / variance 1)
        net(paddle.to_tensor(rng.normal(0.5, 2.0, (4, 3, 16, 16)).astype(np.float32)))
    net.eval()
    spec = [paddle.static.InputSpec([None, 3, 16, 16], "float32", "x")]
    paddle.jit.save(net, payload["prefix"], input_spec=spec)
    return {}, {}
