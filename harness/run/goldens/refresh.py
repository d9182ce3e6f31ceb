"""Writing a reviewed golden refresh (`plan_refresh` in harness.golden.refresh says what would change).

Output that was not reproducible across repeats is never approved silently: those images are refused unless
the caller gives a reason, which is then recorded in `_meta.json` next to the ids it covered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from harness import __version__
from harness.golden.refresh import RefreshPlan
from harness.golden.store import ForcedRefresh, GoldenMeta, GoldenStore, stack_id
from harness.util.errors import UserError


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
