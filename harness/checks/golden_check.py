"""The `golden` check: every image's current output against its reviewed golden, with the profile's tolerances."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.golden.compare import ImageComparison, LineDiff, RequiredTolerances, compare_image
from harness.golden.status import GoldenStatus, StackDifference, likely_cause, stack_differences
from harness.golden.store import Golden, GoldenStore
from harness.golden.summary import summarise
from harness.model.catalogue import Option
from harness.model.corpus import CorpusItem
from harness.model.inference import ImageOutcome
from harness.model.outcome import CheckResult, ImageCheck, from_images
from harness.model.results import Line, OcrResult
from harness.model.settings import Profile
from harness.model.views import ShardView
from harness.util.errors import UserError


def open_store(profile: Profile, base: Path) -> GoldenStore:
    return GoldenStore((base / profile.golden_dir).resolve(), profile.golden_name)


def preload(store: GoldenStore, ids: Sequence[str]) -> dict[str, Golden]:
    """Read and validate every golden before any model loads: a corrupt golden is exit 2, not a lost run."""
    store.meta()
    goldens = {}
    for image_id in ids:
        golden = store.load(image_id)
        if golden is not None:
            goldens[image_id] = golden
    return goldens


def judge_image(item: CorpusItem, current: OcrResult, golden: Golden, profile: Profile,
                current_sha256: str | None) -> tuple[ImageComparison, str | None]:
    """One image against its golden, as `run` and the pytest plugin both judge it: the comparison, and a
    failure note when the image bytes changed since the golden was made (then the golden no longer vouches
    for the image, whatever its lines say)."""
    comp = compare_image(golden.result, current, profile.tolerances, dict(item.fields) or None)
    if golden.image_sha256 and current_sha256 and current_sha256 != golden.image_sha256:
        return comp, (f"{item.id}: FAIL image changed since its golden was made (sha256 {golden.image_sha256[:12]}"
                      f" -> {current_sha256[:12]}); refresh its golden if the new image is intended")
    return comp, None


# The golden check's own key beside its enabling `goldens` (harness.checks.builtin): a missing golden fails or warns.
MISSING_GOLDEN = Option("missing_golden", str, "fail", "fail | warn: an image without a golden", recorded=True)
JUDGED_NOTHING = " | judged nothing: no image was compared with its golden"


def not_run_phrase(path: str) -> str:
    return f"did not run on the {path} path"


def refresh_hint(profile: Profile) -> str:
    """The refresh command that may write this profile's goldens: a profile sharing another backend's goldens
    (`goldens_from`) never writes them, so the hint names the profile that owns the set."""
    if profile.engine.goldens_from is None:
        return f"ocr-harness golden refresh --profile {profile.name} --failed"
    return (f"ocr-harness golden refresh --profile {profile.golden_name} --failed (golden set "
            f"{profile.golden_name!r} belongs to the {profile.engine.goldens_from} backend; this "
            f"{profile.engine.backend} profile only reads it)")


def golden_check(items: Sequence[CorpusItem], outcomes: Mapping[str, ImageOutcome], path: str,
                 goldens: Mapping[str, Golden], profile: Profile, status: GoldenStatus,
                 image_sha256: Mapping[str, str | None] | None = None) -> CheckResult:
    """`outcomes` come from the path the goldens were made on (`path`: profile or bs1). An image that did not
    run on that path fails here too: its golden was not met, whatever the other paths did."""
    per_image: dict[str, ImageCheck] = {}
    comparisons: dict[str, ImageComparison] = {}
    warn_missing = MISSING_GOLDEN.of(profile.checks) == "warn"
    for it in items:
        outcome = outcomes.get(it.id)
        if outcome is None or not outcome.ok:
            why = outcome.error if outcome is not None else "not run"
            per_image[it.id] = ImageCheck(False, f"not judged: the {path} path failed to run: {why}",
                                          {"path": path, "error": why}, judged=False)
            continue
        golden = goldens.get(it.id)
        if golden is None:
            per_image[it.id] = ImageCheck(warn_missing, "no golden (run: ocr-harness golden refresh --new-only --yes)",
                                          {"missing_golden": True}, judged=False)
            continue
        current_sha256 = (image_sha256 or {}).get(it.id)
        comp, changed = judge_image(it, outcome.runs[0], golden, profile, current_sha256)
        comparisons[it.id] = comp
        if changed:
            per_image[it.id] = ImageCheck(False, f"{changed} | {comp.summary()}",
                                          {**comp.to_dict(), "image_changed": {"golden": golden.image_sha256,
                                                                                "current": current_sha256}})
            continue
        per_image[it.id] = ImageCheck(comp.passed, comp.summary(), comp.to_dict())
    check = from_images("golden", per_image, "differ from their golden")
    details: dict[str, Any] = {"status": status.to_dict(), "golden_set": profile.golden_name, "path": path}
    if comparisons:
        details["summary"] = summarise(comparisons).to_dict()
    summary = check.summary
    failed = [i for i, c in per_image.items() if not c.passed]
    if failed and not comparisons and all("error" in per_image[i].details for i in failed):
        # Nothing was compared: "N of N images differ ... likely cause: settings changed" blamed the goldens for
        # a run that never reached them. Still from_images' form, so `report merge` reads it.
        summary = from_images("golden", per_image, not_run_phrase(path)).summary + JUDGED_NOTHING
    elif not check.passed and status.likely_cause:
        summary += f" | likely cause: {status.likely_cause}"
    elif not check.passed:
        summary += f" | to accept deliberately: {refresh_hint(profile)}"
    return CheckResult("golden", check.passed, summary, per_image, details, judged=check.judged)


# --- `report merge` ---------------------------------------------------------------------------------------------

def merged_details(name: str, shards: Sequence[ShardView], details: Sequence[Mapping[str, Any]],
                   per_image: Mapping[str, ImageCheck], stored_goldens: Collection[str] | None) -> dict[str, Any]:
    """The golden status over the whole selection (orphans judged when `stored_goldens` is given) and the
    summary of every image's comparison; the shards must agree on the golden set's facts."""
    statuses = [d["status"] for d in details]
    facts = ("profile", "has_meta")
    for s, st in zip(shards, statuses):
        _agree(shards[0], s, {k: statuses[0][k] for k in facts}, {k: st[k] for k in facts})
    ids = {img.id for s in shards for img in s.report.images}
    judged = stored_goldens is not None
    # Each shard judged its goldens against the stacks that made them.
    per_shard = [tuple(StackDifference(d["key"], d["golden"], d["current"]) for d in st["stack_differences"])
                 for st in statuses]
    mixed = any(s.report.stack != shards[0].report.stack for s in shards)
    diffs = _merged_differences(shards, per_shard, mixed)
    groups: dict[str, int] = {}
    for st in statuses:
        for sid, n in st.get("stacks", {}).items():
            groups[sid] = groups.get(sid, 0) + n
    status = GoldenStatus(
        profile=statuses[0]["profile"], selected=len(ids),
        missing=tuple(sorted({i for st in statuses for i in st["missing"]})),
        orphaned=tuple(sorted(set(stored_goldens) - ids)) if stored_goldens is not None else (),
        orphans_judged=judged, has_meta=statuses[0]["has_meta"],
        stack_differences=diffs,
        likely_cause=(_merged_cause(shards, per_shard) if mixed else likely_cause(diffs)) if statuses[0]["has_meta"]
        else statuses[0]["likely_cause"],
        changed_images=tuple(sorted({i for st in statuses for i in st.get("changed_images", [])})),
        stack_groups=tuple(sorted(groups.items())))
    out: dict[str, Any] = {"status": status.to_dict(), "golden_set": details[0]["golden_set"],
                           "path": details[0]["path"]}
    comparisons = {i: _comparison(c.details) for i, c in per_image.items() if "counts" in c.details}
    if comparisons:
        out["summary"] = summarise(comparisons).to_dict()
    return out


def merged_summary(summary: str, passed: bool, details: Mapping[str, Any], shard_summary: str, tail: str) -> str:
    """A failing merge ends as an unsharded run's does: the merged status's likely cause (each stack's, when the
    shards ran on several), else the first failing shard's tail (the refresh hint)."""
    if passed:
        return summary
    if "summary" not in details and tail == JUDGED_NOTHING:  # no shard compared an image
        return summary + tail
    if "summary" in details and tail == JUDGED_NOTHING:  # the first failing shard ran nothing, another compared
        summary = summary.replace(not_run_phrase(details["path"]), "differ from their golden", 1)
        tail = ""
    cause = details["status"]["likely_cause"]
    return summary + (f" | likely cause: {cause}" if cause else tail)


