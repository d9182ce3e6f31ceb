"""`ocr-harness report merge`: the outputs of shard runs (`run --shard K/N`) combined into the report an
unsharded run of the same profile, stack and corpus selection writes.

Recomputed over the whole selection, equal to the unsharded run: the images (taken from the shards as they
are, in corpus order by their `index`), every per-image check (verdicts, summary, failed images, and the
corpus-wide details: golden status and summary, batch-path statistics, repeat count), `passed`/`exit_code`,
`corpus` (`selected`, `complete`, `shard` = null), accuracy (re-aggregated from each image's accuracy row),
`timing` images/median/p90 (over every image's own median), and results.jsonl (concatenated in corpus order).

Taken from the shards and required to agree (else refused): schema, profile, stack, the corpus selection
(subset, manifest, digest of the selected ids and images), model-level checks (audit, probe: they read the
model files, not the images; a sharded run judges them on shard 1 only, the others leave them to it, and the
merge takes shard 1's verdict and says so), and the golden status facts (meta present, stack differences).

Volatile, allowed to differ from an unsharded run:
- `started_at`: the earliest shard's; `duration_s` and `timing.wall_s`: the longest shard's (shards run side by
  side, so that is the wall time of the fan-out; the machine time is the sum);
- `timing.model_load_s`: the median of the shards' medians; each image's `timings` (measured where it ran),
  and so `timing.predict_median_s`/`predict_p90_s`, which are computed as a run computes them but from
  measurements no two runs share;
- each image's `judged_on` (the node id and worker pid that judged it: where it ran, as in the shard);
- `environment` and `corpus.root`: shard 1's (checkout paths and hosts may differ; what decides outputs is in
  `stack` and the selection digest, which may not);
- worker logs: they stay in the shard directories.

Inherently different, reported rather than hidden: the several-images-per-call batch path batches images of
one shard, so its batch-mates (and possibly its last bits) differ from an unsharded run's. `bn_drift` samples
the first images of the whole selection, so shards agree; should several run it and not agree, it is reported
per shard.

Orphaned goldens are judged, as in an unsharded run, only when the selection is the whole corpus; that needs
the golden store (harness.run.shards.merged_files.checkout_settings). Without it they are left unjudged and the
caller is told.

Shard files come from other machines and jobs: they are input, never settings. Every field the merge reads is
checked first (harness.report.shard_input), then read as the typed run report (harness.model.report); what is
wrong with a shard is a UserError naming it (exit 2), and any other exception here is the merge's own bug
(exit 3, with its traceback). Where the goldens are and how large a picture may be are the merging checkout's
(its harness.toml, the shards' profile), never a shard's `profile.settings`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.checks.registry import CheckSpec
from harness.model.details import Details
from harness.model.outcome import FIRST_SHARD_KEY, CheckResult, ImageCheck, from_images
from harness.model.report import ImageRecord, RunReport
from harness.model.results import OcrResult
from harness.model.timing import timing_summary
from harness.metrics import corpus_accuracy
from harness.run.shards.refusals import validate_shards
from harness.run.shards.shard_run import ShardRun
from harness.sampling import sample_note
from harness.util.errors import UserError


@dataclass(frozen=True)
class MergedRun:
    report: RunReport
    results: tuple[str, ...]

    def current(self) -> dict[str, OcrResult]:
        out = {}
        for line in self.results:
            record = json.loads(line)
            if record.get("result") is not None:
                out[record["id"]] = OcrResult.from_dict(record["result"])
        return out


def merge_shards(shards: Sequence[ShardRun], checks: Sequence[CheckSpec], *,
                 stored_goldens: Collection[str] | None = None, allow_mixed_stacks: bool = False) -> MergedRun:
    """The unsharded run's report and results; `checks` is the check catalogue (harness.checks.registry.specs()):
    how each check merges is its spec's. `stored_goldens` (ids in the golden store) lets orphans be judged when
    the selection is the whole corpus. `allow_mixed_stacks`: shards on different stacks (never different model
    files) merge too; see `_stacks`. A shard that cannot be merged is a UserError naming it; any other exception
    is a bug of the merge and propagates as one."""
    ordered = validate_shards(shards, allow_mixed_stacks=allow_mixed_stacks)
    return _merge(ordered, {spec.name: spec for spec in checks}, stored_goldens)


def _merge(ordered: Sequence[ShardRun], specs: Mapping[str, CheckSpec],
           stored_goldens: Collection[str] | None) -> MergedRun:
    first = ordered[0].report
    stack, stacks = _stacks(ordered)
    mixed = stacks is not None
    rows: list[tuple[int, int, int, ImageRecord, str]] = []
    for s in ordered:
        ids = [json.loads(line).get("id") for line in s.results]
        if ids != [img.id for img in s.report.images]:
            raise UserError(f"{s.source}: results.jsonl does not list the images of its report.json")
        label = "{}/{}".format(*s.shard) if mixed else None
        rows += [(img.index or 0, s.shard[0], n, dataclasses.replace(img, stack=label) if label else img, line)
                 for n, (img, line) in enumerate(zip(s.report.images, s.results, strict=True))]
    rows.sort(key=lambda r: r[:3])
    images = [r[3] for r in rows]
    selection = first.corpus["selection"]
    if len(images) != selection["images"] or sorted(r[0] for r in rows) != list(range(selection["images"])):
        raise UserError(f"the shards hold {len(images)} images, the selection has {selection['images']}: "
                        "not the shards of one run")
    judged = stored_goldens if selection.get("complete") else None
    checks = {name: _merge_check(specs.get(name), name, ordered, images, judged) for name in first.checks}
    report = RunReport(
        passed=all(c.passed for c in checks.values()),
        started_at=min(s.report.started_at for s in ordered),
        duration_s=max(s.report.duration_s or 0.0 for s in ordered),
        profile=first.profile,
        environment=first.environment,
        stack=stack,
        corpus=_corpus(first.corpus, ordered, len(images), bool(selection.get("complete"))),
        checks=checks,
        images=tuple(images),
        accuracy=_accuracy(images),
        timing=timing_summary(
            [t for img in images if img.timings and (t := img.predict_s) is not None],
            [t for s in ordered if (t := s.report.timing.get("model_load_s")) is not None],
            max(s.report.timing["wall_s"] for s in ordered), _phases(ordered)),
        extra={**first.extra,  # future keys: agreed in validate_shards
               **({"stacks": stacks} if stacks is not None else {})},
    )
    return MergedRun(report, tuple(r[4] for r in rows))


def _stacks(shards: Sequence[ShardRun]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The merged `stack`, and each shard's when they differ (`--allow-mixed-stacks`): then `stack` holds only
    what every shard shares, `stacks` maps "K/N" to each shard's whole stack, and every image names its shard's
    under `stack`. Each image was judged on its own shard, goldens against its own stack's differences."""
    first = shards[0].report.stack
    if all(s.report.stack == first for s in shards):
        return dict(first), None
    common = {k: v for k, v in first.items() if all(s.report.stack.get(k, v) == v and k in s.report.stack
                                                     for s in shards)}
    return common, {"{}/{}".format(*s.shard): dict(s.report.stack) for s in shards}


