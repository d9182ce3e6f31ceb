"""The whole job behind `ocr-harness run`: plan, infer, check, write results and reports.

Inputs that can be wrong (profile, corpus, goldens, model pack) are all read and validated before the first
model loads. Each optional check is one hook on the shared `RunState`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness import atomic
from harness.backends import backend_owned_keys, unsupported_checks
from harness.checks.golden_check import golden_check, open_store, preload
from harness.checks.outcome import CheckResult, skipped
from harness.checks.paddle_child import ChildError
from harness.checks.paths import compare_paths
from harness.config import EngineSettings, Profile
from harness.corpus.loader import content_sha256, read_image
from harness.environment import stack
from harness.errors import ImageError, InternalError
from harness.golden.status import golden_status
from harness.golden.store import Golden
from harness.incomplete import TRACEBACK_FILE, Stop, write_incomplete
from harness.results import OcrResult, canonical_line
from harness.runner import (RunPlan, RunState, execute, infer_all, infer_together, machine_paths, plan,
                            stack_sample, terminal_progress, usable_items, with_sample)
from harness.worker import ImageOutcome

Hook = Callable[[RunPlan, RunState], None]


def write_results(out: Path, p: RunPlan, state: RunState) -> None:
    """results.jsonl: one canonical record per image in corpus order (the first repeat; errors included)."""
    paths = machine_paths(p)
    lines = []
    for it in p.items:
        o = state.outcomes.get(it.id)
        error = (paths.text(o.error) if o.error else None) if o is not None else "not run"
        record: dict[str, Any] = {"id": it.id, "error": error}
        if o is not None and o.ok:
            record["result"] = o.runs[0].to_dict()
        lines.append(canonical_line(record))
    atomic.write_text(out / "results.jsonl", "".join(line + "\n" for line in lines))


def first_results(outcomes: dict[str, Any]) -> dict[str, OcrResult]:
    return {i: o.runs[0] for i, o in outcomes.items() if o.ok}


def workers_for(p: RunPlan, settings: EngineSettings) -> int:
    """Worker processes for an extra path: as many cores busy as the profile's workers x threads, whatever
    thread count the path's settings take (a threads-2 variation of 2x1 workers runs one worker)."""
    return max(1, p.profile.workers * p.profile.engine.resolved_threads() // settings.resolved_threads())


def bs1_path(p: RunPlan, state: RunState) -> dict[str, Any]:
    """Recognition batch size 1, one image per call: exactly what a service sees. Run once, shared by hooks."""
    if "bs1" not in state.extra_paths:
        if p.profile.engine.rec_batch_size == 1:
            state.extra_paths["bs1"] = state.outcomes
        else:
            bs1 = dataclasses.replace(p.profile.engine, rec_batch_size=1)
            with state.phase("bs1", len(usable_items(p))):
                state.extra_paths["bs1"] = infer_all(p, bs1, "bs1", 1, workers_for(p, bs1))
    return state.extra_paths["bs1"]


def golden_path(p: RunPlan, state: RunState) -> dict[str, ImageOutcome]:
    """The outcomes of the path the goldens were made on."""
    return bs1_path(p, state) if p.profile.checks.golden_path == "bs1" else state.outcomes


def batch_paths_hook(p: RunPlan, state: RunState) -> None:
    group = p.profile.checks.batch_path_images
    sample, info = stack_sample(p)  # bs1 is the service path: every image; batching is a stack property
    multi = f"{group}-per-call"
    with state.phase("multi", len(usable_items(sample))):
        together = infer_together(sample, p.profile.engine, "multi", group, p.profile.workers)
    paths = {"bs1": bs1_path(p, state), "profile": state.outcomes, multi: together}
    reference = p.profile.checks.golden_path
    others = {k: v for k, v in paths.items() if k != reference}
    keys = {it.id: dict(it.fields) for it in p.items if it.fields}
    check = compare_paths("batch_paths", reference, paths[reference], others, p.profile.batch_tolerances, keys,
                          only={multi: {it.id for it in sample.items}})
    state.checks["batch_paths"] = with_sample(check, info)


def variations_hook(p: RunPlan, state: RunState) -> None:
    engine = p.profile.engine
    variants = {f"onednn-{'off' if engine.enable_mkldnn else 'on'}":
                dataclasses.replace(engine, enable_mkldnn=not engine.enable_mkldnn)}
    for threads in p.profile.checks.variation_threads:
        if threads != engine.resolved_threads():
            variants[f"threads-{threads}"] = dataclasses.replace(engine, cpu_threads=threads)
    sample, info = stack_sample(p)
    others = {}
    for label, settings in variants.items():
        with state.phase(label, len(usable_items(sample))):
            others[label] = infer_all(sample, settings, label, 1, workers_for(p, settings))
    keys = {it.id: dict(it.fields) for it in p.items if it.fields}
    reference = {it.id: state.outcomes[it.id] for it in sample.items if it.id in state.outcomes}
    state.checks["variations"] = with_sample(compare_paths("variations", "profile", reference, others,
                                                           p.profile.tolerances, keys), info)


def audit_hook(p: RunPlan, state: RunState) -> None:
    from harness.checks.audit import audit_model_dir

    reports = {kind: audit_model_dir(d, min_variance=p.profile.checks.audit_min_variance)
               for kind, d in (("det", p.dirs.det), ("rec", p.dirs.rec))}
    failed = [k for k, r in reports.items() if not r.passed]
    summary = "; ".join(
        f"{k}: {r.headline()}, min variance {r.variance_min if r.variance_min is not None else float('nan'):.3g}, "
        f"{len(r.findings)} findings" + "".join(f" [{f}]" for f in r.findings[:3])
        for k, r in reports.items())
    state.checks["audit"] = CheckResult("audit", not failed, summary, details={k: r.to_dict() for k, r in reports.items()},
                                        judged=len(reports), unit="models")


def probe_hook(p: RunPlan, state: RunState) -> None:
    from harness.checks.probe import probe_model_dir

    reports = {kind: probe_model_dir(d, kind=kind) for kind, d in (("det", p.dirs.det), ("rec", p.dirs.rec))}
    failed = [k for k, r in reports.items() if not r.passed]
    summary = "; ".join(f"{k}: sample alone vs with batch-mates, max diff {r.max_abs_diff:.3g} (atol {r.atol:g})"
                        for k, r in reports.items())
    state.checks["probe"] = CheckResult("probe", not failed, summary,
                                        details={k: r.to_dict() for k, r in reports.items()}, judged=len(reports),
                                        unit="models")


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
    if not images:  # judged nothing: never a pass
        state.checks["bn_drift"] = CheckResult("bn_drift", False, "judged nothing: no readable image to measure")
        return
    report = bn_drift(p.dirs.det, images, kind="det", threshold=p.profile.checks.bn_drift_threshold)
    if not report.layers:
        state.checks["bn_drift"] = CheckResult("bn_drift", False, "judged nothing: the det model has no BN layer left "
                                               "(all folded into conv); disable bn_drift for it",
                                               details={"det": report.to_dict()})
        return
    state.checks["bn_drift"] = CheckResult("bn_drift", report.passed, f"det on {len(images)} images: max score {report.max_score:.3f}, "
                                           f"{len(report.flagged)} of {len(report.layers)} BN layers drifted",
                                           details={"det": report.to_dict()}, judged=len(images))


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


def child_check(name: str, hook: Hook) -> Hook:
    """audit, probe and bn_drift run Paddle in a child process: a child that dies (a signal, an exception, a
    timeout) fails that check with the reason, and the run goes on to its other checks and reports."""
    def guarded(p: RunPlan, state: RunState) -> None:
        try:
            with state.phase(name, 0):
                hook(p, state)
        except ChildError as e:
            reason = machine_paths(p).text(str(e)).strip()
            state.checks[name] = CheckResult(name, False, f"{name} did not run: {reason.splitlines()[0]}",
                                             details={"error": reason})
    return guarded


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
    for enabled, name, hook in ((c.audit, "audit", audit_hook), (c.probe, "probe", probe_hook),
                                (c.bn_drift, "bn_drift", bn_drift_hook)):
        if enabled and name not in unsupported:
            chosen.append(child_check(name, hook))
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
            hashes = {it.id: content_sha256(it) for it in p.items}
            current_stack = stack(p.profile.golden_engine(), p.dirs.file_hashes(), dict(p.backend_facts))
            shared = shared_golden_keys(p.profile, store, current_stack)
            status = golden_status(store, [it.id for it in p.items], p.corpus.selection_is_complete and p.shard is None,
                                   current_stack, ignore_keys=shared, image_sha256=hashes, loaded=goldens)
            check = golden_check(p.items, golden_path(p, state), p.profile.checks.golden_path, goldens, p.profile,
                                 status, hashes)
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
    from harness.report.writer import write_reports

    by_id = {it.id: it for it in p.items}

    def load(image_id: str) -> np.ndarray | None:
        item = by_id.get(image_id)
        try:
            return read_image(item.path, max_pixels=profile.max_image_pixels) if item else None
        except ImageError:  # the image already failed the run; the HTML shows it without a picture
            return None

    started, t0 = dt.datetime.now(dt.timezone.utc), time.perf_counter()
    state = RunState()
    try:
        report, state = execute(p, progress=terminal_progress(),
                                extra_checks=[*hooks_for(profile, golden_hook), finish], state=state)
        write_results(out, p, state)
        write_reports(out, report, first_results(state.outcomes), load, html=html, history=history,
                      goldens={i: g.result for i, g in goldens.items()})
    except BaseException as e:  # every way a run can stop leaves reports marked incomplete
        stop = Stop.from_exception(e, out)

        def write(report: dict[str, Any]) -> None:
            write_results(out, p, state)
            write_reports(out, report, first_results(state.outcomes), load, html=html,
                          goldens={i: g.result for i, g in goldens.items()})

        write_incomplete(p, state, started, time.perf_counter() - t0, stop, write, out)
        if stop.internal:
            raise InternalError(stop.reason, out / TRACEBACK_FILE) from e
        raise
    return report
