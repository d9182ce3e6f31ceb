"""The harness's own checks, each one `CheckSpec` (harness.checks.registry) next to the function that runs it.

Registration order is run order: the core checks judge the main pass right after it (so a run stopped later
still has them), then the other paths, goldens, and the model-level checks that run Paddle in a child.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from harness.backends import backend_owned_keys, registry as backends, unsupported_checks
from harness.backends.paddle.passes import BN_FUSION_PASSES, bn_fusions, fused_pass_counts
from harness.backends.paddle.audit import audit_model_dir
from harness.checks.bn.check import bn_drift, bn_prepare, validate_bn_drift
from harness.checks.determinism import (
    cross_process_check,
    merged_repeat_details,
    merged_repeat_summary,
    mutation_check,
    repeat_check,
)
from harness.checks.golden_check import golden_check, merged_details as merged_golden_details, open_store, preload
from harness.checks.golden_check import merged_summary as merged_golden_summary
from harness.checks.parity import merged_details as merged_parity_details, parity_hook, reference_plan
from harness.checks.batch_paths import compare_paths, merged_details as merged_path_details, merged_summary as paths_summary
from harness.checks.probe import probe_model_dir
from harness.checks.registry import CheckSpec, Runner, Scaling, register
from harness.checks.inference_check import inference_check
from harness.checks.inference_check import merged_details as merged_retries, merged_summary as merged_retry_summary
from harness.checks.served import served_settings_check
from harness.checks.speed import cost_of_ratios, path_cost, speed_check, speed_stack
from harness.corpus.loader import content_sha256
from harness.environment import ISA_HOLD_ENV, cpu_info, isa_hold, stack
from harness.execution.scheduler import infer_all
from harness.execution.state import RunPlan, RunState, stack_sample, usable_items, with_sample
from harness.golden.approval import APPROVAL_NAME, SpeedBaseline, load_approval
from harness.golden.status import golden_status
from harness.golden.store import Golden, GoldenStore
from harness.model.catalogue import Option
from harness.model.details import InferenceDetails, PathDetails, RepeatDetails
from harness.model.inference import ImageOutcome
from harness.model.outcome import CheckResult, ImageCheck
from harness.model.settings import DEFAULT_BACKEND, CheckSettings, EngineSettings, Profile, require
from harness.model.views import PlanView, ShardView, StateView
from harness.util.errors import UserError


def on_run(run: Callable[[RunPlan, RunState], CheckResult]) -> Runner:
    """A built-in runner that reads the run's own plan and state (its stack sample, worker pool, progress)."""
    # The harness hands every runner its RunPlan and RunState (harness.model.views); the views are the part of
    # them a plug-in check may rely on, the built-in checks are the harness's own.
    return cast(Runner, run)


def on_plan(prepare: Callable[[RunPlan], Any]) -> Callable[[PlanView], Any]:
    """A built-in `prepare` that reads the run's own plan (as `on_run`: the harness hands in its RunPlan)."""
    return cast("Callable[[PlanView], Any]", prepare)


def unsupported(name: str) -> Callable[[Profile], str | None]:
    """A `skip` rule: the reason the profile's backend cannot run check `name` (harness.backends)."""
    return lambda profile: unsupported_checks(profile).get(name)


# --- core: judged on the main pass -----------------------------------------------------------------------------

register(CheckSpec("inference", 10, lambda p, state: inference_check(p, state.outcomes),
                   merge_details=merged_retries, merge_summary=merged_retry_summary,
                   details=InferenceDetails.from_dict))


register(CheckSpec("repeat", 80, lambda p, state: repeat_check(state.outcomes),
                   skip=lambda profile: "repeats = 1" if profile.checks.repeats <= 1 else None,
                   merge_details=merged_repeat_details, merge_summary=merged_repeat_summary,
                   details=RepeatDetails.from_dict))
register(CheckSpec("mutation", 100, lambda p, state: mutation_check(state.outcomes),
                   skip=lambda profile: None if profile.checks.mutation else "disabled"))


def cross_process(p: RunPlan, state: RunState) -> CheckResult:
    sample, info = stack_sample(p)
    with state.phase("fresh", len(usable_items(sample))):
        fresh = infer_all(sample, p.profile.engine, "fresh", 1, p.profile.workers, state.progress, pool=state.pool)
    mine = {it.id: state.outcomes[it.id] for it in sample.items if it.id in state.outcomes}
    return with_sample(cross_process_check(mine, fresh), info)


