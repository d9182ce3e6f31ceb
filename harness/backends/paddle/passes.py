"""Which Paddle Inference optimisation passes fired, per model, when PaddleOCR built its predictors: BN fusion
measured, not assumed.

PaddleX builds each det and rec predictor in its static runner's `_create` with glog silenced. Here that one
call is run with Paddle's pass log on and the process's stderr (fd 2, where the C++ log goes) redirected to a
file, and the log is read: every `--- Running PIR pass [name]` line followed by `--- detected [n] subgraphs!`
counts n rewrites for that pass. With oneDNN on, `conv2d_bn_onednn_fuse_pass` and `batch_norm_act_fuse_pass`
fire on det's BN; the `variations` check's bn-unfused path removes BN_FUSION_PASSES (EngineSettings
.delete_passes) and compares outputs.

`fused_pass_counts` runs in a fresh process of its own (spawned): one model load per call.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from harness.backends import engine_factory
from harness.backends.paddle.engine import set_offline_env
from harness.backends.paddle.child import ChildError
from harness.model.settings import EngineSettings
from harness.model.modeldirs import ModelDirs

# Every PIR pass of paddle 3.2 that folds a batch_norm into a neighbour (a conv, a transposed conv, an
# activation); removing one that does not run in a pipeline is a no-op.
BN_FUSION_PASSES = ("conv2d_bn_onednn_fuse_pass", "conv2d_bias_bn_onednn_fuse_pass", "conv2d_transpose_bn_fuse_pass",
                    "conv2d_transpose_bias_bn_fuse_pass", "batch_norm_act_fuse_pass")

_RUNNING = re.compile(r"--- Running PIR pass \[([A-Za-z0-9_]+)\]")
_DETECTED = re.compile(r"--- detected \[(\d+)\] subgraphs!")


def parse_pass_log(text: str) -> dict[str, int]:
    """Subgraphs rewritten per pass, from Paddle's pass log (passes that ran and rewrote nothing count 0)."""
    counts: dict[str, int] = {}
    current: str | None = None
    for line in text.splitlines():
        running = _RUNNING.search(line)
        if running:
            current = running.group(1)
            counts.setdefault(current, 0)
            continue
        detected = _DETECTED.search(line)
        if detected and current is not None:
            counts[current] += int(detected.group(1))
            current = None
    return counts


def bn_fusions(counts: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Per model, the subgraphs the BN fusion passes rewrote."""
    return {kind: sum(n for name, n in per_pass.items() if name in BN_FUSION_PASSES)
            for kind, per_pass in counts.items()}


def _logged_create(original: Callable[[Any], Any], by_dir: Mapping[Path, str],
                   out: dict[str, dict[str, int]]) -> Callable[[Any], Any]:
    def create(self: Any) -> Any:
        import paddle.inference

        silence = paddle.inference.Config.disable_glog_info
        saved = os.dup(2)
        with tempfile.TemporaryFile() as log:
            paddle.inference.Config.disable_glog_info = lambda config: None
            os.dup2(log.fileno(), 2)
            try:
                predictor = original(self)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                paddle.inference.Config.disable_glog_info = silence
            log.seek(0)
            text = log.read().decode("utf-8", "replace")
        kind = by_dir.get(Path(self.model_dir).resolve(), str(self.model_dir))
        out[kind] = parse_pass_log(text)
        return predictor

    return create


def _count_in_child(conn: Connection, settings: EngineSettings, dirs: ModelDirs) -> None:
    try:
        set_offline_env()
        from paddlex.inference.models.runners.paddle_static.runner import PaddleStaticRunner

        out: dict[str, dict[str, int]] = {}
        by_dir = {Path(dirs.det).resolve(): "det", Path(dirs.rec).resolve(): "rec"}
        PaddleStaticRunner._create = _logged_create(PaddleStaticRunner._create, by_dir, out)
        engine_factory(settings)(settings, dirs)
        conn.send(("ok", out))
    except Exception as e:  # the parent raises it with the reason
        conn.send(("error", f"{type(e).__name__}: {e}"))
    conn.close()
    os._exit(0)  # skips Paddle's teardown, as the inference worker does


def fused_pass_counts(settings: EngineSettings, dirs: ModelDirs, timeout_s: float = 600.0) -> dict[str, dict[str, int]]:
    """Per model kind, the subgraphs each pass rewrote when the engine of `settings` loaded (in a spawned
    process of its own: one model load). A child that fails or dies is a ChildError."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_count_in_child, args=(child, settings, dirs), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout_s):
            raise ChildError(f"pass count: no answer within {timeout_s:g} s")
        status, value = parent.recv()
    except EOFError:
        raise ChildError(f"pass count: the process died (exit code {proc.exitcode})") from None
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    if status != "ok":
        raise ChildError(f"pass count: {value}")
    counts: dict[str, dict[str, int]] = value
    return counts
