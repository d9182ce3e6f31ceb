"""The Paddle side of `bn reestimate`: a child interpreter that measures, updates and verifies BN statistics.

Why a child: `paddle.enable_static()` and `FLAGS_enable_pir_api=0` are process-global and must not leak into the
harness's own process (which later runs PaddleOCR). The tasks run through the Paddle child runner
(harness.backends.paddle.child.run_in_child, in the API of the program's format: old `inference.pdmodel` or PIR
`inference.json`; the new params are written in the format that was read): `bn_reestimate.estimate` (measure and
write new params) and `bn_reestimate.verify` (reload what was written, compare every tensor, re-measure the target).

Everything runs in eval mode on the legacy static Executor (a train-mode pass fails there, see the docs): each
chosen layer's input is fetched over all calibration batches and pooled per channel in float64 (mean, population
variance), the layer's Mean/Variance are set in the scope, and the next chosen layer is measured with the earlier
ones already updated. The stored statistics of unchosen layers and every other tensor stay untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.backends.paddle.child import Arrays, child_task
from harness.backends.paddle.program_view import BN_TYPES, ProgramView, load_program
from harness.checks.bn.channels import LayerStats, score_layer

# Planted faults for the self-check tests (never set by the CLI): a non-BN tensor changed in the written params,
# and a recorded target statistic that the written model does not reproduce.
PLANTS = ("non-bn-tensor", "wrong-statistic")
ESTIMATE, VERIFY = "bn_reestimate.estimate", "bn_reestimate.verify"  # the child tasks below


# A layer's (mean, var) per channel, and what _pooled measures: (mean, var, values pooled per channel).
Statistics = tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, int]
Pooled = tuple[np.ndarray, np.ndarray, int]


def _bn_layers(view: ProgramView) -> list[dict[str, Any]]:
    layers = []
    for index, op in enumerate(view.ops()):
        if view.op_type(op) not in BN_TYPES:
            continue
        mean_param = view.param_name(view.input(op, "mean"))
        var_param = view.param_name(view.input(op, "variance"))
        if not mean_param or not var_param:
            raise ValueError(f"batch_norm op #{index}: stored statistics are not parameters")
        layers.append({"index": index, "name": mean_param.rsplit(".", 1)[0], "mean_param": mean_param,
                       "var_param": var_param, "x": view.input(op, "x"),
                       "epsilon": float(view.attr(op, "epsilon") or 0.0)})
    return layers


def _open(prefix: str, pir: bool) -> tuple[ProgramView, Any, list[str], list[Any]]:
    """A program to measure on: a PIR program's own fetch op goes, or fetching a layer's input mis-indexes."""
    view, exe, feeds, fetches = load_program(prefix, pir=pir)
    if pir:
        view.drop_fetch_ops()
    return view, exe, feeds, fetches


def _write_params(payload: dict[str, Any], view: ProgramView, exe: Any, feeds: list[str], fetches: list[Any]) -> None:
    """The params of `view`'s scope to `out_params`, in the format the program was read in; the program file itself
    is copied unchanged by the caller, so the params must load with it (the verify task proves they do)."""
    import shutil
    import tempfile

    import paddle

    if not payload.get("pir"):
        block = view.program.global_block()
        with paddle.static.scope_guard(view.scope):
            data = paddle.static.serialize_persistables([block.var(f) for f in feeds], fetches, exe,
                                                        program=view.program)
        Path(payload["out_params"]).write_bytes(data)
        return
    # PIR: a fresh copy of the program (its fetch op intact) takes every tensor of the edited scope and is saved
    # whole to a temporary dir; only its params file is kept.
    writer, wexe, _, wfetches = load_program(payload["prefix"], pir=True)
    for name in writer.param_names():
        values = view.param_array(name)
        if values is not None:
            _set(writer, name, values)
    data_ops = [op.result(0) for op in writer.program.global_block().ops if op.name() == "pd_op.data"]
    with tempfile.TemporaryDirectory(prefix="ocr-harness-pir-") as tmp:
        with paddle.static.scope_guard(writer.scope):
            paddle.static.save_inference_model(str(Path(tmp) / "inference"), data_ops, wfetches, wexe,
                                               program=writer.program)
        shutil.copyfile(Path(tmp) / "inference.pdiparams", payload["out_params"])


def _pooled(view: ProgramView, exe: Any, feed: str, files: list[str], xs: list[str]) -> list[Pooled]:
    """Per fetched value: (mean, population variance, count) per channel over every batch, in float64."""
    import paddle

    acc: list[list[Any]] = [[0.0, None, None, None] for _ in xs]  # count, pivot, sum(x - pivot), sum((x - pivot)^2)
    for path in files:
        batch = np.ascontiguousarray(np.load(path, allow_pickle=False), np.float32)
        with paddle.static.scope_guard(view.scope):
            acts = exe.run(view.program, feed={feed: batch}, fetch_list=xs)
        for a, act in zip(acc, acts):
            x = np.asarray(act, np.float64)
            x = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)  # C x (N*H*W)
            if a[1] is None:  # pivot: the first batch's mean keeps the sums small (no cancellation)
                a[1], a[2], a[3] = x.mean(axis=1), np.zeros(x.shape[0]), np.zeros(x.shape[0])
            d = x - a[1][:, None]
            a[0] += d.shape[1]
            a[2] += d.sum(axis=1)
            a[3] += np.square(d).sum(axis=1)
    out = []
    for count, pivot, dsum, dsumsq in acc:
        dm = dsum / count
        out.append((pivot + dm, np.maximum(dsumsq / count - dm * dm, 0.0), count))
    return out


def _stored(view: ProgramView, name: str) -> np.ndarray:
    """A tensor the program's BN layers (or the planted fault) name: the loaded params hold it, or the program and
    its params do not belong together."""
    values = view.param_array(name)
    if values is None:
        raise RuntimeError(f"the params hold no value for {name}, which the program uses")
    return values


def _set(view: ProgramView, name: str, values: np.ndarray) -> None:
    import paddle

    tensor = view.scope.find_var(name).get_tensor()
    dtype = np.array(tensor).dtype
    tensor.set(values.astype(dtype), paddle.CPUPlace())


def new_statistics(mode: str, mean: np.ndarray, var: np.ndarray, ref: Statistics | None,
                   tgt: Statistics) -> tuple[np.ndarray, np.ndarray]:
    """delta: keep the stored statistics, moved by the per-channel change from reference to target
    (a = sqrt(var_t/var_r), mean' = mean_t + a (mean - mean_r), var' = a^2 var); a channel the reference never
    excited (var_r = 0) keeps its stored statistics. replace: the target's pooled statistics (PreciseBN)."""
    if mode == "replace":
        return tgt[0].copy(), tgt[1].copy()
    assert ref is not None
    mean_r, var_r = ref[0], ref[1]
    mean_t, var_t = tgt[0], tgt[1]
    live = var_r > 0
    a = np.where(live, np.sqrt(np.where(live, var_t, 1.0) / np.where(live, var_r, 1.0)), 1.0)
    return np.where(live, mean_t + a * (mean - mean_r), mean), a * a * var


