"""A full approval writes the golden set's approval record (harness.golden.approval): the profile's speed baseline and
the BN reference. One code path for `golden refresh --all --yes`, the pytest plugin's `--ocr-regen all` over the
whole selection and `ocr-harness speed baseline` (speed only); anything less keeps the record and says so.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.checks.bn.calibration import CALIBRATION_MIN_IMAGES
from harness.checks.bn.check import BN_SKIP
from harness.checks.bn.reference import REFERENCE_IMAGES, capture_reference, input_settings, mismatch, model_hashes
from harness.checks.speed import speed_stack
from harness.checks.golden_check import open_store
from harness.backends.paddle.child import ChildError
from harness.checks.speed import make_baseline
from harness.environment import stack
from harness.util.errors import UserError
from harness.golden.approval import (APPROVAL_NAME, Approval, BnReference, SpeedBaseline, load_approval, runner_type,
                                     write_approval)
from harness.execution.state import RunPlan
from harness.model.inference import ImageOutcome, ImageRequest


def _load(p: RunPlan) -> tuple[Path, Approval]:
    store = open_store(p.profile, p.base)
    return store.directory, load_approval(store.directory) or Approval(p.profile.golden_name)


def approve_speed(p: RunPlan, outcomes: Mapping[str, ImageOutcome]) -> tuple[SpeedBaseline, Path]:
    """Writes the baseline of `p`'s profile from its main-pass outcomes; every image must have run."""
    failed = sorted(i for i, o in outcomes.items() if not o.ok)
    if failed:
        raise UserError(f"speed baseline not written: {len(failed)} image(s) did not run ({', '.join(failed[:5])}); "
                        "a baseline is made only from a run where every image ran")
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    made = make_baseline(outcomes, speed_stack(p), stamp)
    directory, approval = _load(p)
    return made, write_approval(directory, approval.with_speed(p.profile.name, made))


def describe(made: SpeedBaseline) -> str:
    ratios = sorted(s.ratio for s in made.images.values())
    peak = "not measured" if made.peak_rss_kib is None else f"{made.peak_rss_kib / 1024:.0f} MiB"
    return (f"{len(made.images)} images, median cost/yardstick ratio {ratios[len(ratios) // 2]:.1f} "
            f"({made.clock} seconds), "
            f"peak RSS {peak}")


def approve_bn(p: RunPlan) -> tuple[BnReference, Path]:
    """Captures up to REFERENCE_IMAGES of the selection (the whole selection, not a shard) in a worker of the
    profile's engine and writes the golden set's BN reference."""
    requests = [ImageRequest(it.id, str(it.path), it.sha256) for it in p.corpus.items if it.problem is None]
    log = str(p.log_dir / "worker-bn-reference.log") if p.log_dir else None
    with tempfile.TemporaryDirectory(prefix="ocr-harness-bn-ref-") as tmp:
        made = capture_reference(p.profile.engine, p.dirs, requests[:REFERENCE_IMAGES], Path(tmp),
                                 stack(p.profile.engine, p.dirs.file_hashes()), max_pixels=p.profile.max_image_pixels,
                                 log_path=log)
    directory, approval = _load(p)
    return made, write_approval(directory, approval.with_bn(made))


def describe_bn(made: BnReference) -> str:
    return ", ".join(f"{kind} {len(m.layers)} layers / {m.batches} batches" for kind, m in made.models.items()) + \
        f" on {len(made.images)} images" + ("" if any(m.calibration is None for m in made.models.values()) else
                                            ", calibrated")


@dataclass(frozen=True)
class ApprovalResult:
    """What a refresh did to the approval record: one line per section, and what a full approval should have
    recorded and could not (a section the profile does not use is not missing)."""

    lines: tuple[str, ...]
    missing: tuple[str, ...] = ()

    def incomplete(self) -> str | None:
        """The one line that ends an incomplete approval, or None when it is whole (or was not a full one)."""
        if not self.missing:
            return None
        return (f"approval incomplete: {APPROVAL_NAME} lacks the {' and the '.join(self.missing)} (the goldens and "
                "whatever else could be made were written); fix the cause above and approve again")


