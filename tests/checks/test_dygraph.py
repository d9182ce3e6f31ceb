"""Dynamic-graph helpers on a small Conv2D + BatchNorm2D + Dropout net: train-mode faults fail, eval passes.

These helpers run in the caller's process by design; paddle is imported only when these tests run, not at
collection, so other test modules keep a process without paddle until they import it themselves."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from harness.checks.dygraph import (
    batch_norm_layers,
    bn_buffers_unchanged,
    eval_mode,
    export_parity,
    layers_in_training,
    missing_bn_stats,
)


@pytest.fixture(scope="module")
def pd() -> SimpleNamespace:
    import paddle

    class SmallCnn(paddle.nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.features = paddle.nn.Sequential(paddle.nn.Conv2D(3, 8, 3, padding=1), paddle.nn.BatchNorm2D(8),
                                                 paddle.nn.ReLU())
            self.drop = paddle.nn.Dropout(0.5)
            self.head = paddle.nn.Conv2D(8, 2, 1)

        def forward(self, x: Any) -> Any:
            return self.head(self.drop(self.features(x)))

    class StatefulForward(SmallCnn):
        """Python-side state in forward: the export freezes the value it had while being traced."""

        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x: Any) -> Any:
            self.calls += 1
            return super().forward(x) * self.calls

    spec = [paddle.static.InputSpec([None, 3, 16, 16], "float32", "x")]
    return SimpleNamespace(paddle=paddle, SmallCnn=SmallCnn, StatefulForward=StatefulForward, spec=spec)


@pytest.fixture
def net(pd: SimpleNamespace) -> Any:
    pd.paddle.seed(0)
    return pd.SmallCnn()


def _batch(seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((2, 3, 16, 16)) * scale + 1.0).astype("float32")


def test_layers_in_training(net: Any) -> None:
    assert {"", "features.1", "drop"} <= set(layers_in_training(net))  # a fresh Layer trains
    net.eval()
    assert layers_in_training(net) == []
    net.features[1].train()  # the classic partial fix: one BN switched back by a helper
    assert layers_in_training(net) == ["features.1"]


def test_missing_bn_stats(net: Any) -> None:
    state = net.state_dict()
    assert [name for name, _ in batch_norm_layers(net)] == ["features.1"]
    assert missing_bn_stats(state, net) == []
    learnable_only = {k: v for k, v in state.items() if not k.endswith("_variance")}
    assert missing_bn_stats(learnable_only, net) == ["features.1._variance"]
    params_only = {name: p for name, p in net.named_parameters() if p.trainable}  # "save what trains"
    assert missing_bn_stats(params_only, net) == ["features.1._mean", "features.1._variance"]


def test_inference_pass_in_train_mode_moves_bn_buffers(net: Any) -> None:
    before = net.features[1]._variance.numpy().copy()
    assert bn_buffers_unchanged(net, [_batch()]) == ["features.1._mean", "features.1._variance"]
    np.testing.assert_array_equal(net.features[1]._variance.numpy(), before)  # the check restored them
    net.eval()
    assert bn_buffers_unchanged(net, [_batch()]) == []


def test_eval_mode_restores_each_sublayer(net: Any) -> None:
    net.eval()
    net.drop.train()
    with eval_mode(net):
        assert layers_in_training(net) == []
    assert layers_in_training(net) == ["drop"]


def test_export_parity(pd: SimpleNamespace, net: Any, tmp_path: Path) -> None:
    net.train()
    for seed in range(3):  # give BN non-default statistics the export must carry
        net(pd.paddle.to_tensor(_batch(seed, scale=3.0)))
    assert export_parity(net, pd.spec, tmp_path / "a") < 1e-5
    assert "features.1" in layers_in_training(net)  # the caller's mode is left as it was
    assert export_parity(net, pd.spec, tmp_path / "b", inputs=[_batch(7)]) < 1e-5


def test_export_parity_catches_stateful_forward(pd: SimpleNamespace, tmp_path: Path) -> None:
    pd.paddle.seed(0)
    assert export_parity(pd.StatefulForward(), pd.spec, tmp_path) > 0.1
