"""Another CPU in CI (`.ci/run` runs the `numerics` tests a second time with `ONEDNN_MAX_CPU_ISA=AVX2`): the hold
takes effect. A child process runs the bundled det model through Paddle Inference with oneDNN and
`ONEDNN_VERBOSE=1`; oneDNN names the ISA it dispatches to. Held to SSE4.1 (below every x86-64 runner's), it must
say so; in CI's second pass the variable set for the whole suite must be the one oneDNN reports, so that pass
really computes as an older CPU does. And the stack records the hold, so goldens and speed baselines made under it
are told apart from the CPU's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends.paddle.pack import prepare_bundled
from harness.environment import ISA_HOLD_ENV, stack
from harness.golden.approval import runner_type
from harness.model.settings import EngineSettings

CHILD = r"""
import sys
import numpy as np
import paddle.inference as pi
d = sys.argv[1]
cfg = pi.Config(d + "/inference.pdmodel", d + "/inference.pdiparams")
cfg.enable_mkldnn()
cfg.disable_glog_info()
cfg.set_cpu_math_library_num_threads(1)
pred = pi.create_predictor(cfg)
h = pred.get_input_handle(pred.get_input_names()[0])
h.copy_from_cpu(np.zeros((1, 3, 64, 64), dtype="float32"))
pred.run()
"""
# oneDNN's names of the ISA values ONEDNN_MAX_CPU_ISA takes (its verbose "isa:" line).
ONEDNN_NAMES = {"SSE41": "Intel SSE4.1", "AVX": "Intel AVX", "AVX2": "Intel AVX2", "AVX512_CORE": "Intel AVX-512"}


def onednn_isa(hold: str | None) -> str:
    det = prepare_bundled(EngineSettings()).det
    env = {k: v for k, v in os.environ.items() if k != ISA_HOLD_ENV}
    env.update({"ONEDNN_VERBOSE": "1", **({ISA_HOLD_ENV: hold} if hold else {})})
    run = subprocess.run([sys.executable, "-c", CHILD, str(det)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line for line in (run.stdout + run.stderr).splitlines() if ",info,cpu,isa:" in line]
    assert lines, "oneDNN printed no ISA line: it did not run"
    return lines[0].split(",info,cpu,isa:", 1)[1].strip()


@pytest.mark.slow
@pytest.mark.numerics
def test_the_isa_hold_takes_effect() -> None:
    assert onednn_isa("SSE41").startswith("Intel SSE4.1")  # held below the machine's own ISA: oneDNN obeys
    held = os.environ.get(ISA_HOLD_ENV)
    if held:  # CI's second pass: what the whole suite runs under
        assert onednn_isa(held).startswith(ONEDNN_NAMES[held.upper()]), held


def test_the_stack_and_the_runner_type_record_the_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ISA_HOLD_ENV, raising=False)
    own = stack(EngineSettings(), {})
    assert "onednn_max_isa" not in own
    monkeypatch.setenv(ISA_HOLD_ENV, "avx2")
    held = stack(EngineSettings(), {})
    assert held["onednn_max_isa"] == "AVX2" and held["isa"] == own["isa"]
    assert runner_type(held) == runner_type(own) + " (oneDNN held to AVX2)"