def approve_full(p: RunPlan, outcomes: Mapping[str, ImageOutcome], full: bool,
                 partial_why: str = "") -> ApprovalResult:
    """After goldens were written: a full approval (every selected image, `--all`) also approves the profile's speed,
    measured on the approval's own pass when that pass ran the profile's engine, and records the BN reference;
    anything less keeps the approval record as it is. The BN reference belongs to the golden set, so it is recorded
    whatever the profile's checks (the nightly judges against what a release approval recorded). A full approval
    that cannot make a section names it in `missing`: the caller exits non-zero."""
    speed_kept = f"{APPROVAL_NAME}: speed baseline of profile {p.profile.name} kept as it was"
    bn_kept = f"{APPROVAL_NAME}: BN reference kept as it was"
    if not full:
        why = partial_why or "only a full approval, --all, rewrites it"
        return ApprovalResult((f"{speed_kept} ({why})", f"{bn_kept} ({why})"))
    lines, missing = [], []
    if p.profile.golden_engine() != p.profile.engine:
        lines.append(f"{speed_kept} (goldens use the bs1 path, not the profile's engine: run `ocr-harness speed "
                     f"baseline --profile {p.profile.name}`)")
    elif not p.profile.checks.get("speed"):
        lines.append(f"{speed_kept} (the speed check is off in this profile)")
    else:
        try:
            made, path = approve_speed(p, outcomes)
            lines.append(f"{APPROVAL_NAME}: speed baseline of profile {p.profile.name}: {describe(made)} -> {path}")
        except UserError as e:
            lines.append(f"{speed_kept}: {e}")
            missing.append(f"speed baseline of profile {p.profile.name}")
    unsupported = BN_SKIP(p.profile)
    if unsupported:
        lines.append(f"{bn_kept} ({unsupported})")
    else:
        try:
            reference, path = approve_bn(p)
            lines.append(f"{APPROVAL_NAME}: BN reference: {describe_bn(reference)} -> {path}")
            bare = sorted(k for k, m in reference.models.items() if m.calibration is None)
            if bare and p.profile.checks.get("bn_drift"):
                lines.append(f"{APPROVAL_NAME}: BN calibration not made for {'/'.join(bare)}: "
                             f"{len(reference.images)} slips ran, a calibration needs {CALIBRATION_MIN_IMAGES}")
                missing.append("BN calibration")
        except (UserError, ChildError) as e:
            lines.append(f"{bn_kept}: {e}")
            if p.profile.checks.get("bn_drift"):  # a profile without the check does not miss it
                missing.append("BN reference")
    return ApprovalResult(tuple(lines), tuple(missing))


@dataclass(frozen=True)
class RecordGaps:
    """What `golden status` says of the approval record for a profile: gaps (a record the profile's checks need
    and the golden set lacks, or one made for other models) fail the status; notes do not."""

    gaps: tuple[str, ...]
    notes: tuple[str, ...]


def record_gaps(p: RunPlan) -> RecordGaps:
    name = p.profile.name
    approval = load_approval(open_store(p.profile, p.base).directory)
    gaps: list[str] = []
    notes: list[str] = []
    if p.profile.checks.get("speed"):
        baselines = approval.speed.get(name, ()) if approval else ()
        if not baselines:
            gaps.append(f"no speed baseline for profile {name}: a full approval makes one "
                        f"(`ocr-harness golden refresh --profile {name} --all --yes`, or `ocr-harness speed baseline "
                        f"--profile {name}`)")
        elif approval is not None and approval.speed_for(name, speed_stack(p)) is None:
            notes.append(f"speed baseline of profile {name} made on {', '.join(b.runner for b in baselines)}; none on "
                         f"this runner type ({runner_type(speed_stack(p))}): `ocr-harness speed baseline --profile "
                         f"{name}` on it")
    if BN_SKIP(p.profile):
        return RecordGaps(tuple(gaps), tuple(notes))
    bn_on = p.profile.checks.get("bn_drift")
    if approval is None or approval.bn is None:
        (gaps if bn_on else notes).append(
            f"no BN reference: a full approval records it (`ocr-harness golden refresh --profile {name} --all "
            "--yes`); until then bn_drift cannot judge this golden set's models")
    elif bn_on:
        for kind, record in sorted(approval.bn.models.items()):
            why = mismatch(record, model_hashes(kind, p.dirs), input_settings(kind, p.profile.engine))
            if why:
                gaps.append(f"BN reference of {kind} was made for other models or settings: {why}")
            elif record.calibration is None:
                gaps.append(f"BN reference of {kind} has no calibration (an older approval): bn_drift does not "
                            "judge it until a full approval calibrates it")
    return RecordGaps(tuple(gaps), tuple(notes))
