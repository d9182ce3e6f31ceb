"""The harness's own checks, each one `CheckSpec` (harness.checks.registry) next to the function that runs it.

Registration order is run order: the core checks judge the main pass right after it (so a run stopped later
still has them), then the other paths, goldens, and the model-level checks that run Paddle in a child.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends import backend_owned_keys, registry as backends
from harness.backends.paddle.audit import audit_model_dir
from harness.checks import parity, variations
from harness.checks.bn.check import BN_DRIFT, BN_DRIFT_IMAGES, BN_DRIFT_THRESHOLD, BN_SKIP, bn_drift, bn_prepare
from harness.checks.bn.check import validate_bn_drift
from harness.checks.determinism import (
    cross_process_check,
    merged_repeat_details,
    merged_repeat_summary,
    mutation_check,
    repeat_check,
)
from harness.checks.golden_check import MISSING_GOLDEN, golden_check, open_store
from harness.checks.golden_check import merged_details as merged_golden_details
from harness.checks.golden_check import preload
from harness.checks.golden_check import merged_summary as merged_golden_summary
from harness.checks.batch_paths import compare_paths, key_texts, merged_details as merged_path_details
from harness.checks.batch_paths import merged_summary as paths_summary, report_checks, workers_for
from harness.checks.probe import probe_model_dir
from harness.checks.registry import CheckSpec, Scaling, on_run, reads_paddle_programs, register, unsupported
from harness.checks.inference_check import inference_check
from harness.checks.inference_check import merged_details as merged_retries, merged_summary as merged_retry_summary
from harness.checks.served import served_settings_check
from harness.checks.speed import speed_check, speed_stack
from harness.corpus.loader import content_sha256
from harness.environment import stack
from harness.execution.scheduler import infer_all
from harness.execution.state import RunPlan, RunState, stack_sample, usable_items, with_sample
from harness.golden.approval import APPROVAL_NAME, SpeedBaseline, load_approval
from harness.golden.status import golden_status
from harness.golden.store import Golden, GoldenStore
from harness.model.catalogue import Option
from harness.model.details import InferenceDetails, PathDetails, RepeatDetails
from harness.model.inference import ImageOutcome
from harness.model.outcome import CheckResult, ImageCheck
from harness.model.settings import DEFAULT_BACKEND, CheckSettings, Profile, require
from harness.model.views import PlanView, ShardView, StateView
from harness.util.errors import UserError

# Each check's own `[checks]` keys, declared with its spec below (or in its module: golden_check, bn.check, parity,
# variations); `recorded`: report.json has always recorded them, set or not.
MUTATION = Option("mutation", bool, True, "the engine must not modify its input image", recorded=True)
CROSS_PROCESS = Option("cross_process", bool, False, recorded=True)
BATCH_PATHS = Option("batch_paths", bool, False, recorded=True)
BATCH_PATH_IMAGES = Option("batch_path_images", int, 3, "images per predict call for the multi-image path",
                           recorded=True)
GOLDENS = Option("goldens", bool, True, recorded=True)
AUDIT = Option("audit", bool, True, "static eval-mode / BN audit of the model dirs", recorded=True)
AUDIT_MIN_VARIANCE = Option("audit_min_variance", float, 1e-6, recorded=True)
PROBE = Option("probe", bool, False, recorded=True)


# --- core: judged on the main pass -----------------------------------------------------------------------------

register(CheckSpec("inference", 10, lambda p, state: inference_check(p, state.outcomes),
                   merge_details=merged_retries, merge_summary=merged_retry_summary,
                   details=InferenceDetails.from_dict))


register(CheckSpec("repeat", 80, lambda p, state: repeat_check(state.outcomes),
                   skip=lambda profile: "repeats = 1" if profile.checks.repeats <= 1 else None,
                   merge_details=merged_repeat_details, merge_summary=merged_repeat_summary,
                   details=RepeatDetails.from_dict))
register(CheckSpec("mutation", 100, lambda p, state: mutation_check(state.outcomes), options=(MUTATION,),
                   skip=lambda profile: None if MUTATION.of(profile.checks) else "disabled"))


def cross_process(p: RunPlan, state: RunState) -> CheckResult:
    sample, info = stack_sample(p)
    with state.phase("fresh", len(usable_items(sample))):
        fresh = infer_all(sample, p.profile.engine, "fresh", 1, p.profile.workers, state.progress, pool=state.pool)
    mine = {it.id: state.outcomes[it.id] for it in sample.items if it.id in state.outcomes}
    return with_sample(cross_process_check(mine, fresh), info)


register(CheckSpec("cross_process", 90, on_run(cross_process), key="cross_process", options=(CROSS_PROCESS,),
                   flag_help="repeat once more in a fresh worker process",
                   phases=lambda profile: [("fresh", "sample")]))


# --- a service's own settings ----------------------------------------------------------------------------------

def served_settings(p: PlanView, state: StateView) -> CheckResult:
    answers = {i: o.transport.reported for i, o in state.outcomes.items() if o.transport is not None}
    return served_settings_check(p.profile.engine, p.backend_facts, answers)


register(CheckSpec("served_settings", 20, served_settings, level="model", per_shard=True, every_shard=True,  # answers
                   absent_unless=lambda profile: backends.get(profile.engine.backend).service))


# --- other execution paths -------------------------------------------------------------------------------------

def bs1_path(p: RunPlan, state: RunState) -> dict[str, ImageOutcome]:
    """Recognition batch size 1, one image per call: exactly what a service sees. Run once, shared by checks."""
    if "bs1" not in state.extra_paths:
        if p.profile.engine.rec_batch_size == 1:
            state.extra_paths["bs1"] = state.outcomes
        else:
            bs1 = dataclasses.replace(p.profile.engine, rec_batch_size=1)
            with state.phase("bs1", len(usable_items(p))):
                state.extra_paths["bs1"] = infer_all(p, bs1, "bs1", 1, workers_for(p, bs1), pool=state.pool)
    return state.extra_paths["bs1"]


def bs1_phase(profile: Profile) -> list[tuple[str, Scaling]]:
    """The bs1 path runs once, on every image, for whichever check needs it first."""
    return [("bs1", "corpus")] if profile.engine.rec_batch_size != 1 else []


def golden_path(p: RunPlan, state: RunState) -> dict[str, ImageOutcome]:
    """The outcomes of the path the goldens were made on."""
    return bs1_path(p, state) if p.profile.checks.golden_path == "bs1" else state.outcomes


def batch_path_labels(group: int) -> tuple[str, str, str]:
    """The paths `batch_paths` compares, in its order: bs1, the profile's batch, `group` images per call."""
    return "bs1", "profile", f"{group}-per-call"


