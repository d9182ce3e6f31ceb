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
the golden store (`checkout_settings`). Without it they are left unjudged and the caller is told.

Shard files come from other machines and jobs: they are input, never settings. Every field the merge reads is
checked first (harness.report.shard_input); where the goldens are and how large a picture may be are the
merging checkout's (its harness.toml, the shards' profile), never a shard's `profile.settings`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from harness.checks.registry import CheckSpec
from harness.config import find_config, load_profile
from harness.corpus.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from harness.corpus.loader import read_image
from harness.golden.status import stack_differences
from harness.golden.store import GoldenStore
from harness.metrics import ImageAccuracy, corpus_accuracy
from harness.model.catalogue import Catalogue
from harness.model.outcome import FIRST_SHARD_KEY, ImageCheck, from_images
from harness.model.report import CheckLayout, RunReport
from harness.model.results import REPORT_SCHEMA, OcrResult
from harness.model.timing import timing_summary
from harness.model.settings import Profile
from harness.report.formats import check_asked, needs_goldens
from harness.report.shard_input import check_report, check_results_line, read_report
from harness.report.writer import write_reports
from harness.sampling import sample_note
from harness.util import atomic
from harness.util.errors import ImageError, UserError
from harness.util.files import LISTING_MAX, read_input
from harness.util.jsonl import jsonl_lines


@dataclass(frozen=True)
class ShardRun:
    """One shard's report.json and results.jsonl lines (one per image, in the report's image order)."""

    source: str  # the directory, for messages
    data: Mapping[str, Any]  # report.json as read: input, checked (validate_shards) before the merge reads it
    results: tuple[str, ...]

    @functools.cached_property
    def report(self) -> RunReport:
        """The shard's typed run report, read from `data` once (merge reads it per image: reading it per access
        made a merge quadratic in the images of a shard)."""
        return RunReport.from_dict(self.data, CheckLayout())

    @classmethod
    def read(cls, directory: Path) -> ShardRun:
        report = read_report(directory / "report.json", f"{directory}: no report.json (is it the --out of a "
                                                         "`ocr-harness run --shard K/N`?)")
        try:
            lines = jsonl_lines(read_input(directory / "results.jsonl", LISTING_MAX).decode("utf-8"))
        except (OSError, UnicodeDecodeError):
            raise UserError(f"{directory}: no readable results.jsonl") from None
        where = directory / "results.jsonl"
        return cls(str(directory), report, tuple(check_results_line(line, f"{where}:{n}")
                                                 for n, line in lines))

    @property
    def shard(self) -> tuple[int, int]:
        k, n = self.data["corpus"]["shard"]
        return int(k), int(n)

    @property
    def label(self) -> str:
        return "{}/{} ({})".format(*self.shard, self.source)