def estimate(payload: dict[str, Any]) -> dict[str, Any]:
    view, exe, feeds, fetches = _open(payload["prefix"], bool(payload.get("pir")))
    layers = _bn_layers(view)
    wanted = payload["layers"]
    unknown = [n for n in wanted if n not in {b["name"] for b in layers}] if isinstance(wanted, list) else []
    if unknown or not layers:
        have = ", ".join(b["name"] for b in layers) or "none: every BN is folded into a conv"
        return {"error": f"no batch_norm layer {', '.join(unknown)} (the program has: {have})" if unknown
                else f"no batch_norm op left in the program ({have}): nothing to re-estimate"}
    stored = {k: (_stored(view, b["mean_param"]).astype(np.float64),
                  _stored(view, b["var_param"]).astype(np.float64)) for k, b in enumerate(layers)}
    xs = [b["x"] for b in layers]
    ref = _pooled(view, exe, feeds[0], payload["reference"], xs)
    same = payload["target"] == payload["reference"]  # in-domain: one pass measures both
    before = ref if same else _pooled(view, exe, feeds[0], payload["target"], xs)
    report: list[dict[str, Any]] = []
    for k, b in enumerate(layers):
        change = score_layer(LayerStats(b["name"], b["index"], b["epsilon"], ref[k][0], ref[k][1], before[k][0],
                                        before[k][1], int(before[k][2])), payload["auto_threshold"])
        report.append({"change_shift": change.shift, "change_scale": change.scale, "change_score": change.score,
                       "change_flagged": change.flagged, "name": b["name"], "op_index": b["index"],
                       "epsilon": b["epsilon"],
                       "channels": int(stored[k][0].size), "stored_mean": stored[k][0].tolist(),
                       "stored_var": stored[k][1].tolist(), "reference_mean": ref[k][0].tolist(),
                       "reference_var": ref[k][1].tolist(), "target_mean_original": before[k][0].tolist(),
                       "target_var_original": before[k][1].tolist(), "samples": int(before[k][2])})
    chosen = [k for k, (b, r) in enumerate(zip(layers, report))
              if wanted == "all" or (r["change_flagged"] if wanted == "auto" else b["name"] in wanted)]
    current = before  # valid for the first chosen layer: nothing before it has changed yet
    for step, k in enumerate(chosen):
        if step:  # the earlier chosen layers were updated: measure this one (and the rest) again
            rest = chosen[step:]
            measured = _pooled(view, exe, feeds[0], payload["target"], [xs[j] for j in rest])
            current = list(current)
            for j, m in zip(rest, measured):
                current[j] = m
        mean, var = new_statistics(payload["mode"], *stored[k], ref[k], current[k])
        if payload.get("plant") == "wrong-formula" and step == len(chosen) - 1:
            mean = mean + 0.5 * np.sqrt(var)  # written and recorded alike: only the formula check can see it
        _set(view, layers[k]["mean_param"], mean)
        _set(view, layers[k]["var_param"], var)
        written_mean = np.array(view.scope.find_var(layers[k]["mean_param"]).get_tensor()).astype(np.float64)
        written_var = np.array(view.scope.find_var(layers[k]["var_param"]).get_tensor()).astype(np.float64)
        report[k].update({"target_mean": current[k][0].tolist(), "target_var": current[k][1].tolist(),
                          "new_mean": written_mean.tolist(), "new_var": written_var.tolist()})
    if payload.get("plant") == "non-bn-tensor":
        bn_params = {b[p] for b in layers for p in ("mean_param", "var_param")}
        name = next(n for n in view.param_names() if n not in bn_params and view.param_array(n) is not None
                    and _stored(view, n).size > 1)
        _set(view, name, _stored(view, name) * 1.01 + 1e-3)  # + : a zero-initialised bias changes too
    _write_params(payload, view, exe, feeds, fetches)
    if payload.get("plant") == "wrong-statistic" and chosen:
        k = chosen[-1]
        report[k]["target_var"][0] *= 1.0 + 1e-4
    return {"layers": report, "chosen": [layers[k]["name"] for k in chosen], "all": [b["name"] for b in layers]}


