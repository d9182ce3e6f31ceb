"""The `golden` check: every image's current output against its reviewed golden, with the profile's tolerances."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.golden.compare import ImageComparison, compare_image
from harness.golden.status import GoldenStatus
from harness.golden.store import Golden, GoldenStore
from harness.golden.summary import summarise
from harness.model.corpus import CorpusItem
from harness.model.inference import ImageOutcome
from harness.model.outcome import CheckResult, ImageCheck, from_images
from harness.model.results import OcrResult
from harness.model.settings import Profile


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
    warn_missing = profile.checks.missing_golden == "warn"
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
        comp, changed = judge_image(it, outcome.runs[0], golden, profile, (image_sha256 or {}).get(it.id))
        comparisons[it.id] = comp
        if changed:
            per_image[it.id] = ImageCheck(False, f"{changed} | {comp.summary()}",
                                          {**comp.to_dict(), "image_changed": {"golden": golden.image_sha256,
                                                                                "current": image_sha256[it.id]}})
            continue
        per_image[it.id] = ImageCheck(comp.passed, comp.summary(), comp.to_dict())
    check = from_images("golden", per_image, "differ from their golden")
    details: dict[str, Any] = {"status": status.to_dict(), "golden_set": profile.golden_name, "path": path}
    if comparisons:
        details["summary"] = summarise(comparisons).to_dict()
    summary = check.summary
    if not check.passed and status.likely_cause:
        summary += f" | likely cause: {status.likely_cause}"
    elif not check.passed:
        summary += f" | to accept deliberately: {refresh_hint(profile)}"
    return CheckResult("golden", check.passed, summary, per_image, details, judged=check.judged)