def _corpus(first: Mapping[str, Any], shards: Sequence[ShardRun], selected: int, complete: bool) -> dict[str, Any]:
    """The unsharded run's `corpus`; shards started by `--shard auto` are listed with the engine that named them."""
    out = {k: v for k, v in first.items() if k != "shard_source"}
    out.update(selected=selected, complete=complete, shard=None)
    sources = {"{}/{}".format(*s.shard): s.report.corpus.get("shard_source") for s in shards}
    if any(v is not None for v in sources.values()):
        out["shard_sources"] = sources
    return out


# --- checks ----------------------------------------------------------------------------------------------------

def _merge_check(spec: CheckSpec | None, name: str, shards: Sequence[ShardRun], images: Sequence[ImageRecord],
                 stored_goldens: Collection[str] | None) -> CheckResult:
    """A model-level check that shards 2..N left to shard 1 (harness.model.outcome.left_to_first_shard) is shard 1's
    verdict, and says so; a shard that ran it anyway is held to the rules below. Shard 1 must have judged it."""
    left = [FIRST_SHARD_KEY in s.report.checks[name].details for s in shards]
    if not any(left):
        return _merge_ran(spec, name, shards, images, stored_goldens)
    n = shards[0].shard[1]
    if left[0]:
        raise UserError(f"{shards[0].label}: check {name!r} is left to shard 1/{n} by shard 1 itself")
    ran = [s for s, x in zip(shards, left) if not x]
    merged = _merge_ran(spec, name, ran, images, stored_goldens)
    return dataclasses.replace(merged, summary=f"{merged.summary} [judged on shard 1/{n}"
                                               f"{'' if len(ran) == 1 else ' and ' + str(len(ran) - 1) + ' more'}, "
                                               f"left to it by the other shards]")


