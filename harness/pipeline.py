"""The whole job behind `ocr-harness run`: plan, infer, check, write results and reports.

Inputs that can be wrong (profile, corpus, goldens, model pack) are all read and validated before the first
model loads. Each optional check is one hook on the shared `RunState`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness import atomic
from harness.backends import backend_owned_keys, unsupported_checks
from harness.checks.golden_check import golden_check, open_store, preload
from harness.checks.outcome import CheckResult, skipped
from harness.checks.paths import compare_paths
from harness.config import Profile
from harness.corpus.loader import read_image
from harness.environment import stack
from harness.errors import ImageError
from harness.golden.status import golden_status
from harness.golden.store import Golden
from harness.results import OcrResult, canonical_line
from harness.runner import RunPlan, RunState, execute, infer_all, infer_together, plan, terminal_progress

Hook = Callable[[RunPlan, RunState], None]


def write_results(out: Path, p: RunPlan, state: RunState) -> None:
    """results.jsonl: one canonical record per image in corpus order (the first repeat; errors included)."""
    lines = []
    for it in p.items:
        o = state.outcomes.get(it.id)
        record: dict[str, Any] = {"id": it.id, "error": o.error if o else "not run"}
        if o is not None and o.ok:
            record["result"] = o.runs[0].to_dict()
        lines.append(canonical_line(record))
    atomic.write_text(out / "results.jsonl", "".join(line + "\n" for line in lines))


def first_results(outcomes: dict[str, Any]) -> dict[str, OcrResult]:
    return {i: o.runs[0] for i, o in outcomes.items() if o.ok}


def bs1_path(p: RunPlan, state: RunState) -> dict[str, Any]:
    """Recognition batch size 1, one image per call: exactly what a service sees. Run once, shared by hooks."""
    if "bs1" not in state.extra_paths:
        if p.profile.engine.rec_batch_size == 1:
            state.extra_paths["bs1"] = state.outcomes
        else:
            bs1 = dataclasses.replace(p.profile.engine, rec_batch_size=1)
            state.extra_paths["bs1"] = infer_all(p, bs1, "bs1", 1)
    return state.extra_paths["bs1"]


def golden_path(p: RunPlan, state: RunState) -> dict[str, OcrResult]:
    return first_results(bs1_path(p, state) if p.profile.checks.golden_path == "bs1" else state.outcomes)


def batch_paths_hook(p: RunPlan, state: RunState) -> None:
    group = p.profile.checks.batch_path_images
    paths = {"bs1": bs1_path(p, state), "profile": state.outcomes,
             f"{group}-per-call": infer_together(p, p.profile.engine, "multi", group)}
    reference = p.profile.checks.golden_path
    others = {k: v for k, v in paths.items() if k != reference}
    keys = {it.id: dict(it.fields) for it in p.items if it.fields}
    state.checks["batch_paths"] = compare_paths("batch_paths", reference, paths[reference], others,
                                                p.profile.batch_tolerances, keys)


def variations_hook(p: RunPlan, state: RunState) -> None:
    engine = p.profile.engine
    variants = {f"onednn-{'off' if engine.enable_mkldnn else 'on'}":
                dataclasses.replace(engine, enable_mkldnn=not engine.enable_mkldnn)}
    for threads in p.profile.checks.variation_threads:
        if threads != engine.resolved_threads():
            variants[f"threads-{threads}"] = dataclasses.replace(engine, cpu_threads=threads)
    others = {label: infer_all(p, settings, label, 1) for label, settings in variants.items()}
    keys = {it.id: dict(it.fields) for it in p.items if it.fields}
    state.checks["variations"] = compare_paths("variations", "profile", state.outcomes, others, p.profile.tolerances,
                                               keys)


def audit_hook(p: RunPlan, state: RunState) -> None:
    from harness.checks.audit import audit_model_dir

    reports = {kind: audit_model_dir(d, min_variance=p.profile.checks.audit_min_variance)
               for kind, d in (("det", p.dirs.det), ("rec", p.dirs.rec))}
    failed = [k for k, r in reports.items() if not r.passed]
    summary = "; ".join(
        f"{k}: {r.bn_count} BN (folded into conv: {r.bn_folded}), {r.dropout_count} dropout, "
        f"min variance {r.variance_min if r.variance_min is not None else float('nan'):.3g}, {len(r.findings)} findings"
        + "".join(f" [{f}]" for f in r.findings[:3])
        for k, r in reports.items())
    state.checks["audit"] = CheckResult("audit", not failed, summary,
                                        details={k: r.to_dict() for k, r in reports.items()})


def probe_hook(p: RunPlan, state: RunState) -> None:
    from harness.checks.probe import probe_model_dir

    reports = {kind: probe_model_dir(d, kind=kind) for kind, d in (("det", p.dirs.det), ("rec", p.dirs.rec))}
    failed = [k for k, r in reports.items() if not r.passed]
    summary = "; ".join(f"{k}: sample alone vs with batch-mates, max diff {r.max_abs_diff:.3g} (atol {r.atol:g})"
                        for k, r in reports.items())
    state.checks["probe"] = CheckResult("probe", not failed, summary,
                                        details={k: r.to_dict() for k, r in reports.items()})


def bn_drift_hook(p: RunPlan, state: RunState) -> None:
    from harness.checks.bn_drift import bn_drift

    # Sampled from the whole selection, not this shard, so every shard of a run measures the same images.
    images: list[np.ndarray] = []
    for it in p.corpus.items:
        if len(images) == p.profile.checks.bn_drift_images:
            break
        if it.problem is None:
            with contextlib.suppress(ImageError):
                images.append(read_image(it.path, expected_sha256=it.sha256, max_pixels=p.profile.max_image_pixels))
    if not images:
        state.checks["bn_drift"] = skipped("bn_drift", "no readable image")
        return
    report = bn_drift(p.dirs.det, images, kind="det", threshold=p.profile.checks.bn_drift_threshold)
    state.checks["bn_drift"] = CheckResult("bn_drift", report.passed, f"det on {len(images)} images: max score {report.max_score:.3f}, "
                                           f"{len(report.flagged)} of {len(report.layers)} BN layers drifted",
                                           details={"det": report.to_dict()})


def accuracy_hook(p: RunPlan, state: RunState) -> None:
    """Per-image accuracy (kept in the report for merging) and its corpus aggregate, from the same rows."""
    from harness.metrics import corpus_accuracy, image_accuracy

    current = first_results(state.outcomes)
    rows = []
    for it in p.items:
        if it.truth and it.id in current:
            acc = image_accuracy([(t.text, t.poly) for t in it.truth], dict(it.fields), current[it.id])
            state.image_accuracy[it.id] = acc
            rows.append((it.id, it.template, it.tags, acc))
    state.accuracy = corpus_accuracy(rows) if rows else None


def served_settings_hook(p: RunPlan, state: RunState) -> None:
    from harness.checks.served import served_settings_check

    state.checks["served_settings"] = served_settings_check(p.profile.engine, p.backend_facts)


def shared_golden_keys(profile: Profile, store: Any, current_stack: dict[str, Any]) -> list[str]:
    """Stack keys not to compare when the profile declares it shares another backend's goldens (and the
    golden set was made by that backend)."""
    meta = store.meta()
    if profile.engine.goldens_from is None or meta is None:
        return []
    if meta.stack.get("backend", "paddle") != profile.engine.goldens_from:
        return []
    return backend_owned_keys(meta.stack, current_stack)


def hooks_for(profile: Profile, golden_hook: Hook | None) -> list[Hook]:
    c = profile.checks
    unsupported = unsupported_checks(profile)
    chosen: list[Hook] = [served_settings_hook] if profile.engine.backend == "http" else []
    if c.batch_paths and "batch_paths" not in unsupported:
        chosen.append(batch_paths_hook)
    if c.variations and "variations" not in unsupported:
        chosen.append(variations_hook)
    if c.parity:
        from harness.checks.parity import parity_hook

        chosen.append(parity_hook)
    if golden_hook is not None:
        chosen.append(golden_hook)
    for enabled, hook, name in ((c.audit, audit_hook, "audit"), (c.probe, probe_hook, "probe"),
                                (c.bn_drift, bn_drift_hook, "bn_drift")):
        if enabled and name not in unsupported:
            chosen.append(hook)
    return chosen


def run_and_report(profile: Profile, base: Path, out: Path, *, shard: tuple[int, int] | None = None,
                   html: bool = False, history: Path | None = None) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    p = plan(profile, base, shard=shard, log_dir=out)
    goldens: dict[str, Golden] = {}
    golden_hook: Hook | None = None
    if profile.checks.goldens:
        store = open_store(profile, base)
        goldens = preload(store, [it.id for it in p.items])

        def golden_hook(p: RunPlan, state: RunState) -> None:
            current_stack = stack(p.profile.engine, p.dirs.file_hashes(), dict(p.backend_facts))
            shared = shared_golden_keys(p.profile, store, current_stack)
            status = golden_status(store, [it.id for it in p.items], p.corpus.selection_is_complete and p.shard is None,
                                   current_stack, ignore_keys=shared)
            check = golden_check(p.items, golden_path(p, state), goldens, p.profile, status)
            if shared:  # declared: this backend reads like the goldens' backend within the profile's tolerances
                check = dataclasses.replace(
                    check, summary=f"{check.summary} (goldens shared from {p.profile.engine.goldens_from})",
                    details={**check.details, "shared_goldens": {"from": p.profile.engine.goldens_from,
                                                                 "not_compared": shared}})
            state.checks["golden"] = check

    def finish(p: RunPlan, state: RunState) -> None:
        for name, why in unsupported_checks(profile).items():
            if getattr(profile.checks, name):
                state.checks.setdefault(name, skipped(name, why))
        state.checks.setdefault("parity", skipped("parity", "disabled in profile"))
        for name in ("golden", "batch_paths", "variations", "audit", "probe", "bn_drift"):
            state.checks.setdefault(name, skipped(name, "disabled in profile"))
        if profile.checks.accuracy:
            accuracy_hook(p, state)

    if profile.checks.parity:  # the reference's models too are verified before any model loads
        from harness.checks.parity import reference_plan

        reference_plan(p)
    report, state = execute(p, progress=terminal_progress(), extra_checks=[*hooks_for(profile, golden_hook), finish])
    current = first_results(state.outcomes)
    write_results(out, p, state)
    from harness.report.writer import write_reports

    by_id = {it.id: it for it in p.items}

    def load(image_id: str) -> np.ndarray | None:
        item = by_id.get(image_id)
        try:
            return read_image(item.path, max_pixels=profile.max_image_pixels) if item else None
        except ImageError:  # the image already failed the run; the HTML shows it without a picture
            return None

    write_reports(out, report, current, load, html=html, history=history,
                  goldens={i: g.result for i, g in goldens.items()})
    return report