def batch_paths(p: RunPlan, state: RunState) -> CheckResult:
    group = BATCH_PATH_IMAGES.of(p.profile.checks)
    sample, info = stack_sample(p)  # bs1 is the service path: every image; batching is a stack property
    multi = batch_path_labels(group)[2]
    with state.phase("multi", len(usable_items(sample))):  # on the main pass's loaded workers, then closed
        together = infer_all(sample, p.profile.engine, "multi", 1, p.profile.workers, group=group, pool=state.pool,
                             reuse=True)
    paths = dict(zip(batch_path_labels(group), (bs1_path(p, state), state.outcomes, together), strict=True))
    reference = p.profile.checks.golden_path
    others = {k: v for k, v in paths.items() if k != reference}
    check = compare_paths("batch_paths", reference, paths[reference], others, p.profile.batch_tolerances,
                          key_texts(p), only={multi: {it.id for it in sample.items}})
    return with_sample(check, info)


def _merged_batch_paths(name: str, shards: Sequence[ShardView], details: Sequence[PathDetails],
                        per_image: Mapping[str, ImageCheck], stored_goldens: Collection[str] | None) -> PathDetails:
    """The paths in the order `batch_paths` compares them, its group size as the shards' profile set it."""
    group = report_checks(shards).get("batch_path_images")
    return merged_path_details(details, batch_path_labels(group if isinstance(group, int) else 0))


def _validate_batch_paths(c: CheckSettings, where: str) -> None:
    require(2 <= BATCH_PATH_IMAGES.of(c) <= 64, f"{where}.batch_path_images", "must be in 2..64")


