"""Refreshing goldens as a reviewed, two-step act: `plan_refresh` says what would change (the dry run and the
pull-request review text), `apply_refresh` writes it.

Output that was not reproducible across repeats is never approved silently: those images are refused unless
the caller gives a reason, which is then recorded in `_meta.json` next to the ids it covered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from harness import __version__
from harness.golden.compare import ImageComparison, compare_image
from harness.golden.store import ForcedRefresh, Golden, GoldenMeta, GoldenStore, dumps_golden, stack_id
from harness.model.results import OcrResult
from harness.model.settings import Tolerances
from harness.util.errors import UserError

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
        out = [f"## Golden refresh: profile `{self.profile}`, mode `{self.mode}`", "", self.summary() + "."]
        changed = self.with_action("changed")
        if changed:
            out += ["", "### Changed"]
            for item in changed:
                out += ["", f"#### `{item.image_id}`", *(f"- {text}" for text in _change_lines(item))]
        new = self.with_action("new")
        if new:
            out += ["", "### New"]
            for item in new:
                out += ["", f"#### `{item.image_id}` ({len(item.golden.result.lines)} lines)", *_new_lines(item)]
        refused = self.refused
        if refused:
            out += ["", "### Refused: output not reproducible"]
            out += [f"- `{item.image_id}`: would be {item.would_be}; {item.note}" for item in refused]
            for item in refused:
                if item.would_be == "new":
                    out += ["", f"#### `{item.image_id}` (would be new)", *_new_lines(item)]
                else:
                    out += ["", f"#### `{item.image_id}` (would change)", *(f"- {t}" for t in _change_lines(item))]
        kept = self.with_action("kept")
        if kept:
            out += ["", "### Kept", *(f"- `{item.image_id}`: {item.note}" for item in kept)]
        return "\n".join(out) + "\n"


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


def apply_refresh(
    plan: RefreshPlan,
    store: GoldenStore,
    stack: Mapping[str, Any],
    *,
    force_reason: str | None = None,
    skip_refused: bool = False,
    restamp_unchanged: bool = False,
    now: Callable[[], datetime] | None = None,
) -> tuple[str, ...]:
    """Write the plan; returns the ids written.

    Refused (non-reproducible) images stop the whole refresh before anything is written, unless
    `force_reason` is given (they are written and the reason recorded in `_meta.json`) or `skip_refused`
    (they are left as they are). `_meta.json` is written first, so an interrupted forced refresh is never
    unrecorded; each golden is then replaced atomically, so every file is either old or new.
    """
    if plan.profile != store.profile:
        raise ValueError(f"plan for profile {plan.profile!r} applied to the store of {store.profile!r}")
    if force_reason is not None and not force_reason.strip():
        raise UserError("a forced golden refresh needs a non-empty reason")
    refused = plan.refused
    if refused and force_reason is None and not skip_refused:
        ids = ", ".join(item.image_id for item in refused[:5]) + (" ..." if len(refused) > 5 else "")
        raise UserError(
            f"refusing to refresh goldens of {len(refused)} image(s) whose output was not reproducible ({ids}); "
            "fix the nondeterminism, leave them out, or force with a reason that is recorded in _meta.json"
        )
    forced = refused if force_reason is not None else ()
    new_id = stack_id(stack)
    # An unchanged golden keeps the stack that made it, unless asked: after a deliberate stack change that kept
    # every output (say a thread count), `restamp_unchanged` makes the set name the stack it now holds for.
    restamped = tuple(item for item in plan.with_action("unchanged")
                      if restamp_unchanged and item.old is not None and item.old.stack_id != new_id)
    writes = (*plan.to_write, *forced, *restamped)
    store.remove_leftovers()  # a killed refresh's temp files go before anything new is written
    if not writes:
        return ()

    stamp = (now or _utc_now)().astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    old_meta = store.meta()
    history = old_meta.forced_refreshes if old_meta else ()
    if forced:
        assert force_reason is not None
        history = (*history, ForcedRefresh(force_reason.strip(), stamp, tuple(item.image_id for item in forced)))
    stacks = {**(old_meta.stacks if old_meta else {}), new_id: dict(stack)}
    # `stack` belongs to the goldens that name no stack (written before stacks were recorded per golden): it
    # moves to the new stack only once no such golden is left, so a partial refresh re-stamps nothing else.
    written = {item.image_id for item in writes}
    legacy_left = old_meta is not None and any(
        g.stack_id is None for g in store.load_all() if g.image_id not in written)
    base = GoldenMeta(profile=store.profile, stack=dict(old_meta.stack) if legacy_left and old_meta else dict(stack),
                      harness_version=__version__, created=old_meta.created if old_meta else stamp, updated=stamp,
                      forced_refreshes=history, stacks=stacks)
    # Ordered so that an interruption anywhere leaves a consistent set: every golden is old or new and the
    # stack it names is in _meta.json. The table gains the new stack first, and sheds unnamed stacks last.
    store.write_meta(replace(base, stack=dict(old_meta.stack)) if old_meta else base)
    for item in writes:
        store.write(replace(item.golden, stack_id=new_id))
    named = {g.stack_id for g in store.load_all()}
    store.write_meta(replace(base, stacks={k: v for k, v in stacks.items() if k in named}))
    return tuple(item.image_id for item in writes)


def _utc_now() -> datetime:
    return datetime.now(UTC)