def _merged_differences(shards: Sequence[ShardView], per_shard: Sequence[tuple[StackDifference, ...]],
                        mixed: bool) -> tuple[StackDifference, ...]:
    """Shards on one stack: a difference per key, the first found in image order, as an unsharded run reports it
    (harness.golden.status.golden_status). Shards on mixed stacks: every distinct one, so each CPU is named."""
    distinct: list[StackDifference] = []
    if mixed:
        for d in (d for diffs in per_shard for d in diffs):
            if d not in distinct:  # by equality: values may be lists (ISA flags)
                distinct.append(d)
    else:
        first_image = [min((img.id for img in s.report.images), default="") for s in shards]
        by_key: dict[str, StackDifference] = {}
        for _, diffs in sorted(zip(first_image, per_shard), key=lambda x: x[0]):
            for d in diffs:
                by_key.setdefault(d.key, d)
        distinct = list(by_key.values())
    return tuple(sorted(distinct, key=lambda d: d.key))


def _merged_cause(shards: Sequence[ShardView], per_shard: Sequence[tuple[StackDifference, ...]]) -> str | None:
    """Shards on mixed stacks: the likely cause of each stack's differences from the goldens, labelled by shard
    (unlabelled when every shard has the same one)."""
    causes: dict[str | None, list[str]] = {}
    for s, diffs in zip(shards, per_shard):
        causes.setdefault(likely_cause(diffs), []).append("{}/{}".format(*s.shard))
    if len(causes) == 1:
        return next(iter(causes))
    return " ".join(f"On shard{'s' if len(labels) > 1 else ''} {', '.join(labels)}: "
                    f"{cause or 'the stack the goldens were made on.'}" for cause, labels in causes.items())