register(CheckSpec("batch_paths", 110, on_run(batch_paths), key="batch_paths", skip=unsupported("batch_paths"),
                   reuses_main_workers=True, options=(BATCH_PATHS, BATCH_PATH_IMAGES),
                   flag_help="compare bs1 / profile batch / several images per call", validate=_validate_batch_paths,
                   merge_details=_merged_batch_paths, merge_summary=paths_summary, details=PathDetails.from_dict,
                   phases=lambda profile: [*bs1_phase(profile), ("multi", "sample")]))
register(variations.SPEC)


# --- parity: another backend as the reference ------------------------------------------------------------------

register(parity.SPEC)


# --- goldens ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GoldenInputs:
    """Read and validated before any model loads: a corrupt golden is exit 2, not a lost run."""

    store: GoldenStore
    goldens: dict[str, Golden]


def _golden_prepare(p: PlanView) -> GoldenInputs:
    store = open_store(p.profile, p.base)
    return GoldenInputs(store, preload(store, [it.id for it in p.items]))


def shared_golden_keys(profile: Profile, store: Any, current_stack: dict[str, Any]) -> list[str]:
    """Stack keys not to compare when the profile declares it shares another backend's goldens (and the
    golden set was made by that backend)."""
    meta = store.meta()
    if profile.engine.goldens_from is None or meta is None:
        return []
    if meta.stack.get("backend", DEFAULT_BACKEND) != profile.engine.goldens_from:
        return []
    return backend_owned_keys(meta.stack, current_stack)


def golden(p: RunPlan, state: RunState) -> CheckResult:
    inputs: GoldenInputs = (state.prepared or {})["golden"]
    hashes = {it.id: content_sha256(it) for it in p.items}
    current_stack = stack(p.profile.golden_engine(), p.dirs.file_hashes(), dict(p.backend_facts))
    shared = shared_golden_keys(p.profile, inputs.store, current_stack)
    status = golden_status(inputs.store, [it.id for it in p.items], p.corpus.selection_is_complete and p.shard is None,
                           current_stack, ignore_keys=shared, image_sha256=hashes, loaded=inputs.goldens)
    check = golden_check(p.items, golden_path(p, state), p.profile.checks.golden_path, inputs.goldens, p.profile,
                         status, hashes)
    if shared:  # declared: this backend reads like the goldens' backend within the profile's tolerances
        check = dataclasses.replace(
            check, summary=f"{check.summary} (goldens shared from {p.profile.engine.goldens_from})",
            details={**check.details, "shared_goldens": {"from": p.profile.engine.goldens_from,
                                                         "not_compared": shared}})
    return check


def _validate_golden(c: CheckSettings, where: str) -> None:
    require(MISSING_GOLDEN.of(c) in ("fail", "warn"), f"{where}.missing_golden", "must be 'fail' or 'warn'")


register(CheckSpec("golden", 60, on_run(golden), key="goldens", flag_help="compare with goldens",
                   prepare=_golden_prepare, options=(GOLDENS, MISSING_GOLDEN),
                   validate=_validate_golden, merge_details=merged_golden_details, merge_summary=merged_golden_summary,
                   list_details=False,  # renderers show its line changes, never its status dict
                   phases=lambda profile: bs1_phase(profile) if profile.checks.golden_path == "bs1" else []))


# --- model-level checks: Paddle in a child process -------------------------------------------------------------

def audit(p: PlanView, state: StateView) -> CheckResult:
    reports = {kind: audit_model_dir(d, min_variance=AUDIT_MIN_VARIANCE.of(p.profile.checks))
               for kind, d in (("det", p.dirs.det), ("rec", p.dirs.rec))}
    failed = [k for k, r in reports.items() if not r.passed]
    summary = "; ".join(
        f"{k}: {r.headline()}, min variance {r.variance_min if r.variance_min is not None else float('nan'):.3g}, "
        f"{len(r.findings)} findings" + "".join(f" [{f}]" for f in r.findings[:3])
        + (f", {len(r.suspects)} suspect channels (not failed; `ocr-harness audit --drift` measures them): "
           + "; ".join(map(str, r.suspects[:3])) if r.suspects else "")
        for k, r in reports.items())
    return CheckResult("audit", not failed, summary, details={k: r.to_dict() for k, r in reports.items()},
                       judged=len(reports), unit="models")


