"""The `bn_drift` check: BN statistics of what the worker really feeds det and rec, judged per channel against the
stored training statistics (harness.checks.bn.channels) and, when the golden set has one, against the approved BN
reference (harness.checks.bn.reference). Registered in harness.checks.builtin."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.checks.bn.capture import capture_inputs
from harness.checks.bn.channels import MIN_IMAGES, ChannelLimits, judge_layers
from harness.checks.bn.measure import measure_layers
from harness.checks.bn.reference import ReferenceLimits, input_settings, judge_reference, mismatch, model_hashes
from harness.checks.golden_check import open_store
from harness.checks.registry import reads_paddle_programs
from harness.environment import stack
from harness.execution.state import RunPlan, RunState
from harness.golden.approval import APPROVAL_NAME, BnCalibration, BnReference, load_approval
from harness.model.catalogue import Option
from harness.model.inference import ImageRequest
from harness.model.outcome import CheckResult
from harness.model.settings import CheckSettings, require
from harness.model.views import PlanView

# The bn_drift check's own `[checks]` keys (its spec: harness.checks.builtin).
BN_DRIFT = Option("bn_drift", bool, False, recorded=True)
# >= 2: the per-channel limits are measured on samples of 2 slips and more
BN_DRIFT_IMAGES = Option("bn_drift_images", int, 8, "corpus images whose BN statistics are measured", recorded=True)
# None: each layer's calibrated limit; a number: that for every layer
BN_DRIFT_THRESHOLD: Option[float | None] = Option("bn_drift_threshold", float | None, None, recorded=True)
BN_SKIP = reads_paddle_programs("bn_drift")  # why the profile's backend cannot feed it (approval asks too)


@dataclass(frozen=True)
class BnInputs:
    """Read before any model loads: a corrupt approval record is exit 2, not a lost run."""

    reference: BnReference | None
    why_none: str


def bn_prepare(p: PlanView) -> BnInputs:
    approval = load_approval(open_store(p.profile, p.base).directory)
    if approval is None or approval.bn is None:
        where = "no " + APPROVAL_NAME if approval is None else f"no BN reference in its {APPROVAL_NAME}"
        return BnInputs(None, f"golden set {p.profile.golden_name!r} has {where}; a full approval (`ocr-harness "
                              f"golden refresh --all --yes --profile {p.profile.name}`) records one")
    return BnInputs(approval.bn, "")


def calibrations(p: RunPlan, reference: BnReference | None, why_none: str
                 ) -> tuple[dict[str, BnCalibration], dict[str, str]]:
    """Per model kind with BN layers to judge, the calibration its approval measured for these very model files
    and input settings, or why there is none (never another model's)."""
    found: dict[str, BnCalibration] = {}
    why: dict[str, str] = {}
    for kind in ("det", "rec"):
        record = reference.models.get(kind) if reference is not None else None
        reason = why_none.split("; ")[0] if reference is None else (
            "the BN reference has no record of it" if record is None else
            mismatch(record, model_hashes(kind, p.dirs), input_settings(kind, p.profile.engine)))
        if reason is None and record is not None and record.calibration is None:
            reason = "its BN reference was recorded without a calibration (an older approval)"
        if reason is None and record is not None and record.calibration is not None:
            found[kind] = record.calibration
        else:
            why[kind] = reason or "no record"
    return found, why


def not_calibrated(p: RunPlan, why: dict[str, str]) -> CheckResult:
    reasons = sorted(set(why.values()))
    said = reasons[0] if len(reasons) == 1 else "; ".join(f"{k}: {w}" for k, w in sorted(why.items()))
    return CheckResult("bn_drift", False, "not calibrated for this model: run a full approval (`ocr-harness golden "
                       f"refresh --profile {p.profile.name} --all --yes`); {said}",
                       details={"not_calibrated": dict(sorted(why.items()))})


def bn_drift(p: RunPlan, state: RunState) -> CheckResult:
    inputs: BnInputs = (state.prepared or {}).get("bn_drift") or bn_prepare(p)
    found, uncalibrated = calibrations(p, inputs.reference, inputs.why_none)
    if not found:  # before any capture: nothing could be judged
        return not_calibrated(p, uncalibrated)
    # Sampled from the whole selection, not this shard, so every shard of a run measures the same images.
    requests = [ImageRequest(it.id, str(it.path), it.sha256) for it in p.corpus.items if it.problem is None]
    log = str(p.log_dir / "worker-bn-capture.log") if p.log_dir else None
    threshold = BN_DRIFT_THRESHOLD.of(p.profile.checks)
    with tempfile.TemporaryDirectory(prefix="ocr-harness-bn-") as tmp:
        # What the predictor really receives in a worker of this profile's engine, det and rec alike.
        capture = capture_inputs(p.profile.engine, p.dirs, requests, Path(tmp),
                                 want=BN_DRIFT_IMAGES.of(p.profile.checks),
                                 max_pixels=p.profile.max_image_pixels, log_path=log)
        if not capture.images:  # judged nothing: never a pass
            return CheckResult("bn_drift", False, "judged nothing: no readable image to measure",
                               details={"failed": dict(capture.failed)})
        kinds = [(kind, d) for kind, d in (("det", p.dirs.det), ("rec", p.dirs.rec))
                 if capture.files(kind) and kind in found]
        stats = {kind: measure_layers(d, capture.files(kind)) for kind, d in kinds}
        # A model whose every BN is folded into conv has nothing to calibrate (an approval records only models with
        # BN layers): no gap. Whether it has any does not depend on the data: one batch tells.
        model_dirs = {"det": p.dirs.det, "rec": p.dirs.rec}
        uncalibrated = {k: w for k, w in uncalibrated.items() if capture.files(k)
                        and measure_layers(model_dirs[k], capture.files(k)[:1])}
        reports = {kind: judge_layers(
            str(d), kind, stats[kind], images=len(capture.images), batches=len(capture.files(kind)),
            threshold=threshold or 0.0, limits=ChannelLimits(**found[kind].limits),
            layer_thresholds=None if threshold else found[kind].layer_limits) for kind, d in kinds}
    details: dict[str, Any] = {k: r.to_dict() for k, r in reports.items()}
    details["images"] = list(capture.images)
    measured = {k: r for k, r in reports.items() if r.layers}
    if not measured:
        return CheckResult("bn_drift", False, "judged nothing: no BN layer left in det or rec (all folded into "
                           "conv); disable bn_drift for these models", details=details)
    if len(capture.images) < MIN_IMAGES:  # the limits were measured on samples of MIN_IMAGES slips and more
        return CheckResult("bn_drift", False, f"judged too little: {len(capture.images)} image ran, the per-channel "
                           f"limits hold for samples of {MIN_IMAGES} or more", details=details)
    limits = {k: ReferenceLimits(**found[k].reference_limits) for k in measured}
    verdict = judge_reference(inputs.reference, inputs.why_none, {k: stats[k] for k in measured},
                              {k: model_hashes(k, p.dirs) for k in measured},
                              {k: input_settings(k, p.profile.engine) for k in measured},
                              stack(p.profile.engine, p.dirs.file_hashes()), limits)
    details["reference"] = verdict.to_dict(limits)
    details["calibration"] = {k: {"excluded": list(c.excluded), "samples": c.samples} for k, c in found.items()}
    findings = [f for r in measured.values() for f in r.findings]
    layers = ", ".join(f"{k} {len(r.layers)} layers / {r.batches} batches" for k, r in measured.items())
    summary = (f"{len(capture.images)} images as the worker fed them ({layers}): {len(findings)} channels beyond "
               "the model's calibrated limits; layer drift from training statistics max " +
               ", ".join(f"{k} {r.max_score:.2f}" for k, r in measured.items()))
    drifted = [f"{k} {d.name}" for k, r in measured.items() for d in r.flagged]
    if drifted:
        above = f"{threshold:g}" if threshold else "the calibrated layer limits"
        summary += f"; layer drift above {above}: {', '.join(drifted)}"
    # The reference's verdict before the channel findings: a report cuts long summaries, and it names what moved.
    summary += "; " + verdict.sentence() + "".join(f" [{f}]" for f in findings[:3])
    if uncalibrated:  # a model with BN layers and no calibration of its own: judged only in part, never a pass
        details["not_calibrated"] = uncalibrated
        summary = "not calibrated for this model: " + "; ".join(f"{k}: {w}" for k, w in sorted(
            uncalibrated.items())) + f"; run a full approval; {summary}"
    passed = all(r.passed for r in measured.values()) and not verdict.drifted and not uncalibrated
    return CheckResult("bn_drift", passed, summary, details=details, judged=len(capture.images))


def validate_bn_drift(c: CheckSettings, where: str) -> None:
    threshold = BN_DRIFT_THRESHOLD.of(c)
    require(threshold is None or threshold > 0, f"{where}.bn_drift_threshold", "must be > 0")
    require(BN_DRIFT_IMAGES.of(c) >= MIN_IMAGES, f"{where}.bn_drift_images",
            f"must be >= {MIN_IMAGES} (the per-channel limits are measured on samples of that size and more)")
