"""BN fusion measured, not assumed (harness.backends.paddle.passes, the `variations` check's bn-unfused path).

The pass log parser on a logged excerpt; then real models: with oneDNN on the BN fusion passes rewrite det and rec
subgraphs and the bn-unfused engine rewrites none; an empty `delete_pass` list (PaddleOCR's own engine config
carried over into a user engine_config) reads bit-identically to the main path."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT

from harness.backends.paddle.passes import BN_FUSION_PASSES, bn_fusions, fused_pass_counts, parse_pass_log
from harness.checks.variations import BN_UNFUSED, ISA_PATHS, isa_paths, variants
from harness.model.settings import EngineSettings
from harness.checks.registry import catalogue
from harness.config import load_profile
from harness.corpus.loader import load_corpus
from harness.environment import settings_hash
from harness.backends import registry as backend_registry
from harness.backends.paddle.pack import resolve_model_dirs
from harness.model.inference import ImageRequest
from harness.execution.worker import Worker, WorkerSpec

LOG = """\x1b[1m\x1b[35m--- Running PIR pass [conv2d_bn_onednn_fuse_pass]\x1b[0m
I1203 14:11:25.336647  1848 print_statistics.cc:50] --- detected [2] subgraphs!
\x1b[1m\x1b[35m--- Running PIR pass [conv2d_bias_bn_onednn_fuse_pass]\x1b[0m
\x1b[1m\x1b[35m--- Running PIR pass [conv2d_bias_fuse_pass]\x1b[0m
I1203 14:11:25.350325  1848 print_statistics.cc:50] --- detected [52] subgraphs!
I1203 14:11:25.529158  1848 print_statistics.cc:44] --- detected [86, 532] subgraphs!
\x1b[1m\x1b[35m--- Running PIR pass [batch_norm_act_fuse_pass]\x1b[0m
I1203 14:11:25.375468  1848 print_statistics.cc:50] --- detected [1] subgraphs!
"""


def test_pass_log_is_counted_per_pass() -> None:
    counts = parse_pass_log(LOG)
    assert counts == {"conv2d_bn_onednn_fuse_pass": 2, "conv2d_bias_bn_onednn_fuse_pass": 0,
                      "conv2d_bias_fuse_pass": 52, "batch_norm_act_fuse_pass": 1}
    assert bn_fusions({"det": counts}) == {"det": 3}


def test_the_variation_and_its_setting() -> None:
    nightly, _ = load_profile(ROOT / "harness.toml", "nightly", catalogue())
    assert variants(nightly)[BN_UNFUSED].delete_passes == BN_FUSION_PASSES
    # Unset, the setting leaves the stack hash every golden was stamped with unchanged; set, it is a new stack.
    # (The default settings as every run resolves them from the default pack's dirs: its names and rec input.)
    default = EngineSettings(det_model_name="PP-OCRv4_mobile_det", rec_model_name="PP-OCRv4_mobile_rec",
                             rec_image_shape=(3, 48, 320))
    assert settings_hash(default.hash_dict(backend_registry.rules())) == "6d0910e8a90e0fa7"
    assert settings_hash(dataclasses.replace(default, delete_passes=()).hash_dict(backend_registry.rules())) != \
        "6d0910e8a90e0fa7"


def test_the_isa_variations_run_where_the_cpu_has_something_newer_and_say_why_not_elsewhere() -> None:
    """isa-avx2 / isa-avx512 hold oneDNN to an older ISA in a fresh worker: judged only on a CPU that has the ISA
    and something newer (else the hold changes nothing); every other case is named, never a pass. Unset, the
    setting leaves the stamped stack hash alone (the test above)."""
    nightly, _ = load_profile(ROOT / "harness.toml", "nightly", catalogue())
    engine = nightly.engine
    amx = ("avx2", "avx512f", "amx_tile")
    run, why = isa_paths(engine, amx)
    assert {k: v.onednn_max_isa for k, v in run.items()} == {"isa-avx2": "AVX2", "isa-avx512": "AVX512_CORE"}
    assert why == {}
    run, why = isa_paths(engine, ("avx2", "avx512f"))  # AVX-512 without AMX
    assert list(run) == ["isa-avx2"] and why == {
        "isa-avx512": "this CPU's best is AVX512_CORE (no amx_tile): the main pass already computes as AVX512_CORE"}
    run, why = isa_paths(engine, ("avx2",))  # an AVX2-only runner: nothing older to hold to, nothing judged
    assert run == {} and why["isa-avx2"].startswith("this CPU's best is AVX2") and \
        why["isa-avx512"] == "this CPU has no avx512f: it cannot run AVX512_CORE code"
    assert set(isa_paths(dataclasses.replace(engine, enable_mkldnn=False), amx)[1]) == set(ISA_PATHS)
    assert isa_paths(engine, amx, held="AVX2")[1]["isa-avx2"] == "the whole run holds oneDNN to AVX2 " \
        "($ONEDNN_MAX_CPU_ISA)"
    assert set(variants(nightly, amx)) >= set(ISA_PATHS) and not set(variants(nightly, ("avx2",))) & set(ISA_PATHS)
    default = EngineSettings(det_model_name="PP-OCRv4_mobile_det", rec_model_name="PP-OCRv4_mobile_rec",
                             rec_image_shape=(3, 48, 320))
    assert settings_hash(dataclasses.replace(default, onednn_max_isa="AVX2").hash_dict(backend_registry.rules())) \
        != "6d0910e8a90e0fa7"


def test_a_process_that_loaded_paddle_is_never_silently_left_unheld(tmp_path: Path) -> None:
    """oneDNN reads its ISA hold once: the worker sets it before Paddle loads; a process that has Paddle already
    refuses (the variation's path then fails to run, which is reported), and a fresh one is held."""
    code = ("import os, sys; from harness.backends.paddle.engine import hold_isa; hold_isa('AVX2'); "
            "assert os.environ['ONEDNN_MAX_CPU_ISA'] == 'AVX2'; import paddle\n"
            "try:\n    hold_isa('AVX512_CORE')\nexcept RuntimeError as e:\n    print(e)\n")
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "oneDNN cannot be held to AVX512_CORE in a process that has loaded Paddle already" in res.stdout


@pytest.fixture(scope="module")
def engine() -> EngineSettings:
    profile, _ = load_profile(ROOT / "harness.toml", "release", catalogue())
    assert profile.engine.enable_mkldnn
    return profile.engine


@pytest.mark.slow
def test_fusion_counts_differ_with_onednn_on(engine: EngineSettings) -> None:
    dirs = resolve_model_dirs(engine, ROOT)
    fused = fused_pass_counts(engine, dirs)
    unfused = fused_pass_counts(dataclasses.replace(engine, delete_passes=BN_FUSION_PASSES), dirs)
    assert bn_fusions(fused) == {"det": 3, "rec": 6}, fused
    assert fused["det"]["conv2d_bn_onednn_fuse_pass"] == 2 and fused["det"]["batch_norm_act_fuse_pass"] == 1
    assert bn_fusions(unfused) == {"det": 0, "rec": 0} and not set(BN_FUSION_PASSES) & set(unfused["det"])
    assert len(unfused["det"]) > 5  # the other passes still ran and were counted: the log was read


@pytest.mark.slow
def test_an_empty_delete_pass_list_reads_bit_identically(engine: EngineSettings) -> None:
    dirs = resolve_model_dirs(engine, ROOT)
    items = load_corpus(CORPUS, subset="smoke").items[:2]
    requests = [ImageRequest(it.id, str(it.path), it.sha256) for it in items]
    results = {}
    for label, settings in (("main", engine), ("empty", dataclasses.replace(engine, delete_passes=()))):
        with Worker(WorkerSpec(settings=settings, dirs=dirs, label=label)) as worker:
            results[label] = [worker.infer([req])[0].runs[0] for req in requests]  # the service path
    assert results["main"] == results["empty"]
    assert sum(len(r.lines) for r in results["main"]) > 20