def probe(p: PlanView, state: StateView) -> CheckResult:
    reports = {"det": probe_model_dir(p.dirs.det, kind="det"), "rec": probe_model_dir(p.dirs.rec, kind="rec")}
    failed = [k for k, r in reports.items() if not r.passed]
    summary = "; ".join(f"{k}: sample alone vs with batch-mates, max diff {r.max_abs_diff:.3g} (atol {r.atol:g})"
                        for k, r in reports.items())
    return CheckResult("probe", not failed, summary, details={k: r.to_dict() for k, r in reports.items()},
                       judged=len(reports), unit="models")


def _validate_audit(c: CheckSettings, where: str) -> None:
    require(AUDIT_MIN_VARIANCE.of(c) >= 0, f"{where}.audit_min_variance", "must be >= 0")


register(CheckSpec("audit", 30, audit, level="model", key="audit", skip=reads_paddle_programs("audit"), child=True,
                   timed=True, options=(AUDIT, AUDIT_MIN_VARIANCE), validate=_validate_audit))
register(CheckSpec("probe", 40, probe, level="model", key="probe", skip=reads_paddle_programs("probe"), child=True,
                   timed=True, options=(PROBE,),
                   flag_help="behavioural batch-independence probe of the raw models"))
register(CheckSpec("bn_drift", 50, on_run(bn_drift), level="model", key="bn_drift", skip=BN_SKIP, child=True,
                   timed=True, flag_help="stored BN statistics and the approved BN reference vs the corpus",
                   validate=validate_bn_drift, per_shard=True, prepare=bn_prepare,
                   options=(BN_DRIFT, BN_DRIFT_IMAGES, BN_DRIFT_THRESHOLD)))


# --- speed and memory against the approved baseline ------------------------------------------------------------

@dataclass(frozen=True)
class SpeedInputs:
    """Read before any model loads: a corrupt approval record is exit 2, not a lost run."""

    baselines: tuple[SpeedBaseline, ...]  # the profile's, one per runner type
    why_none: str


def _speed_prepare(p: PlanView) -> SpeedInputs:
    store = open_store(p.profile, p.base)
    approval = load_approval(store.directory)
    if approval is None:
        return SpeedInputs((), f"golden set {p.profile.golden_name!r} has no {APPROVAL_NAME}; write one with "
                               f"`ocr-harness speed baseline --profile {p.profile.name}` or a full approval")
    baselines = tuple(approval.speed.get(p.profile.name, ()))
    if not baselines:
        return SpeedInputs((), f"{APPROVAL_NAME} of golden set {p.profile.golden_name!r} has none for profile "
                               f"{p.profile.name!r}; write one with `ocr-harness speed baseline --profile "
                               f"{p.profile.name}`")
    return SpeedInputs(baselines, "")


def speed(p: PlanView, state: StateView) -> CheckResult:
    inputs: SpeedInputs = (state.prepared or {})["speed"]
    return speed_check(state.outcomes, inputs.baselines, speed_stack(p),
                       max_ratio=SPEED.setting(p.profile, "speed_max_ratio"),
                       memory_max_ratio=SPEED.setting(p.profile, "memory_max_ratio"),
                       require_baseline=SPEED.setting(p.profile, "speed_require_baseline"),
                       no_baseline_why=inputs.why_none,
                       approve_hint=f"`ocr-harness speed baseline --profile {p.profile.name}`")


def _above_one(v: float) -> str | None:
    return None if v > 1 and v == v and v != float("inf") else "must be a finite number > 1"


SPEED = register(CheckSpec(
    "speed", 130, speed, level="model", key="speed", per_shard=True, every_shard=True, prepare=_speed_prepare,
    flag_help="per-image latency and peak memory against the approved baseline, normalised by a CPU yardstick",
    options=(Option("speed_max_ratio", float, 1.5, "fail when the median image's latency/yardstick ratio exceeds "
                    "its approved one by more than this factor", _above_one),
             Option("memory_max_ratio", float, 1.3, "fail when the peak worker RSS exceeds the approved one by "
                    "more than this factor", _above_one),
             Option("speed_require_baseline", bool, False, "a golden set without a speed baseline fails the run "
                    "instead of reporting 'not judged'"))))