@dataclass(frozen=True)
class MergedRun:
    report: dict[str, Any]
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
    files) merge too; see `_stacks`."""
    ordered = validate_shards(shards, allow_mixed_stacks=allow_mixed_stacks)
    try:
        return _merge(ordered, {spec.name: spec for spec in checks}, stored_goldens)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        # Every field the merge reads was checked (shard_input) and each check's details are caught by name
        # (_merge_named); anything still unreadable came from the shards' files too: input, not a bug.
        raise UserError(f"cannot merge the shards: their reports hold a field this version cannot read "
                        f"({type(e).__name__}: {e})") from None


def _merge(ordered: Sequence[ShardRun], specs: Mapping[str, CheckSpec],
           stored_goldens: Collection[str] | None) -> MergedRun:
    first = ordered[0].report
    stack, stacks = _stacks(ordered)
    mixed = stacks is not None
    rows = []
    for s in ordered:
        ids = [json.loads(line).get("id") for line in s.results]
        if ids != [img["id"] for img in s.report.images]:
            raise UserError(f"{s.source}: results.jsonl does not list the images of its report.json")
        label = "{}/{}".format(*s.shard) if mixed else None
        rows += [(img["index"], s.shard[0], n, {**img, "stack": label} if label else img, line)
                 for n, (img, line) in enumerate(zip(s.report.images, s.results, strict=True))]
    rows.sort(key=lambda r: r[:3])
    images = [r[3] for r in rows]
    selection = first.corpus["selection"]
    if len(images) != selection["images"] or sorted(r[0] for r in rows) != list(range(selection["images"])):
        raise UserError(f"the shards hold {len(images)} images, the selection has {selection['images']}: "
                        "not the shards of one run")
    judged = stored_goldens if selection["complete"] else None
    checks = {name: _merge_named(specs.get(name), name, ordered, images, judged) for name in first.checks}
    report = RunReport(
        passed=all(c["passed"] for c in checks.values()),
        started_at=min(s.report.started_at for s in ordered),
        duration_s=max(s.report.duration_s for s in ordered),
        profile=first.profile,
        environment=first.environment,
        stack=stack,
        corpus=_corpus(first.corpus, ordered, len(images), selection["complete"]),
        checks=checks,
        images=tuple(images),
        accuracy=_accuracy(images),
        timing=timing_summary(
            [img["timings"]["predict_s"] for img in images if img["timings"]],
            [s.report.timing["model_load_s"] for s in ordered if s.report.timing["model_load_s"] is not None],
            max(s.report.timing["wall_s"] for s in ordered), _phases(ordered)),
        extra={**first.extra,  # future keys: agreed in validate_shards
               **({"stacks": stacks} if stacks is not None else {})},
    ).to_dict()
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
    return common, {"{}/{}".format(*s.shard): s.report.stack for s in shards}


def _corpus(first: Mapping[str, Any], shards: Sequence[ShardRun], selected: int, complete: bool) -> dict[str, Any]:
    """The unsharded run's `corpus`; shards started by `--shard auto` are listed with the engine that named them."""
    out = {k: v for k, v in first.items() if k != "shard_source"}
    out.update(selected=selected, complete=complete, shard=None)
    sources = {"{}/{}".format(*s.shard): s.report.corpus.get("shard_source") for s in shards}
    if any(v is not None for v in sources.values()):
        out["shard_sources"] = sources
    return out


# --- refusals --------------------------------------------------------------------------------------------------

def validate_shards(shards: Sequence[ShardRun], *, allow_mixed_stacks: bool = False) -> list[ShardRun]:
    """The shards ordered 1..N, or a UserError saying why they are not the shards of one run. Stacks must be
    equal unless `allow_mixed_stacks`, and even then the model files must be the same."""
    if not shards:
        raise UserError("nothing to merge: give the output directories of the shard runs")
    for s in shards:  # the files as read, before anything reads them typed
        if s.data.get("schema") != REPORT_SCHEMA:
            raise UserError(f"{s.source}: report schema {s.data.get('schema')!r}, expected {REPORT_SCHEMA!r}")
        check_report(s.data, f"{s.source}/report.json")
        corpus = s.data.get("corpus") or {}
        if not corpus.get("shard"):
            raise UserError(f"{s.source}: not a shard run (made without --shard K/N); nothing to merge it with")
        if "selection" not in corpus or any(img.get("index") is None for img in s.data.get("images", ())):
            raise UserError(f"{s.source}: made by an older ocr-harness without corpus selection data; re-run it")
        if s.data.get("complete") is False:
            reason = (s.data.get("incomplete") or {}).get("reason", "stopped early")
            raise UserError(f"{s.source}: an incomplete run ({reason}); re-run that shard")
    splits = sorted({s.shard[1] for s in shards})
    if len(splits) > 1:
        raise UserError("shards of different splits: " + ", ".join(s.label for s in shards))
    n = splits[0]
    by_k: dict[int, ShardRun] = {}
    for s in shards:
        k = s.shard[0]
        if k in by_k:
            raise UserError(f"shard {k}/{n} given twice: {by_k[k].source} and {s.source}")
        by_k[k] = s
    missing = [f"{k}/{n}" for k in range(1, n + 1) if k not in by_k]
    if missing:
        raise UserError(f"incomplete shard set: missing shard {', '.join(missing)} "
                        f"(have {', '.join(s.label for s in sorted(by_k.values(), key=lambda s: s.shard))})")
    ordered = [by_k[k] for k in range(1, n + 1)]
    first = ordered[0]
    a = first.report
    for s in ordered[1:]:
        b = s.report
        _agree(first, s, "profile", a.profile, b.profile)
        if allow_mixed_stacks:
            _agree(first, s, "model files", a.stack.get("models"), b.stack.get("models"),
                   " (--allow-mixed-stacks admits other machines and packages, never other models)")
        else:
            _agree(first, s, "stack", a.stack, b.stack,
                   " (shards must run on the same stack: same packages, models, CPU and threads; "
                   "--allow-mixed-stacks merges them anyway and reports each shard's)")
        keys = ("subset", "has_manifest", "selection")
        _agree(first, s, "corpus", {k: a.corpus.get(k) for k in keys}, {k: b.corpus.get(k) for k in keys},
               " (not the same corpus selection)")
        _agree(first, s, "check list", sorted(a.checks), sorted(b.checks))
        for key in sorted(set(a.extra) | set(b.extra)):  # sections of a newer version
            _agree(first, s, key, a.extra.get(key), b.extra.get(key))
    seen: dict[str, ShardRun] = {}
    for s in ordered:
        for img in s.report.images:
            other = seen.setdefault(img["id"], s)
            if other is not s:
                raise UserError(f"overlapping shards: image {img['id']!r} is in {other.label} and {s.label}")
    return ordered


