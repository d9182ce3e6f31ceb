"""Refreshing goldens as a reviewed, two-step act: `plan_refresh` says what would change (the dry run and the
pull-request review text), `apply_refresh` (harness.run.goldens.refresh) writes it.

Output that was not reproducible across repeats is never approved silently: those images are refused unless
the caller gives a reason, which is then recorded in `_meta.json` next to the ids it covered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from harness.golden.compare import ImageComparison, compare_image
from harness.golden.store import Golden, GoldenStore, dumps_golden
from harness.model.results import OcrResult
from harness.model.settings import Tolerances
from harness.util.errors import UserError
from harness.util.markup import code_span

RefreshMode = Literal["new-only", "failed", "all"]
RefreshAction = Literal["new", "changed", "unchanged", "kept", "refused"]
MODES: tuple[RefreshMode, ...] = ("new-only", "failed", "all")


@dataclass(frozen=True)
class RefreshItem:
    """What a refresh does to one image.

    new / changed: will be written. unchanged: the golden already holds exactly this output. kept: differs,
    but the mode leaves it alone (within tolerance in `failed`, any existing golden in `new-only`).
    refused: would be new/changed (`would_be`) but the output was not reproducible.
    """

    image_id: str
    action: RefreshAction
    golden: Golden  # the content that is or would be written
    old: Golden | None
    comparison: ImageComparison | None  # old golden vs current output, when there is an old golden
    note: str = ""
    would_be: RefreshAction | None = None

    @property
    def writes(self) -> bool:
        return self.action in ("new", "changed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "action": self.action,
            "would_be": self.would_be,
            "note": self.note,
            "lines": len(self.golden.result.lines),
            "comparison": self.comparison.to_dict() if self.comparison else None,
        }


@dataclass(frozen=True)
class RefreshPlan:
    profile: str
    mode: RefreshMode
    items: tuple[RefreshItem, ...]

    def with_action(self, action: RefreshAction) -> tuple[RefreshItem, ...]:
        return tuple(item for item in self.items if item.action == action)

    @property
    def to_write(self) -> tuple[RefreshItem, ...]:
        return tuple(item for item in self.items if item.writes)

    @property
    def refused(self) -> tuple[RefreshItem, ...]:
        return self.with_action("refused")

    @property
    def counts(self) -> dict[str, int]:
        return {action: len(self.with_action(action)) for action in ("new", "changed", "unchanged", "kept", "refused")}

    def summary(self) -> str:
        c = self.counts
        return f"golden refresh ({self.mode}, profile {self.profile}): " + ", ".join(f"{n} {a}" for a, n in c.items())

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "mode": self.mode, "counts": self.counts,
                "items": [item.to_dict() for item in self.items if item.action != "unchanged"]}

    def to_markdown(self) -> str:
        """The review text: every line a refresh would change, before -> after. Also the dry-run printout."""
        out = [f"## Golden refresh: profile {_code(self.profile)}, mode {_code(self.mode)}", "", self.summary() + "."]
        changed = self.with_action("changed")
        if changed:
            out += ["", "### Changed"]
            for item in changed:
                out += ["", f"#### {_code(item.image_id)}", *(f"- {text}" for text in _change_lines(item))]
        new = self.with_action("new")
        if new:
            out += ["", "### New"]
            for item in new:
                out += ["", f"#### {_code(item.image_id)} ({len(item.golden.result.lines)} lines)", *_new_lines(item)]
        refused = self.refused
        if refused:
            out += ["", "### Refused: output not reproducible"]
            out += [f"- {_code(item.image_id)}: would be {item.would_be}; {item.note}" for item in refused]
            for item in refused:
                if item.would_be == "new":
                    out += ["", f"#### {_code(item.image_id)} (would be new)", *_new_lines(item)]
                else:
                    out += ["", f"#### {_code(item.image_id)} (would change)", *(f"- {t}" for t in _change_lines(item))]
        kept = self.with_action("kept")
        if kept:
            out += ["", "### Kept", *(f"- {_code(item.image_id)}: {item.note}" for item in kept)]
        return "\n".join(out) + "\n"


def _code(text: str) -> str:
    return code_span(" ".join(text.split()))


def _new_lines(item: RefreshItem) -> list[str]:
    return [f"- line {i}: {line.text!r} (score {line.score:.4f})" for i, line in enumerate(item.golden.result.lines)]


def _change_lines(item: RefreshItem) -> list[str]:
    comp = item.comparison
    texts: list[str] = []
    if comp is not None:
        if comp.size_changed:
            texts.append("image size {}x{} -> {}x{}".format(*comp.golden_size, *comp.current_size))
        texts += [d.describe() for d in comp.diffs]
    old_sha = item.old.image_sha256 if item.old else None
    if old_sha != item.golden.image_sha256:
        texts.append(f"image_sha256 {old_sha} -> {item.golden.image_sha256}")
    return texts or ["text, geometry and scores equal under normalisation; the stored bytes change"]


def plan_refresh(
    store: GoldenStore,
    current: Mapping[str, OcrResult],
    mode: RefreshMode,
    tol: Tolerances,
    reproducible: Mapping[str, bool],
    *,
    image_sha256: Mapping[str, str] | None = None,
    key_texts: Mapping[str, Mapping[str, str]] | None = None,
) -> RefreshPlan:
    """What a refresh in `mode` would do for each image in `current` (images that failed to run: leave out).

    `reproducible[id]` says whether repeated runs gave identical output; an id absent from it counts as not
    reproducible. `image_sha256` updates the stored image hashes; without it the old hashes are kept.
    """
    if mode not in MODES:
        raise UserError(f"refresh mode {mode!r}: expected one of {', '.join(MODES)}")
    items = []
    for image_id in sorted(current):
        result = current[image_id]
        if result.image_id != image_id:
            raise ValueError(f"current[{image_id!r}] holds the result of {result.image_id!r}")
        old = store.load(image_id)
        sha = image_sha256.get(image_id) if image_sha256 is not None else (old.image_sha256 if old else None)
        golden = Golden(result, sha)
        if old is None:
            items.append(_gate(RefreshItem(image_id, "new", golden, None, None), reproducible))
            continue
        if dumps_golden(replace(old, stack_id=None)) == dumps_golden(golden):  # same bits: keeps its stack stamp
            items.append(RefreshItem(image_id, "unchanged", golden, old, None))
            continue
        comp = compare_image(old.result, result, tol, (key_texts or {}).get(image_id))
        if mode == "new-only":
            item = RefreshItem(image_id, "kept", golden, old, comp, note=f"has a golden; {_verdict(comp)}")
        elif mode == "failed" and comp.passed and old.image_sha256 == sha:
            item = RefreshItem(image_id, "kept", golden, old, comp, note="within tolerance")
        else:
            item = _gate(RefreshItem(image_id, "changed", golden, old, comp), reproducible)
        items.append(item)
    return RefreshPlan(store.profile, mode, tuple(items))


def _verdict(comp: ImageComparison) -> str:
    return "within tolerance" if comp.passed else "FAILS its golden (refresh with mode failed or all)"


def _gate(item: RefreshItem, reproducible: Mapping[str, bool]) -> RefreshItem:
    flag = reproducible.get(item.image_id)
    if flag:
        return item
    note = "reproducibility unknown (no repeat result)" if flag is None else "repeated runs gave different output"
    return RefreshItem(item.image_id, "refused", item.golden, item.old, item.comparison, note=note,
                       would_be=item.action)