register(CheckSpec("cross_process", 90, on_run(cross_process), key="cross_process",
                   flag_help="repeat once more in a fresh worker process",
                   phases=lambda profile: [("fresh", "sample")]))


# --- a service's own settings ----------------------------------------------------------------------------------

def served_settings(p: PlanView, state: StateView) -> CheckResult:
    answers = {i: o.transport.reported for i, o in state.outcomes.items() if o.transport is not None}
    return served_settings_check(p.profile.engine, p.backend_facts, answers)


register(CheckSpec("served_settings", 20, served_settings, level="model", per_shard=True, every_shard=True,  # answers
                   absent_unless=lambda profile: backends.get(profile.engine.backend).service))


# --- other execution paths -------------------------------------------------------------------------------------

def workers_for(p: RunPlan, settings: EngineSettings) -> int:
    """Worker processes for an extra path: as many cores busy as the profile's workers x threads, whatever
    thread count the path's settings take (a threads-2 variation of 2x1 workers runs one worker)."""
    return max(1, p.profile.workers * p.profile.engine.resolved_threads() // settings.resolved_threads())


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


def _key_texts(p: RunPlan) -> dict[str, dict[str, str]]:
    return {it.id: dict(it.fields) for it in p.items if it.fields}


def batch_path_labels(group: int) -> tuple[str, str, str]:
    """The paths `batch_paths` compares, in its order: bs1, the profile's batch, `group` images per call."""
    return "bs1", "profile", f"{group}-per-call"


def batch_paths(p: RunPlan, state: RunState) -> CheckResult:
    group = p.profile.checks.batch_path_images
    sample, info = stack_sample(p)  # bs1 is the service path: every image; batching is a stack property
    multi = batch_path_labels(group)[2]
    with state.phase("multi", len(usable_items(sample))):  # on the main pass's loaded workers, then closed
        together = infer_all(sample, p.profile.engine, "multi", 1, p.profile.workers, group=group, pool=state.pool,
                             reuse=True)
    paths = dict(zip(batch_path_labels(group), (bs1_path(p, state), state.outcomes, together), strict=True))
    reference = p.profile.checks.golden_path
    others = {k: v for k, v in paths.items() if k != reference}
    check = compare_paths("batch_paths", reference, paths[reference], others, p.profile.batch_tolerances,
                          _key_texts(p), only={multi: {it.id for it in sample.items}})
    return with_sample(check, info)


BN_UNFUSED = "bn-unfused"  # the variation without BN fusion passes (harness.backends.paddle.passes)
# oneDNN held to an older ISA in a fresh worker: how another runner type computes. Label -> (the hold, the CPU flag
# the hold needs, the newer flag without which the hold is the machine's own ISA and changes nothing).
ISA_PATHS = {"isa-avx2": ("AVX2", "avx2", "avx512f"), "isa-avx512": ("AVX512_CORE", "avx512f", "amx_tile")}
ISA_LABELS = tuple(ISA_PATHS)


def isa_paths(engine: EngineSettings, cpu_flags: Collection[str], held: str | None = None
              ) -> tuple[dict[str, EngineSettings], dict[str, str]]:
    """The ISA variations this CPU can run, and why each other one is not judged here (never a pass). `held`: the
    hold the whole run is under ($ONEDNN_MAX_CPU_ISA), which the main pass already computes with."""
    run: dict[str, EngineSettings] = {}
    why: dict[str, str] = {}
    for label, (hold, needs, newer) in ISA_PATHS.items():
        if not engine.enable_mkldnn:
            why[label] = "oneDNN is off in this profile: there is no oneDNN ISA to hold"
        elif engine.onednn_max_isa is not None:
            why[label] = f"the profile holds oneDNN to {engine.onednn_max_isa} itself"
        elif held:
            why[label] = f"the whole run holds oneDNN to {held} (${ISA_HOLD_ENV})"
        elif needs not in cpu_flags:
            why[label] = f"this CPU has no {needs}: it cannot run {hold} code"
        elif newer not in cpu_flags:
            why[label] = f"this CPU's best is {hold} (no {newer}): the main pass already computes as {hold}"
        else:
            run[label] = dataclasses.replace(engine, onednn_max_isa=hold)
    return run, why


def variants(profile: Profile, cpu_flags: Collection[str] = ()) -> dict[str, EngineSettings]:
    """oneDNN flipped, each other thread count, the BN fusion passes removed (unless the profile removes passes
    itself) and oneDNN held to each older ISA this CPU can run, by phase label."""
    engine = profile.engine
    out = {f"onednn-{'off' if engine.enable_mkldnn else 'on'}":
           dataclasses.replace(engine, enable_mkldnn=not engine.enable_mkldnn)}
    for threads in profile.checks.variation_threads:
        if threads != engine.resolved_threads():
            out[f"threads-{threads}"] = dataclasses.replace(engine, cpu_threads=threads)
    if engine.delete_passes is None:
        out[BN_UNFUSED] = dataclasses.replace(engine, delete_passes=BN_FUSION_PASSES)
    out.update(isa_paths(engine, cpu_flags, isa_hold())[0])
    return out


def variations(p: RunPlan, state: RunState) -> CheckResult:
    sample, info = stack_sample(p)
    others = {}
    flags = cpu_info()["isa"]
    paths = variants(p.profile, flags)
    for label, settings in paths.items():
        with state.phase(label, len(usable_items(sample))):
            others[label] = infer_all(sample, settings, label, 1, workers_for(p, settings), pool=state.pool)
    reference = {it.id: state.outcomes[it.id] for it in sample.items if it.id in state.outcomes}
    result = compare_paths("variations", "profile", reference, others, p.profile.tolerances, _key_texts(p))
    if BN_UNFUSED in paths:  # what the variation changed, measured: the BN fusions of both engines, per model
        counts = {label: fused_pass_counts(settings, p.dirs)
                  for label, settings in (("profile", p.profile.engine), (BN_UNFUSED, paths[BN_UNFUSED]))}
        fused = {label: bn_fusions(c) for label, c in counts.items()}
        cost = path_cost(reference, others[BN_UNFUSED])
        result = dataclasses.replace(result, summary=result.summary + "; BN fusions (subgraphs) " + ", ".join(
            f"{label} {'/'.join(f'{k} {n}' for k, n in f.items())}" for label, f in fused.items())
            + "; " + _fusion_cost_sentence(cost),
            details={**result.details, "bn_fusions": fused, "fused_passes": counts, "bn_unfused_cost": cost})
    not_judged = isa_paths(p.profile.engine, flags, isa_hold())[1]
    if not_judged:  # said, never counted as a path that passed
        result = dataclasses.replace(result, summary=result.summary + "; " + "; ".join(
            f"{label} not judged: {why}" for label, why in not_judged.items()),
            details={**result.details, "not_judged": not_judged})
    return with_sample(result, info)


def _fusion_cost_sentence(cost: Mapping[str, Any]) -> str:
    if not cost["images"]:  # a worker's first call builds kernels and is not timed: one image per worker says so
        return "unfused/fused engine cost not measured (no image ran warm on both paths)"
    return (f"unfused/fused engine cost (det + rec, cost/yardstick) median {cost['median']:.2f}x "
            f"(p90 {cost['p90']:.2f}x, {cost['images']} images)")


def _merged_batch_paths(name: str, shards: Sequence[ShardView], details: Sequence[PathDetails],
                        per_image: Mapping[str, ImageCheck], stored_goldens: Collection[str] | None) -> PathDetails:
    """The paths in the order `batch_paths` compares them, its group size as the shards' profile set it."""
    group = _report_checks(shards).get("batch_path_images")
    return merged_path_details(details, batch_path_labels(group if isinstance(group, int) else 0))


def _merged_variations(name: str, shards: Sequence[ShardView], details: Sequence[PathDetails],
                       per_image: Mapping[str, ImageCheck], stored_goldens: Collection[str] | None) -> PathDetails:
    """The paths in the order `variants` makes them: oneDNN, the thread counts as the profile lists them, BN."""
    threads = _report_checks(shards).get("variation_threads")
    out = merged_path_details(details, ["onednn-off", "onednn-on",
                                        *(f"threads-{t}" for t in (threads if isinstance(threads, list) else ())),
                                        BN_UNFUSED, *ISA_LABELS])
    costs = [d.extra["bn_unfused_cost"] for d in details if isinstance(d.extra.get("bn_unfused_cost"), Mapping)]
    if costs:  # each shard timed its own images on both paths: the per-image ratios pool
        ratios = cost_of_ratios({i: r for c in costs for i, r in c["per_image"].items()})
        out = dataclasses.replace(out, extra={**out.extra, "bn_unfused_cost": ratios})
    return out


def _read_variations(d: Any, where: str) -> PathDetails:
    """The path totals, and the per-image cost ratios of the unfused BN path that the merge pools."""
    details = PathDetails.from_dict(d, where)
    cost = details.extra.get("bn_unfused_cost")
    ratios = cost.get("per_image") if isinstance(cost, Mapping) else {}
    if not (isinstance(ratios, Mapping) and all(isinstance(r, (int, float)) and not isinstance(r, bool)
                                                for r in ratios.values())):
        raise UserError(f"{where}.bn_unfused_cost.per_image must be an object of numbers")
    return details


def _report_checks(shards: Sequence[ShardView]) -> Mapping[str, Any]:
    """The `[checks]` settings the shards ran with (they agree: `report merge` refuses other profiles)."""
    checks = shards[0].report.profile.get("settings", {}).get("checks") if shards else None
    return checks if isinstance(checks, Mapping) else {}


def _validate_batch_paths(c: CheckSettings, where: str) -> None:
    require(c.golden_path in ("profile", "bs1"), f"{where}.golden_path", "must be 'profile' or 'bs1'")
    require(2 <= c.batch_path_images <= 64, f"{where}.batch_path_images", "must be in 2..64")


def _validate_variations(c: CheckSettings, where: str) -> None:
    require(all(t >= 1 for t in c.variation_threads), f"{where}.variation_threads", "values must be >= 1")


register(CheckSpec("batch_paths", 110, on_run(batch_paths), key="batch_paths", skip=unsupported("batch_paths"),
                   reuses_main_workers=True,
                   flag_help="compare bs1 / profile batch / several images per call", validate=_validate_batch_paths,
                   merge_details=_merged_batch_paths, merge_summary=paths_summary, details=PathDetails.from_dict,
                   phases=lambda profile: [*bs1_phase(profile), ("multi", "sample")]))
register(CheckSpec("variations", 120, on_run(variations), key="variations", skip=unsupported("variations"),
                   flag_help="oneDNN on/off, thread counts and BN fusion removed, judged by golden tolerances",
                   validate=_validate_variations,
                   merge_details=_merged_variations, merge_summary=paths_summary, details=_read_variations,
                   phases=lambda profile: [(label, "sample") for label in variants(profile, cpu_info()["isa"])]))


# --- parity: another backend as the reference ------------------------------------------------------------------

def _parity_prepare(p: RunPlan) -> None:
    reference_plan(p)  # the reference's models too are verified before any model loads


def _validate_parity(c: CheckSettings, where: str) -> None:
    names = backends.names()
    require(c.parity_reference in names, f"{where}.parity_reference", f"must be one of {', '.join(names)}")


register(CheckSpec("parity", 70, on_run(parity_hook), key="parity", prepare=on_plan(_parity_prepare),
                   validate=_validate_parity, merge_details=merged_parity_details,
                   merge_summary=paths_summary, details=PathDetails.from_dict))


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
    require(c.missing_golden in ("fail", "warn"), f"{where}.missing_golden", "must be 'fail' or 'warn'")


register(CheckSpec("golden", 60, on_run(golden), key="goldens", flag_help="compare with goldens",
                   prepare=_golden_prepare,
                   validate=_validate_golden, merge_details=merged_golden_details, merge_summary=merged_golden_summary,
                   list_details=False,  # renderers show its line changes, never its status dict
                   phases=lambda profile: bs1_phase(profile) if profile.checks.golden_path == "bs1" else []))


# --- model-level checks: Paddle in a child process -------------------------------------------------------------

def audit(p: PlanView, state: StateView) -> CheckResult:
    reports = {kind: audit_model_dir(d, min_variance=p.profile.checks.audit_min_variance)
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
    require(c.audit_min_variance >= 0, f"{where}.audit_min_variance", "must be >= 0")


register(CheckSpec("audit", 30, audit, level="model", key="audit", skip=unsupported("audit"), child=True,
                   timed=True, validate=_validate_audit))
register(CheckSpec("probe", 40, probe, level="model", key="probe", skip=unsupported("probe"), child=True, timed=True,
                   flag_help="behavioural batch-independence probe of the raw models"))
register(CheckSpec("bn_drift", 50, on_run(bn_drift), level="model", key="bn_drift", skip=unsupported("bn_drift"),
                   child=True, timed=True, flag_help="stored BN statistics and the approved BN reference vs the corpus",
                   validate=validate_bn_drift, per_shard=True, prepare=bn_prepare))


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
