"""BN drift against the approved reference (harness.checks.bn.reference, the `bn` section of _approval.json).

The judging rule on synthetic statistics (no paddle), the record's schema, the no-record and mismatch sentences;
then end to end with the real models on real slips: a record approved on clean slips, a run on other clean slips
stays quiet, the same slips darkened (x0.3) fail naming det's stem and its channels."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from builders import profile_toml, write_profiles
from conftest import CORPUS, ROOT, run_cli

from harness.checks.bn.channels import LayerStats
from harness.checks.bn.reference import (
    MEASURED,
    REFERENCE_LIMITS,
    ReferenceLimits,
    judge_model,
    judge_reference,
    mismatch,
    model_record,
)
from harness.util.errors import UserError
from harness.golden.approval import Approval, BnReference, load_approval, write_approval

LIMITS = ReferenceLimits(channel_log_ratio=1.0, channel_shift=1.0, layer_log_ratio=0.5, layer_shift=0.5)
HASHES = {"det/inference.pdmodel": "a" * 64}
INPUTS = {"det_limit_type": "max", "det_limit_side_len": 960}


def _stats(mean: np.ndarray, var: np.ndarray, name: str = "bn_stem", op: int = 2) -> LayerStats:
    return LayerStats(name, op, 1e-5, np.zeros_like(mean), np.ones_like(var), mean, var, 10_000)


def _record(mean: np.ndarray, var: np.ndarray) -> BnReference:
    return BnReference("2026-01-01T00:00:00Z", {"onednn": True, "isa": "avx2"}, ("a", "b"),
                       {"det": model_record([_stats(mean, var)], HASHES, INPUTS, 2)})


RNG = np.random.default_rng(7)
REF_MEAN, REF_VAR = RNG.normal(0, 1, 16), RNG.uniform(0.5, 2.0, 16)


def test_the_same_statistics_do_not_move() -> None:
    [move], why = judge_model("det", [_stats(REF_MEAN, REF_VAR * 1.1)], _record(REF_MEAN, REF_VAR).models["det"],
                              LIMITS)
    assert why is None and not move.drifted and move.mean_log_ratio == pytest.approx(np.log(1.1), abs=1e-4)
    assert len(move.top) == 3 and "moved from" not in str(move)


def test_one_channel_and_a_whole_layer_that_moved_are_named() -> None:
    record = _record(REF_MEAN, REF_VAR).models["det"]
    var = REF_VAR.copy()
    var[5] *= 0.05  # one channel: ln 0.05 = -3.0
    [one], _ = judge_model("det", [_stats(REF_MEAN, var)], record, LIMITS)
    assert one.drifted and one.beyond == (5,) and not one.layer_beyond and one.top[0].channel == 5
    assert "det bn_stem (op #2)" in str(one) and "ch 5 (r -3.00" in str(one)
    mean = REF_MEAN + 2.0 * np.sqrt(REF_VAR)  # every channel two reference std away: a whole-layer shift
    [shifted], _ = judge_model("det", [_stats(mean, REF_VAR)], record, LIMITS)
    assert shifted.layer_beyond and shifted.mean_shift == pytest.approx(2.0, rel=1e-3) and len(shifted.beyond) == 16
    [dark], _ = judge_model("det", [_stats(REF_MEAN, REF_VAR * 0.09)], record, LIMITS)  # darkened x0.3: var x0.09
    assert dark.layer_beyond and dark.mean_log_ratio == pytest.approx(np.log(0.09), abs=1e-3)


def test_the_default_limits_are_the_measured_maxima_with_margin_and_the_docs_state_them() -> None:
    doc = (ROOT / "docs" / "batchnorm.md").read_text(encoding="utf-8")
    for kind, lim in REFERENCE_LIMITS.items():
        r, z, layer_r, layer_z = MEASURED[kind]  # maxima on clean slips disjoint from the record's
        assert (lim.channel_log_ratio, lim.layer_log_ratio) == pytest.approx((r + np.log(2), layer_r + np.log(2)))
        assert (lim.channel_shift, lim.layer_shift) == pytest.approx((z * 1.5, layer_z * 1.5))
        assert f"| {kind}, limit | {lim.channel_log_ratio:.2f} | {lim.channel_shift:.2f} | {lim.layer_log_ratio:.2f} " \
               f"| {lim.layer_shift:.2f} |" in doc, kind


def test_no_record_mismatch_and_other_stack() -> None:
    measured = {"det": [_stats(REF_MEAN, REF_VAR)]}
    stack_now = {"onednn": False, "isa": "avx2"}
    none = judge_reference(None, "golden set 'x' has no _approval.json", measured, {"det": HASHES}, {"det": INPUTS},
                           stack_now)
    assert none.status == "no-record" and not none.layers and not none.drifted
    assert none.sentence().startswith("drift measured against training statistics only")
    other_hash = {"det/inference.pdmodel": "b" * 64}
    assert "model files differ (det/inference.pdmodel aaaaaaaaaaaa -> bbbbbbbbbbbb)" in str(
        mismatch(_record(REF_MEAN, REF_VAR).models["det"], other_hash, INPUTS))
    changed = judge_reference(_record(REF_MEAN, REF_VAR), "", measured, {"det": HASHES},
                              {"det": {**INPUTS, "det_limit_side_len": 736}}, stack_now)
    assert changed.status == "mismatch" and not changed.layers
    assert "det not judged against the approved reference (input settings differ (det_limit_side_len 960 -> 736))" \
        in changed.sentence() and "against training statistics only" in changed.sentence()
    judged = judge_reference(_record(REF_MEAN, REF_VAR), "", measured, {"det": HASHES}, {"det": INPUTS}, stack_now)
    assert judged.status == "judged" and judged.stack_differences == ("onednn: True -> False",)
    assert "record made on another stack: onednn: True -> False" in judged.sentence()
    # A list (the CPU's ISA flags) shows what was added and removed, never both lists in full.
    record = _record(REF_MEAN, REF_VAR)
    record = BnReference(record.approved_at, {"isa": ["sse4_2", "avx2", "avx512_bf16"]}, record.images, record.models)
    flags = judge_reference(record, "", measured, {"det": HASHES}, {"det": INPUTS},
                            {"isa": ["sse4_2", "avx2", "amx_tile", "amx_int8"]})
    assert flags.stack_differences == ("isa: +amx_tile +amx_int8 -avx512_bf16",)
    assert flags.sentence().endswith("; record made on another stack: isa: +amx_tile +amx_int8 -avx512_bf16")
    renamed = {"det": [_stats(REF_MEAN, REF_VAR, name="other")]}
    assert "BN layers differ" in judge_reference(_record(REF_MEAN, REF_VAR), "", renamed, {"det": HASHES},
                                                 {"det": INPUTS}, stack_now).why["det"]


def test_the_record_round_trips_and_old_records_load(tmp_path: Path) -> None:
    ref = _record(REF_MEAN, REF_VAR)
    write_approval(tmp_path, Approval("default", other={"future": {"x": 1}}).with_bn(ref))
    back = load_approval(tmp_path)
    assert back is not None and back.bn == ref and back.other == {"future": {"x": 1}}
    assert back.bn.models["det"].layers[0].var == tuple(REF_VAR)  # float64 values, exactly
    old = json.loads((tmp_path / "_approval.json").read_text())
    del old["bn"]
    (tmp_path / "_approval.json").write_text(json.dumps(old))
    assert load_approval(tmp_path).bn is None  # type: ignore[union-attr]
    old["bn"] = {"approved_at": "x", "stack": {}, "images": [], "models": {"det": {"layers": "nope"}}}
    (tmp_path / "_approval.json").write_text(json.dumps(old))
    with pytest.raises(UserError, match="_approval.json: bn: not a BN reference"):
        load_approval(tmp_path)


# ---------------------------------------------------------------- end to end, real models and slips

RECORD_IDS = tuple(f"slip_{i:04d}" for i in range(8))  # the approval's slips: enough to calibrate (8)
RUN_IDS = ("slip_0008", "slip_0009")  # other slips: clean, then darkened


def _corpus(root: Path) -> Path:
    """The record's slips, the run's slips, and the run's slips darkened x0.3 (ids dark_*)."""
    rows = {json.loads(line)["id"]: json.loads(line)
            for line in (CORPUS / "manifest.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()}
    (root / "images").mkdir(parents=True)
    out = []
    for i in RECORD_IDS + RUN_IDS:
        shutil.copy(CORPUS / rows[i]["file"], root / rows[i]["file"])
        out.append(rows[i])
    for i in RUN_IDS:
        img = cv2.imread(str(CORPUS / rows[i]["file"]))
        path = root / "images" / f"dark_{i}.png"
        cv2.imwrite(str(path), (img.astype(np.float32) * 0.3).astype(np.uint8))
        out.append({**rows[i], "id": f"dark_{i}", "file": f"images/dark_{i}.png",
                    "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out),
                                         encoding="utf-8")
    return root


def _config(root: Path) -> Path:
    """The nightly's engine and bn_drift, goldens off for the runs (the run's slips have none), the other
    passes off (they judge other things, and cost minutes)."""
    run = profile_toml(extends="nightly", corpus=_corpus(root / "corpus"), golden_dir=root / "golden",
                       checks={"repeats": 1, "cross_process": False, "batch_paths": False, "variations": False,
                               "probe": False, "speed": False, "audit": False, "bn_drift_images": 2})
    # the approval's own selection: a full approval is --all over a profile's selection, never a narrowed one
    record = profile_toml("record", extends="t", corpus=None, top={"ids": RECORD_IDS})
    return write_profiles(root, run, record, bundled=True)


@pytest.mark.slow
def test_darkened_slips_drift_from_the_approved_reference_clean_ones_do_not(tmp_path: Path) -> None:
    config = _config(tmp_path)
    common = ["--config", str(config), "--profile", "t"]
    narrowed = run_cli(["golden", "refresh", *common, "--id", RECORD_IDS[0], "--all", "--yes",
                        "--out", str(tmp_path / "narrowed")])
    assert narrowed.returncode == 0, narrowed.stdout[-2000:] + narrowed.stderr[-2000:]
    assert "BN reference kept as it was (the selection was narrowed by --id" in narrowed.stdout, narrowed.stdout[-1500:]
    assert load_approval(tmp_path / "golden" / "default") is None
    refresh = run_cli(["golden", "refresh", "--config", str(config), "--profile", "record", "--all", "--yes",
                       "--out", str(tmp_path / "refresh")])
    assert refresh.returncode == 0, refresh.stdout[-2000:] + refresh.stderr[-2000:]
    assert "BN reference: det 3 layers / 8 batches, rec 6 layers" in refresh.stdout, refresh.stdout[-1500:]
    approval = load_approval(tmp_path / "golden" / "default")
    assert approval is not None and approval.bn is not None and approval.bn.images == RECORD_IDS
    status = run_cli(["golden", "status", "--config", str(config), "--profile", "record"])
    assert status.returncode == 0 and "  record  " not in status.stdout, status.stdout  # the whole record: quiet

    def run(ids: tuple[str, ...], name: str) -> dict[str, object]:
        out = tmp_path / name
        res = run_cli(["run", *common, "--no-goldens", *[a for i in ids for a in ("--id", i)], "--out", str(out)],
                      out=out)
        bn = res.report["checks"]["bn_drift"]
        assert bn["judged"] == 2 and bn["details"]["reference"]["status"] == "judged", bn["summary"]
        return {"rc": res.returncode, **bn}

    clean = run(RUN_IDS, "clean")
    assert clean["rc"] == 0 and clean["passed"], clean["summary"]
    assert "no drift from the approved reference" in clean["summary"]
    dark = run(tuple(f"dark_{i}" for i in RUN_IDS), "dark")
    assert dark["rc"] == 1 and not dark["passed"], dark["summary"]
    moved = [m for m in dark["details"]["reference"]["layers"] if m["drifted"]]
    assert moved and moved[0]["model"] == "det" and moved[0]["layer"] == "batch_norm2d_0", moved
    assert moved[0]["top_channels"] and "DRIFT from the approved reference" in dark["summary"]
    assert "det batch_norm2d_0 (op #2)" in dark["summary"] and "ch " in dark["summary"]
    print(dark["summary"])


@pytest.mark.slow
def test_an_approval_whose_bn_measurement_times_out_exits_1_and_status_names_the_missing_record(
        tmp_path: Path) -> None:
    """An approval is whole or it says so: the BN measurement's child is given a limit it cannot meet
    ($OCR_HARNESS_TIMEOUT_SCALE, which scales every child's limit); the goldens are still written, the refresh
    exits 1 naming the missing record, the limit hit and the setting that raises it, and `golden status` names the
    golden set's missing record (the clean half: the full approval above, whose status is quiet)."""
    config = _config(tmp_path)
    refresh = run_cli(["golden", "refresh", "--config", str(config), "--profile", "record", "--all", "--yes",
                       "--out", str(tmp_path / "refresh")], env={"OCR_HARNESS_TIMEOUT_SCALE": "0.0001"})
    assert refresh.returncode == 1, refresh.stdout[-2000:] + refresh.stderr[-2000:]
    assert re.search(r"BN reference kept as it was: drift\.measure: child process timed out after 0\.0\d+ s, its "
                     r"limit for this work \(\$OCR_HARNESS_TIMEOUT_SCALE=2 doubles every child's limit\)",
                     refresh.stdout), refresh.stdout[-1500:]
    assert refresh.stderr.strip().splitlines()[-1].startswith(
        "approval incomplete: _approval.json lacks the BN reference (the goldens and whatever else could be made "
        "were written)"), refresh.stderr[-1500:]
    assert all((tmp_path / "golden" / "default" / f"{i}.json").is_file() for i in RECORD_IDS)
    approval = load_approval(tmp_path / "golden" / "default")
    assert approval is None or approval.bn is None
    status = run_cli(["golden", "status", "--config", str(config), "--profile", "record"])
    assert status.returncode == 1, status.stdout + status.stderr
    assert "  record    no BN reference: a full approval records it" in status.stdout, status.stdout
