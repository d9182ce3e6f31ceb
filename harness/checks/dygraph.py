"""Eval-mode checks for teams serving a dynamic-graph `paddle.nn.Layer` instead of an exported program.

These run in the caller's process on the caller's layer (it already imported paddle). None of them leaves
the layer changed: modes and BN buffers are restored. Each returns the offending names; empty means pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

STAT_BUFFERS = ("_mean", "_variance")


def batch_norm_layers(layer: Any) -> list[tuple[str, Any]]:
    """Every BatchNorm sublayer (BatchNorm1D/2D/3D, SyncBatchNorm, the old nn.BatchNorm), by full name."""
    import paddle

    bn_types: tuple[type, ...] = (paddle.nn.layer.norm._BatchNormBase, paddle.nn.BatchNorm)
    return [(name, sub) for name, sub in layer.named_sublayers(include_self=True) if isinstance(sub, bn_types)]


def layers_in_training(layer: Any) -> list[str]:
    """Names of the layer and sublayers still in training mode (`""` is the layer itself)."""
    return [name for name, sub in layer.named_sublayers(include_self=True) if sub.training]


def missing_bn_stats(state_dict: Mapping[str, Any], layer: Any) -> list[str]:
    """State-dict keys of BN moving statistics that `layer` needs and `state_dict` lacks.

    The classic loss: saving only learnable parameters drops `_mean`/`_variance`, and loading such a dict
    leaves BN at mean 0 / variance 1."""
    return [key for name, _ in batch_norm_layers(layer) for key in _stat_keys(name) if key not in state_dict]


def bn_buffers_unchanged(layer: Any, inputs: Sequence[Any]) -> list[str]:
    """Runs one inference pass as the layer is now (no mode switch) and names the BN buffers it changed.

    A layer served in train mode updates its moving statistics on every request. The buffers are restored
    afterwards, so the check itself does not pollute the layer."""
    import paddle

    snapshot = _bn_buffers(layer)
    try:
        with paddle.no_grad():
            layer(*[_as_tensor(x) for x in inputs])
        after = _bn_buffers(layer)
        return [key for key, before in snapshot.items() if not np.array_equal(before, after[key], equal_nan=True)]
    finally:
        for key, before in snapshot.items():
            _buffer(layer, key).set_value(before)


def export_parity(layer: Any, input_spec: Sequence[Any], tmpdir: Path, *, inputs: Sequence[Any] | None = None,
                  seed: int = 0) -> float:
    """Max |diff| between the eval-mode layer and its `paddle.jit.save` -> `paddle.jit.load` export.

    Inputs are seeded random tensors shaped by `input_spec` (dynamic dims: batch 2, others 32) unless given.
    A large difference means the export lost something: BN statistics, the eval mode, a branch."""
    import paddle

    feeds = [_as_tensor(x) for x in inputs] if inputs is not None else _random_inputs(input_spec, seed)
    prefix = str(Path(tmpdir) / "model")
    with eval_mode(layer):
        with paddle.no_grad():
            expected = _flat(layer(*feeds))
        paddle.jit.save(layer, prefix, input_spec=list(input_spec))
    loaded = paddle.jit.load(prefix)
    loaded.eval()
    with paddle.no_grad():
        got = _flat(loaded(*feeds))
    if len(got) != len(expected):
        return float("inf")
    return max((float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0
                for a, b in zip(got, expected)), default=0.0)


@contextmanager
def eval_mode(layer: Any) -> Iterator[Any]:
    """`layer.eval()` for the block, then every sublayer's own mode back."""
    modes = {id(sub): sub.training for _, sub in layer.named_sublayers(include_self=True)}
    layer.eval()
    try:
        yield layer
    finally:
        for _, sub in layer.named_sublayers(include_self=True):
            sub.training = modes.get(id(sub), sub.training)


def _stat_keys(name: str) -> list[str]:
    return [f"{name}.{b}" if name else b for b in STAT_BUFFERS]


def _buffer(layer: Any, key: str) -> Any:
    owner, _, attr = key.rpartition(".")
    sub = layer
    for part in owner.split(".") if owner else []:
        sub = getattr(sub, part)
    return getattr(sub, attr)


def _bn_buffers(layer: Any) -> dict[str, np.ndarray]:
    return {key: _buffer(layer, key).numpy().copy() for name, _ in batch_norm_layers(layer)
            for key in _stat_keys(name)}


def _as_tensor(x: Any) -> Any:
    import paddle

    return x if isinstance(x, paddle.Tensor) else paddle.to_tensor(np.asarray(x))


def _random_inputs(input_spec: Sequence[Any], seed: int) -> list[Any]:
    import paddle

    rng = np.random.default_rng(seed)
    feeds = []
    for spec in input_spec:
        shape = [d if d is not None and d > 0 else (2 if i == 0 else 32) for i, d in enumerate(spec.shape)]
        dtype = str(spec.dtype).replace("paddle.", "")
        feeds.append(paddle.to_tensor(rng.standard_normal(shape).astype(dtype)))
    return feeds


def _flat(out: Any) -> list[np.ndarray]:
    if isinstance(out, (list, tuple)):
        return [a for o in out for a in _flat(o)]
    if isinstance(out, dict):
        return [a for k in sorted(out) for a in _flat(out[k])]
    return [out.numpy()]