def _agree(a: ShardRun, b: ShardRun, what: str, x: Any, y: Any, hint: str = "") -> None:
    if x == y:
        return
    diffs = stack_differences(x, y) if isinstance(x, Mapping) and isinstance(y, Mapping) else ()
    where = ""
    if diffs:
        where, x, y = f" in {diffs[0].key}", diffs[0].golden, diffs[0].current
    raise UserError(f"cannot merge {b.label} with {a.label}: {what} differs{where}: {x!r} vs {y!r}{hint}")


# --- checks ----------------------------------------------------------------------------------------------------

def _merge_named(spec: CheckSpec | None, name: str, shards: Sequence[ShardRun], images: Sequence[Mapping[str, Any]],
                 stored_goldens: Collection[str] | None) -> dict[str, Any]:
    try:
        return _merge_check(spec, name, shards, images, stored_goldens)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        # Only the check's merge function reads its details (shard_input checked the rest): shard input.
        raise UserError(f"cannot merge check {name!r}: the shards' reports hold details this version cannot read "
                        f"({type(e).__name__}: {e})") from None


def _merge_check(spec: CheckSpec | None, name: str, shards: Sequence[ShardRun], images: Sequence[Mapping[str, Any]],
                 stored_goldens: Collection[str] | None) -> dict[str, Any]:
    """A model-level check that shards 2..N left to shard 1 (harness.model.outcome.left_to_first_shard) is shard 1's
    verdict, and says so; a shard that ran it anyway is held to the rules below. Shard 1 must have judged it."""
    dicts = [s.report.checks[name] for s in shards]
    left = [isinstance(d["details"], Mapping) and FIRST_SHARD_KEY in d["details"] for d in dicts]
    if not any(left):
        return _merge_ran(spec, name, shards, images, stored_goldens)
    n = shards[0].shard[1]
    if left[0]:
        raise UserError(f"{shards[0].label}: check {name!r} is left to shard 1/{n} by shard 1 itself")
    ran = [s for s, x in zip(shards, left) if not x]
    merged = _merge_ran(spec, name, ran, images, stored_goldens)
    return {**merged, "summary": f"{merged['summary']} [judged on shard 1/{n}"
                                 f"{'' if len(ran) == 1 else ' and ' + str(len(ran) - 1) + ' more'}, "
                                 f"left to it by the other shards]"}