def verify(payload: dict[str, Any]) -> dict[str, Any]:
    """Reloads the source and the written model (separate scopes) and reports every problem found."""
    src, _, _, _ = load_program(payload["source_prefix"], pir=bool(payload.get("pir")))
    new, exe, feeds, _ = _open(payload["written_prefix"], bool(payload.get("pir")))
    layers = {b["name"]: b for b in _bn_layers(new)}
    recorded = {r["name"]: r for r in payload["layers"] if "new_mean" in r}
    allowed = {layers[n][p]: n for n in recorded for p in ("mean_param", "var_param")}
    problems: list[str] = []
    compared = 0
    for name in src.param_names():
        before, after = src.param_array(name), new.param_array(name)
        if before is None:
            continue
        compared += 1
        if after is None or after.shape != before.shape:
            problems.append(f"tensor {name}: missing or reshaped in the written params")
        elif name not in allowed and not np.array_equal(before, after, equal_nan=True):
            problems.append(f"tensor {name} changed although it is not a re-estimated BN statistic "
                            f"(max |diff| {float(np.max(np.abs(after.astype(np.float64) - before))):.3g})")
    for name, r in recorded.items():
        b = layers[name]
        for param, key in ((b["mean_param"], "new_mean"), (b["var_param"], "new_var")):
            if not np.array_equal(_stored(new, param).astype(np.float64), np.asarray(r[key])):
                problems.append(f"{name}: written {param} differs from reestimate.json's {key}")
    for name, r in recorded.items():  # what was written is what the mode's formula gives from the recorded inputs
        want_mean, want_var = new_statistics(payload["mode"], np.asarray(r["stored_mean"]), np.asarray(r["stored_var"]),
                                             (np.asarray(r["reference_mean"]), np.asarray(r["reference_var"])),
                                             (np.asarray(r["target_mean"]), np.asarray(r["target_var"])))
        for key, want in (("new_mean", want_mean), ("new_var", want_var)):
            got = np.asarray(r[key])
            if not np.allclose(got, want.astype(np.float32), rtol=1e-6, atol=1e-6 * float(np.max(np.abs(want)))):
                c = int(np.argmax(np.abs(got - want)))
                problems.append(f"{name} channel {c}: {key} {got[c]:.9g} is not what --mode {payload['mode']} gives "
                                f"from the recorded statistics ({want[c]:.9g})")
    names = list(recorded)
    measured = _pooled(new, exe, feeds[0], payload["target"], [layers[n]["x"] for n in names]) if names else []
    worst = 0.0
    for name, (mean, var, _) in zip(names, measured):
        r = recorded[name]
        mean_r, var_r = np.asarray(r["target_mean"]), np.asarray(r["target_var"])
        # Relative to the channel's spread for the mean (a mean near 0 has no scale of its own).
        err_m = np.abs(mean - mean_r) / (np.abs(mean_r) + np.sqrt(var_r) + 1e-30)
        err_v = np.abs(var - var_r) / (np.abs(var_r) + 1e-30)
        err = float(max(err_m.max(), err_v.max()))
        worst = max(worst, err)
        if err > payload["rtol"]:
            c = int(np.argmax(np.maximum(err_m, err_v)))
            problems.append(f"{name} channel {c}: the written model on the target measures mean {mean[c]:.9g} "
                            f"variance {var[c]:.9g}, reestimate.json records {mean_r[c]:.9g} / {var_r[c]:.9g} "
                            f"(relative error {err:.2g} > {payload['rtol']:g})")
    return {"problems": problems, "tensors_compared": compared, "layers_remeasured": names,
            "max_relative_error": worst}


@child_task(ESTIMATE)
def estimate_task(payload: dict[str, Any], _arrays: Arrays) -> tuple[dict[str, Any], Arrays]:
    return estimate(payload), {}


@child_task(VERIFY)
def verify_task(payload: dict[str, Any], _arrays: Arrays) -> tuple[dict[str, Any], Arrays]:
    return verify(payload), {}
