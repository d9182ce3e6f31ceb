"""The `variations` check: the same images through the profile's engine with one thing changed at a time - oneDNN
flipped, each other thread count, the BN fusion passes removed, oneDNN held to each older ISA this CPU can run -
each compared with the main pass by the golden tolerances (harness.checks.batch_paths `compare_paths`). Its own
`[checks]` keys are declared here, next to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from harness.backends import backend
from harness.backends.paddle.passes import BN_FUSION_PASSES, bn_fusions, fused_pass_counts
from harness.checks.batch_paths import compare_paths, key_texts, merged_details as merged_path_details
from harness.checks.batch_paths import merged_summary as paths_summary, report_checks, workers_for
from harness.checks.registry import CheckSpec, on_run, unsupported
from harness.checks.speed import cost_of_ratios, path_cost
from harness.environment import ISA_HOLD_ENV, cpu_info, isa_hold
from harness.execution.scheduler import infer_all
from harness.execution.state import RunPlan, RunState, stack_sample, usable_items, with_sample
from harness.model.catalogue import Option
from harness.model.details import PathDetails
from harness.model.outcome import CheckResult, ImageCheck
from harness.model.settings import CheckSettings, EngineSettings, Profile, require
from harness.model.views import ShardView
from harness.util.errors import UserError

VARIATIONS = Option("variations", bool, False, recorded=True)
VARIATION_THREADS: Option[tuple[int, ...]] = Option("variation_threads", tuple[int, ...], (1,),
                                                    "the thread counts the threads-N paths run", recorded=True)

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
    for threads in VARIATION_THREADS.of(profile.checks):
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
    result = compare_paths("variations", "profile", reference, others, p.profile.tolerances, key_texts(p))
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


def _merged_variations(name: str, shards: Sequence[ShardView], details: Sequence[PathDetails],
                       per_image: Mapping[str, ImageCheck], stored_goldens: Collection[str] | None) -> PathDetails:
    """The paths in the order `variants` makes them: oneDNN, the thread counts as the profile lists them, BN."""
    threads = report_checks(shards).get("variation_threads")
    out = merged_path_details(details, ["onednn-off", "onednn-on",
                                        *(f"threads-{t}" for t in (threads if isinstance(threads, list) else ())),
                                        BN_UNFUSED, *ISA_LABELS])
    costs = [d.extra["bn_unfused_cost"] for d in details if isinstance(d.extra.get("bn_unfused_cost"), Mapping)]
    if costs:  # each shard timed its own images on both paths: the per-image ratios pool
        ratios = cost_of_ratios({i: r for c in costs for i, r in c["per_image"].items()})
        out = dataclasses.replace(out, extra={**out.extra, "bn_unfused_cost": ratios})
    return out


def _read_details(d: Any, where: str) -> PathDetails:
    """The path totals, and the per-image cost ratios of the unfused BN path that the merge pools."""
    details = PathDetails.from_dict(d, where)
    cost = details.extra.get("bn_unfused_cost")
    ratios = cost.get("per_image") if isinstance(cost, Mapping) else {}
    if not (isinstance(ratios, Mapping) and all(isinstance(r, (int, float)) and not isinstance(r, bool)
                                                for r in ratios.values())):
        raise UserError(f"{where}.bn_unfused_cost.per_image must be an object of numbers")
    return details


def _skip(profile: Profile) -> str | None:
    """The paths vary the oneDNN and thread keys: flat `[engine]` keys a backend owns (paddle's)."""
    spec = backend(profile.engine.backend)
    if not spec.rules.flat_keys:
        return f"oneDNN and thread variations are paddle settings; the backend is {spec.name}"
    return unsupported("variations")(profile)


def _validate(c: CheckSettings, where: str) -> None:
    require(all(t >= 1 for t in VARIATION_THREADS.of(c)), f"{where}.variation_threads", "values must be >= 1")


SPEC = CheckSpec("variations", 120, on_run(variations), key="variations", skip=_skip,
                 flag_help="oneDNN on/off, thread counts and BN fusion removed, judged by golden tolerances",
                 options=(VARIATIONS, VARIATION_THREADS), validate=_validate,
                 merge_details=_merged_variations, merge_summary=paths_summary, details=_read_details,
                 phases=lambda profile: [(label, "sample") for label in variants(profile, cpu_info()["isa"])])