def _agree(a: ShardView, b: ShardView, x: Mapping[str, Any], y: Mapping[str, Any]) -> None:
    """Refused in the words `report merge` refuses any other disagreement of two shards in."""
    if x == y:
        return
    diffs = stack_differences(x, y)
    where, x_, y_ = (f" in {diffs[0].key}", diffs[0].golden, diffs[0].current) if diffs else ("", x, y)
    raise UserError(f"cannot merge {b.label} with {a.label}: golden status differs{where}: {x_!r} vs {y_!r}")


def _comparison(d: Mapping[str, Any]) -> ImageComparison:
    """An ImageComparison back from its to_dict(): identical lines are not listed there, which `summarise`
    does not need (it counts failures, drift kinds and critical lines)."""
    return ImageComparison(
        image_id=d["image_id"],
        lines=tuple(LineDiff(
            kind=x["kind"], golden_index=x["golden_index"], current_index=x["current_index"],
            golden=Line.from_dict(x["golden"]) if x["golden"] else None,
            current=Line.from_dict(x["current"]) if x["current"] else None,
            failed=tuple(x["failed"]), drifted=tuple(x["drifted"]), cer=x["cer"], max_shift_px=x["max_shift_px"],
            iou=x["iou"], score_delta=x["score_delta"], key_fields=tuple(x["key_fields"]), critical=x["critical"])
            for x in d["lines"]),
        required=RequiredTolerances(**d["required_tolerances"]),
        golden_size=(d["golden_size"][0], d["golden_size"][1]),
        current_size=(d["current_size"][0], d["current_size"][1]),
    )
