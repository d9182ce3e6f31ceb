"""The `parity` check: every image on the profile's backend against a reference backend (default: paddle), with
its own `[checks]` keys and its spec.

Like the batch-path check (`compare_paths`): exact first, then the profile's `parity_tolerances`; a key-field
value (amount, account, date) read by the reference and lost on the backend fails whatever the tolerances
say; every differing line is in the report. Latency per backend is measured on the same images in the same
run and reported side by side (absolute times only mean something within one run on a shared machine).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from harness.backends import registry as backends, resolve_engine, specs
from harness.checks.batch_paths import compare_paths, merged_details as merged_path_details
from harness.checks.batch_paths import merged_summary as paths_summary
from harness.checks.registry import CheckSpec, on_plan, on_run
from harness.execution.scheduler import infer_all
from harness.execution.state import RunPlan, RunState
from harness.model.catalogue import Option
from harness.model.details import PathDetails
from harness.model.inference import ImageOutcome
from harness.model.outcome import CheckResult, ImageCheck
from harness.model.settings import DEFAULT_BACKEND, CheckSettings, EngineSettings, Profile, require
from harness.model.views import ShardView

PARITY = Option("parity", bool, False, recorded=True)
# The reference backend, run with the profile's neutral engine settings.
PARITY_REFERENCE = Option("parity_reference", str, DEFAULT_BACKEND, "the reference backend", recorded=True)


def reference_settings(engine: EngineSettings, backend: str) -> EngineSettings:
    """The profile's backend-neutral settings on the reference backend, with that backend's defaults.

    The reference runs its own pinned pack: a profile's own model dirs are in its backend's format (ONNX for
    onnxruntime), which another runtime cannot load, and the pack is the known-good reading to compare with."""
    default = EngineSettings()
    resets = {key: getattr(default, key) for spec in specs() for key in spec.reference_resets}
    tables = {name: type(table)() for name, table in engine.tables.items()}  # every backend's at its defaults
    return dataclasses.replace(engine, backend=backend, goldens_from=None, factory=None, tables=tables, **resets,
                               det_model_dir=None, rec_model_dir=None, rec_char_dict=None)


def reference_plan(p: RunPlan) -> tuple[EngineSettings, RunPlan]:
    """The reference backend's settings and a plan with its model dirs (resolved and verified, no model load)."""
    settings = reference_settings(p.profile.engine, PARITY_REFERENCE.of(p.profile.checks))
    settings, dirs = resolve_engine(settings, p.base, p.profile.model_cache)
    return settings, dataclasses.replace(p, dirs=dirs, backend_facts={})


def latency(outcomes: Mapping[str, ImageOutcome]) -> dict[str, Any]:
    return latency_of([statistics.median(o.predict_s) for o in outcomes.values() if o.ok and o.predict_s])


def latency_of(values: list[float]) -> dict[str, Any]:
    per_image = sorted(values)
    if not per_image:
        return {"images": 0, "median_s": None, "p90_s": None, "total_s": None}
    return {"images": len(per_image), "median_s": statistics.median(per_image),
            "p90_s": per_image[min(len(per_image) - 1, int(0.9 * len(per_image)))], "total_s": sum(per_image)}


def text_differences(check: CheckResult, label: str) -> int:
    """Lines whose text differs (within tolerance or not) between the backend and the reference."""
    n = 0
    for img in check.per_image.values():
        path = img.details.get("paths", {}).get(label, {})
        n += sum(1 for line in path.get("lines", ()) if "text" in line.get("drifted", ())
                 or line.get("kind") in ("missing", "extra"))
    return n