def _merge_ran(spec: CheckSpec | None, name: str, shards: Sequence[ShardRun], images: Sequence[Mapping[str, Any]],
               stored_goldens: Collection[str] | None) -> dict[str, Any]:
    """How a check merges is its spec's (harness.checks.registry): judged image by image (harness.model.outcome.
    from_images, even when no image ran; so is any unknown check with per-image verdicts), or model-level (every
    shard must say the same, or, for a check measured on a sample, reported per shard)."""
    dicts = [s.report.checks[name] for s in shards]
    per_image = {img["id"]: ImageCheck(c["passed"], c["summary"], c["details"], c.get("judged", True))
                 for img in images if (c := img["checks"].get(name)) is not None}
    per_image_check = spec.level == "image" if spec is not None else False
    if all(d["skipped"] for d in dicts) or not (per_image or per_image_check):
        if all(d == dicts[0] for d in dicts):
            return _same_on_every_shard(spec, dicts)
        if spec is not None and spec.per_shard:
            return _per_shard(spec, shards, dicts)
        a, b = next((shards[0], s) for s, d in zip(shards, dicts) if d != dicts[0])
        raise UserError(f"cannot merge {b.label} with {a.label}: model-level check {name!r} differs "
                        f"({b.report.checks[name]['summary']!r} vs {a.report.checks[name]['summary']!r})")
    what, tail = _phrase(name, shards, dicts)
    merge_details = spec.merge_details if spec is not None and spec.merge_details else _agreed_details
    details = merge_details(name, shards, [d["details"] for d in dicts], per_image, stored_goldens)
    check = from_images(name, per_image, what, details)
    if spec is not None and spec.merge_summary is not None:
        summary = spec.merge_summary(check.summary, check.passed, details, dicts[0]["summary"], tail)
    else:
        summary = check.summary + (tail if not check.passed else "")
    summary += sample_note(details.get("sample"))
    return {**check.to_dict(), "summary": summary}