def _merge_ran(spec: CheckSpec | None, name: str, shards: Sequence[ShardRun], images: Sequence[ImageRecord],
               stored_goldens: Collection[str] | None) -> CheckResult:
    """How a check merges is its spec's (harness.checks.registry): judged image by image (harness.model.outcome.
    from_images, even when no image ran; so is any unknown check with per-image verdicts), or model-level (every
    shard must say the same, or, for a check measured on a sample, reported per shard)."""
    results = [s.report.checks[name] for s in shards]
    per_image = {img.id: c for img in images if (c := img.checks.get(name)) is not None}
    per_image_check = spec.level == "image" if spec is not None else False
    if all(r.skipped for r in results) or not (per_image or per_image_check):
        if all(r == results[0] for r in results):
            return _same_on_every_shard(spec, results)
        if spec is not None and spec.per_shard:
            return _per_shard(spec, shards, results)
        a, b = next((shards[0], s) for s, r in zip(shards, results) if r != results[0])
        raise UserError(f"cannot merge {b.label} with {a.label}: model-level check {name!r} differs "
                        f"({b.report.checks[name].summary!r} vs {a.report.checks[name].summary!r})")
    what, tail = _phrase(name, shards, results)
    details = _merged_details(spec, name, shards, results, per_image, stored_goldens)
    check = from_images(name, per_image, what, details)
    if spec is not None and spec.merge_summary is not None:
        merge_summary = spec.merge_summary

        def summarise() -> str:
            return merge_summary(check.summary, check.passed, details, results[0].summary, tail)

        summary = summarise() if spec.details is not None else _hook(name, summarise)
    else:
        summary = check.summary + (tail if not check.passed else "")
    summary += sample_note(details.get("sample"))
    return dataclasses.replace(check.as_reported(), summary=summary)


def _merged_details(spec: CheckSpec | None, name: str, shards: Sequence[ShardRun], results: Sequence[CheckResult],
                    per_image: Mapping[str, ImageCheck], stored_goldens: Collection[str] | None) -> dict[str, Any]:
    """The check's details over every shard. A check that types its details (CheckSpec.details) has each shard's
    read strictly first, so what its merge then does wrong is its own bug; one that does not is handed the raw
    mappings, and what it cannot read is taken for the shards' input (`_hook`)."""
    merge = spec.merge_details if spec is not None and spec.merge_details is not None else _agreed_details
    if spec is None or spec.details is None:
        merged: Mapping[str, Any] = _hook(name, lambda: merge(name, shards, [r.details for r in results], per_image,
                                                           stored_goldens))
        return dict(merged)
    read = spec.details
    typed = [read(r.details, f"{s.source}/report.json: checks.{name}.details") for s, r in zip(shards, results)]
    record: Details = merge(name, shards, typed, per_image, stored_goldens)  # a record of the type it reads
    return record.to_dict()