def parity_check(reference_label: str, reference: Mapping[str, ImageOutcome], label: str,
                 outcomes: Mapping[str, ImageOutcome], tol: Any,
                 key_texts: Mapping[str, Mapping[str, str]]) -> CheckResult:
    check = compare_paths("parity", reference_label, reference, {label: outcomes}, tol, key_texts)
    unjudged = {i: ImageCheck(False, f"the reference backend {reference_label} failed: {o.error}",
                              {"reference": reference_label, "paths": {}})
                for i, o in reference.items() if not o.ok and i in outcomes}
    if unjudged:
        per_image = {**check.per_image, **unjudged}
        failed = sorted(i for i, c in per_image.items() if not c.passed)
        check = dataclasses.replace(check, passed=False, per_image=per_image,
                                    summary=f"{len(failed)} of {len(per_image)} images not at parity "
                                            f"({len(unjudged)} failed on the reference) | {check.summary}")
    lat = {reference_label: latency(reference), label: latency(outcomes)}
    paths = {k: {**v, "text_differences": text_differences(check, k)} for k, v in check.details["paths"].items()}
    ran = sum(1 for o in reference.values() if o.ok)
    details = {**check.details, "paths": paths, "latency": lat, "backend": label}
    for image_id, img in check.per_image.items():  # per image too, so `report merge` can recompute the table
        img.details["latency_s"] = {name: statistics.median(o.predict_s) for name, o in
                                    ((reference_label, reference.get(image_id)), (label, outcomes.get(image_id)))
                                    if o is not None and o.ok and o.predict_s}
    ref_med, med = lat[reference_label]["median_s"], lat[label]["median_s"]
    summary = check.summary
    if ref_med and med:
        summary += f"; latency median {label} {med:.3f} s vs {reference_label} {ref_med:.3f} s ({med / ref_med:.2f}x)"
    if ran == 0:  # a check that judged nothing must not pass
        return CheckResult("parity", False, f"the reference backend {reference_label} ran no image | {summary}",
                           check.per_image, details)
    return dataclasses.replace(check, summary=summary, details=details)


def parity_hook(p: RunPlan, state: RunState) -> CheckResult:
    ref_name = PARITY_REFERENCE.of(p.profile.checks)
    settings, ref_plan = reference_plan(p)
    reference = infer_all(ref_plan, settings, f"parity-{ref_name}", 1)
    keys = {it.id: dict(it.fields) for it in p.items if it.fields}
    return parity_check(ref_name, reference, p.profile.engine.backend, state.outcomes, p.profile.parity_tolerances,
                        keys)


def merged_details(name: str, shards: Sequence[ShardView], details: Sequence[PathDetails],
                   per_image: Mapping[str, ImageCheck], stored_goldens: Collection[str] | None) -> PathDetails:
    """`report merge`: the shards' parity details as one run's (counts add up, latency from the per-image times)."""
    merged = merged_path_details(details, ())  # one path: no order to restore
    paths = {label: dataclasses.replace(t, text_differences=sum((d.paths[label].text_differences or 0)
                                                                for d in details if label in d.paths))
             for label, t in merged.paths.items()}
    times: dict[str, list[float]] = {}
    for img in per_image.values():  # each image's own latency, as its shard measured it; a wrong-typed one is dropped
        latency_s = img.details.get("latency_s")
        for backend, t in (latency_s.items() if isinstance(latency_s, Mapping) else ()):
            if isinstance(t, (int, float)) and not isinstance(t, bool):
                times.setdefault(str(backend), []).append(t)
    return PathDetails(merged.reference, paths, {**merged.extra, "backend": details[0].extra.get("backend"),
                                                 "latency": {b: latency_of(v) for b, v in times.items()}})


def _prepare(p: RunPlan) -> None:
    reference_plan(p)  # the reference's models too are verified before any model loads


def _validate(c: CheckSettings, where: str) -> None:
    names = backends.names()
    require(PARITY_REFERENCE.of(c) in names, f"{where}.parity_reference", f"must be one of {', '.join(names)}")


def _validate_profile(profile: Profile, where: str) -> None:
    """The reference against the profile's own backend: another one, and one that runs models in-process."""
    reference = PARITY_REFERENCE.of(profile.checks)
    require(not PARITY.of(profile.checks) or reference != profile.engine.backend, f"{where}.checks.parity_reference",
            f"is the profile's own backend ({profile.engine.backend})")
    rules = {s.name: s.rules for s in specs()}
    local = [name for name, r in rules.items() if r.local_models]
    require(reference not in rules or rules[reference].local_models, f"{where}.checks.parity_reference",
            f"must be an in-process backend ({' or '.join(local) if len(local) <= 2 else ', '.join(local)})")


SPEC = CheckSpec("parity", 70, on_run(parity_hook), key="parity", options=(PARITY, PARITY_REFERENCE),
                 prepare=on_plan(_prepare), validate=_validate, validate_profile=_validate_profile,
                 merge_details=merged_details, merge_summary=paths_summary, details=PathDetails.from_dict)