def _phrase(name: str, shards: Sequence[ShardRun], dicts: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """From a failing shard's summary `N of M images <what>: <ids>[<tail>]` (harness.model.outcome.from_images):
    what its images failed at, and what the check appended."""
    for s, d in zip(shards, dicts):
        failed = sorted(d["failed_images"])
        if not failed:
            continue
        total = sum(1 for img in s.report.images if name in img["checks"])
        head = f"{len(failed)} of {total} images "
        ids = ": " + ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        summary = d["summary"]
        end = summary.find(ids, len(head))
        if not summary.startswith(head) or end < 0:
            raise ValueError(f"{s.source}: check {name!r} summary {summary!r} is not in from_images' form")
        return summary[len(head):end], summary[end + len(ids):]
    return "", ""


def _agreed_details(name: str, shards: Sequence[ShardRun], details: Sequence[Mapping[str, Any]],
                    per_image: Mapping[str, ImageCheck], stored_goldens: Collection[str] | None) -> dict[str, Any]:
    if any(d != details[0] for d in details):
        raise UserError(f"check {name!r}: the shards' details differ and this version cannot merge them")
    return dict(details[0])


def _judged(spec: CheckSpec | None, dicts: Sequence[Mapping[str, Any]]) -> int:
    """A check every shard runs on its own calls (`every_shard`: speed, served settings) judged them all; any
    other check the shards ran judged the same model or sample again (the most any shard judged)."""
    counts = [d.get("judged", 0) for d in dicts]
    return sum(counts) if spec is not None and spec.every_shard else max(counts, default=0)


def _same_on_every_shard(spec: CheckSpec | None, dicts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Every shard said the same; a check every shard runs on its own calls judged all of their calls."""
    merged = dict(dicts[0])
    if spec is not None and spec.every_shard and len(dicts) > 1 and not merged["skipped"]:
        merged["judged"] = _judged(spec, dicts)  # the summary, the same on every shard, reads true for the run
    return merged


def _per_shard(spec: CheckSpec | None, shards: Sequence[ShardRun],
               dicts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    labels = ["{}/{}".format(*s.shard) for s in shards]
    unit = next((d["unit"] for d in dicts if not d["skipped"] and "unit" in d), dicts[0].get("unit", "images"))
    return {"passed": all(d["passed"] for d in dicts), "skipped": all(d["skipped"] for d in dicts),
            "summary": "; ".join(f"shard {label}: {d['summary']}" for label, d in zip(labels, dicts)),
            "failed_images": sorted({i for d in dicts for i in d["failed_images"]}),
            "judged": _judged(spec, dicts), "unit": unit,
            "details": {"per_shard": {label: d["details"] for label, d in zip(labels, dicts)}}}


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


def _accuracy(images: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    rows = []
    for img in images:
        a = img.get("accuracy")
        if a:
            acc = ImageAccuracy(cer=a["cer"], edits=a["edits"], ref_chars=a["ref_chars"],
                                lines_exact=a["lines_exact"], lines_total=a["lines_total"], det_tp=a["det"]["tp"],
                                det_fp=a["det"]["fp"], det_fn=a["det"]["fn"], fields=dict(a["fields"]))
            rows.append((img["id"], img["template"], img["tags"], acc))
    return corpus_accuracy(rows) if rows else None


# --- files -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckoutSettings:
    """What the merging checkout decides for a merge: the golden store and the picture limits."""

    store: GoldenStore | None  # None: the golden check did not run, or the store is not here
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES


def checkout_settings(report: RunReport, config: Path | None, catalogue: Catalogue,
                      golden_dir: Path | None = None) -> CheckoutSettings:
    """The store and limits an unsharded run of the report's profile would use here: that profile as `config`
    (the merging checkout's harness.toml) defines it, `golden_dir` relative to the config's directory;
    `golden_dir` given (relative to the cwd) overrides it. Without a config, only an explicit `golden_dir` gives
    a store. A shard's own `golden_dir`, `golden_set` and limits are never used: a shard names no paths here."""
    name = report.profile["name"]
    if config is not None:
        profile, base = load_profile(config, name, catalogue)
    else:
        profile, base = Profile(name=name), Path.cwd()
    golden = report.checks.get("golden")
    store = None
    if golden is not None and not golden.get("skipped") and (config is not None or golden_dir is not None):
        root = golden_dir.resolve() if golden_dir is not None else (base / profile.golden_dir).resolve()
        candidate = GoldenStore(root, profile.golden_name)
        store = candidate if candidate.directory.is_dir() else None
    return CheckoutSettings(store, profile.max_image_pixels, profile.max_image_bytes)


def corpus_root_for(report: RunReport, config: Path | None = None) -> Path | None:
    """The corpus root in the checkout that merges: the report's `corpus.root` (relative to the directory of
    harness.toml, as runs write it) under the directory of `config` (default: the nearest harness.toml upwards
    from the cwd). None when the report names a corpus outside its checkout (`<corpus>`) or it is not here."""
    text = str(report.corpus.get("root") or "")
    rel = PurePosixPath(text)
    if not text or rel.is_absolute() or PureWindowsPath(text).drive or text.startswith(("<", "$", "~")) \
            or ".." in rel.parts:
        return None
    found = config if config is not None else find_config()
    root = ((found.parent if found is not None else Path.cwd()) / rel).resolve()
    return root if root.is_dir() else None


def corpus_file(root: Path, file: str) -> Path | None:
    """A shard's image `file` inside `root`, or None: shard reports come from other machines, so an absolute
    path, a `..` or a symlink that leads out of the corpus is never read."""
    rel = PurePosixPath(file)
    if not file or "\\" in file or rel.is_absolute() or PureWindowsPath(file).drive or ".." in rel.parts:
        return None
    path = (root / rel).resolve()
    return path if path.is_relative_to(root.resolve()) and path.is_file() else None


def write_merged(out: Path, merged: MergedRun, layout: CheckLayout, *, formats: Mapping[str, Any] | None = None,
                 store: GoldenStore | None = None, corpus_root: Path | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Path]:
    """results.jsonl, then every report through `write_reports` (as `run` writes them). The HTML draws the
    pictures found inside `corpus_root` (see `corpus_root_for`), none when it is None, within the limits of the
    merging checkout's profile."""
    out.mkdir(parents=True, exist_ok=True)
    report = merged.report
    check_asked(formats or {})
    atomic.write_text(out / "results.jsonl", "".join(line + "\n" for line in merged.results))
    files = {img["id"]: path for img in report["images"]
             if corpus_root is not None and (path := corpus_file(corpus_root, str(img.get("file") or "")))}

    def load(image_id: str) -> Any:
        try:
            return read_image(files[image_id], max_pixels=max_pixels, max_bytes=max_bytes) \
                if image_id in files else None
        except ImageError:  # a missing picture must not cost the report
            return None

    goldens: dict[str, OcrResult] = {}
    if needs_goldens(formats or {}) and store is not None:
        goldens = {img["id"]: g.result for img in report["images"] if (g := store.load(img["id"])) is not None}
    return write_reports(out, report, merged.current(), load, layout=layout, goldens=goldens, **(formats or {}))