def _hook(name: str, call: Any) -> Any:
    """A check's own merge function reading the shards' raw details of that check: what it cannot read came
    from the shards' files (shard_input checks every other field), so it is input, named by check."""
    try:
        return call()
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise UserError(f"cannot merge check {name!r}: the shards' reports hold details this version cannot read "
                        f"({type(e).__name__}: {e})") from None


def _phrase(name: str, shards: Sequence[ShardRun], results: Sequence[CheckResult]) -> tuple[str, str]:
    """From a failing shard's summary `N of M images <what>: <ids>[<tail>]` (harness.model.outcome.from_images):
    what its images failed at, and what the check appended."""
    for s, r in zip(shards, results):
        failed = sorted(r.failed_images)
        if not failed:
            continue
        total = sum(1 for img in s.report.images if name in img.checks)
        head = f"{len(failed)} of {total} images "
        ids = ": " + ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        end = r.summary.find(ids, len(head))
        if not r.summary.startswith(head) or end < 0:
            raise UserError(f"{s.source}: check {name!r} summary {r.summary!r} is not in from_images' form")
        return r.summary[len(head):end], r.summary[end + len(ids):]
    return "", ""


def _agreed_details(name: str, shards: Sequence[ShardRun], details: Sequence[Any],
                    per_image: Mapping[str, ImageCheck], stored_goldens: Collection[str] | None) -> Any:
    """A check with no merge of its own: the shards must agree on its details (raw or typed), taken as they are."""
    if any(d != details[0] for d in details):
        raise UserError(f"check {name!r}: the shards' details differ and this version cannot merge them")
    return details[0]


def _judged(spec: CheckSpec | None, results: Sequence[CheckResult]) -> int:
    """A check every shard runs on its own calls (`every_shard`: speed, served settings) judged them all; any
    other check the shards ran judged the same model or sample again (the most any shard judged)."""
    counts = [r.judged for r in results]
    return sum(counts) if spec is not None and spec.every_shard else max(counts, default=0)


def _same_on_every_shard(spec: CheckSpec | None, results: Sequence[CheckResult]) -> CheckResult:
    """Every shard said the same; a check every shard runs on its own calls judged all of their calls."""
    merged = results[0]
    if spec is not None and spec.every_shard and len(results) > 1 and not merged.skipped:
        # the summary, the same on every shard, reads true for the run
        merged = dataclasses.replace(merged, judged=_judged(spec, results))
    return merged


def _per_shard(spec: CheckSpec | None, shards: Sequence[ShardRun], results: Sequence[CheckResult]) -> CheckResult:
    labels = ["{}/{}".format(*s.shard) for s in shards]
    unit = next((r.unit for r in results if not r.skipped), results[0].unit)
    return CheckResult(
        results[0].name, passed=all(r.passed for r in results), skipped=all(r.skipped for r in results),
        summary="; ".join(f"shard {label}: {r.summary}" for label, r in zip(labels, results)),
        failed=tuple(sorted({i for r in results for i in r.failed_images})), judged=_judged(spec, results),
        unit=unit, details={"per_shard": {label: r.details for label, r in zip(labels, results)}})


def _phases(shards: Sequence[ShardRun]) -> dict[str, dict[str, Any]]:
    """Each phase as the shards ran it side by side: the longest shard's wall time, all shards' images."""
    out: dict[str, dict[str, Any]] = {}
    for s in shards:
        for label, ph in s.report.timing.get("phases", {}).items():
            o = out.setdefault(label, {"wall_s": 0.0, "images": 0, "calls_per_image": ph["calls_per_image"]})
            o["wall_s"] = max(o["wall_s"], ph["wall_s"])
            o["images"] += ph["images"]
            if "workers_started" in ph:  # inference passes only
                o["workers_started"] = max(o.get("workers_started", 0), ph["workers_started"])
    return out


def _accuracy(images: Sequence[ImageRecord]) -> dict[str, Any] | None:
    """The corpus accuracy from each image's own row, as a run aggregates it."""
    rows = [(img.id, img.template, img.tags, img.accuracy) for img in images if img.accuracy is not None]
    return corpus_accuracy(rows) if rows else None
