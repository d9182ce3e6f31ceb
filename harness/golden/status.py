"""Is the golden set sound for this run? Images without goldens, goldens without images, and whether the stack
that made the goldens is the stack running now.

Orphans are judged only when the run selected the whole corpus: on a partial run (`--ids`, a subset) a golden
whose image was not selected is not an orphan. syrupy's partial-run bug flagged and deleted exactly those.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.golden.store import Golden, GoldenStore, stack_id
from harness.model.settings import DEFAULT_BACKEND

# Highest first; a flag matches a level when it starts with the level's name (avx512f -> avx512).
_ISA_LEVELS = ("amx", "avx512", "avx2", "avx", "sse4_2", "sse4.2", "sse4_1", "sse4.1")
_GENERIC = {"version", "value", "name", "sha256", "hash", "enabled", "on"}
# Stack keys added after goldens were first written, with the value every older golden had.
_LEGACY_STACK = {"backend": DEFAULT_BACKEND}
# Keys recorded since a later version: a stack made before them does not record them, and its
# engine_settings_hash already covers what they say (the model names), so their absence there is no difference.
_RECORDED_LATER = ("model_names.",)
_LABELS = {"onednn": "oneDNN", "mkldnn": "oneDNN", "enable_mkldnn": "oneDNN", "use_onednn": "oneDNN"}


@dataclass(frozen=True)
class StackDifference:
    """One key of the stack (dotted path into `_meta.json`'s `stack`) that differs; None: absent on that side."""

    key: str
    golden: Any
    current: Any

    @property
    def category(self) -> str:
        """model | settings | isa | cpu | environment."""
        key = self.key.lower()
        last = key.rsplit(".", 1)[-1]
        if "model" in key and any(h in key for h in ("sha", "hash")):
            return "model"
        if "settings" in key or "profile" in key:
            return "settings"
        if "isa" in last or "flags" in last:
            return "isa"
        if "cpu" in key and any(w in last for w in ("model", "name", "brand")):
            return "cpu"
        return "environment"

    @property
    def label(self) -> str:
        parts = self.key.split(".")
        while len(parts) > 1 and parts[-1].lower() in _GENERIC:
            parts.pop()
        return _LABELS.get(parts[-1].lower(), parts[-1])

    def brief(self) -> str:
        """'key: record -> now'; two lists (the ISA flags) as what now has and the record had not, and back:
        'isa: +amx_tile -avx512_bf16', never both lists in full."""
        if isinstance(self.golden, list) and isinstance(self.current, list):
            moved = [f"+{x}" for x in self.current if x not in self.golden] + \
                    [f"-{x}" for x in self.golden if x not in self.current]
            return f"{self.key}: {' '.join(moved) or 'same items, other order'}"
        return f"{self.key}: {self.golden!r} -> {self.current!r}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "golden": self.golden, "current": self.current, "category": self.category}


@dataclass(frozen=True)
class GoldenStatus:
    profile: str
    selected: int
    missing: tuple[str, ...]  # selected images without a golden
    orphaned: tuple[str, ...]  # goldens whose image is gone; always empty unless orphans_judged
    orphans_judged: bool
    has_meta: bool
    stack_differences: tuple[StackDifference, ...]
    likely_cause: str | None
    changed_images: tuple[str, ...] = ()  # selected images whose bytes differ from those their golden was made on
    stack_groups: tuple[tuple[str, int], ...] = ()  # (stack id, selected goldens made on it)
    leftovers: tuple[str, ...] = ()  # temp files of an interrupted refresh (GoldenStore.leftovers)

    @property
    def stack_matches(self) -> bool:
        return self.has_meta and not self.stack_differences

    def summary(self) -> str:
        parts = [f"goldens ({self.profile}): {self.selected - len(self.missing)} of {self.selected} images have one"]
        if self.orphans_judged:
            parts.append(f"{len(self.orphaned)} orphaned")
        else:
            parts.append("orphans not judged (partial selection)")
        if self.changed_images:
            parts.append(f"{len(self.changed_images)} images changed since their golden was made")
        if len(self.stack_groups) > 1:
            parts.append(f"goldens made on {len(self.stack_groups)} stacks")
        if self.leftovers:
            parts.append(f"{len(self.leftovers)} temp files of an interrupted refresh ({', '.join(self.leftovers)}); "
                         "the next refresh removes them")
        if self.stack_differences:
            parts.append(f"stack differs in {', '.join(dict.fromkeys(d.key for d in self.stack_differences))}")
        elif not self.has_meta:
            parts.append("no _meta.json")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "selected": self.selected,
            "missing": list(self.missing),
            "orphaned": list(self.orphaned) if self.orphans_judged else None,
            "orphans_judged": self.orphans_judged,
            "has_meta": self.has_meta,
            "stack_differences": [d.to_dict() for d in self.stack_differences],
            "likely_cause": self.likely_cause,
            "changed_images": list(self.changed_images),
            "stacks": dict(self.stack_groups),
            "summary": self.summary(),
            **({"leftovers": list(self.leftovers)} if self.leftovers else {}),  # older reports stay as they were
        }


def golden_status(
    store: GoldenStore,
    image_ids: Sequence[str],
    selection_is_complete: bool,
    current_stack: Mapping[str, Any],
    *,
    ignore_keys: Collection[str] = (),
    image_sha256: Mapping[str, str | None] | None = None,
    loaded: Mapping[str, Golden] | None = None,
) -> GoldenStatus:
    """`image_ids`: the images this run selected. `ignore_keys`: dotted stack keys not to compare.
    `image_sha256`: the selected images' current hashes, to name images replaced since their golden.
    `loaded`: goldens the caller already read (a run preloads them), so they are not read twice.

    Each golden is judged against the stack that made it (goldens name their stack), so a set refreshed in
    parts on two stacks reports the differences of each part."""
    meta = store.meta()
    stored = set(store.ids())
    selected = sorted(set(image_ids))
    missing = tuple(i for i in selected if i not in stored)
    orphaned = tuple(sorted(stored - set(selected))) if selection_is_complete else ()
    diffs: dict[str, StackDifference] = {}
    groups: dict[str, int] = {}
    changed = []
    for image_id in selected:
        golden = (loaded or {}).get(image_id) or (store.load(image_id) if image_id in stored else None)
        if golden is None:
            continue
        now = (image_sha256 or {}).get(image_id)
        if golden.image_sha256 and now and now != golden.image_sha256:
            changed.append(image_id)
        if meta is None:
            continue
        made_on = meta.stack_of(golden)
        sid = golden.stack_id or stack_id(meta.stack)
        if sid not in groups:
            found = (stack_differences(made_on, current_stack, ignore_keys) if made_on is not None else
                     (StackDifference("stack", sid, "(not in _meta.json)"),))
            for d in found:
                diffs.setdefault(d.key, d)
        groups[sid] = groups.get(sid, 0) + 1
    if meta is not None and not groups:
        diffs = {d.key: d for d in stack_differences(meta.stack, current_stack, ignore_keys)}
    found_diffs = tuple(diffs[k] for k in sorted(diffs))
    if meta is None:
        cause = (f"{store.meta_path.name} is missing: the stack that made these goldens is unknown"
                 if stored else None)
    else:
        cause = likely_cause(found_diffs)
    return GoldenStatus(store.profile, len(selected), missing, orphaned, selection_is_complete,
                        meta is not None, found_diffs, cause, tuple(changed), tuple(sorted(groups.items())),
                        tuple(store.leftovers()))


def stack_differences(
    golden: Mapping[str, Any], current: Mapping[str, Any], ignore_keys: Collection[str] = ()
) -> tuple[StackDifference, ...]:
    g, c = {**_LEGACY_STACK, **_flatten(golden)}, {**_LEGACY_STACK, **_flatten(current)}
    keys = sorted((g.keys() | c.keys()) - set(ignore_keys))
    keys = [k for k in keys if k in g or not k.startswith(_RECORDED_LATER)]
    return tuple(StackDifference(k, g.get(k), c.get(k)) for k in keys if g.get(k) != c.get(k))


def _flatten(stack: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in stack.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def likely_cause(diffs: Sequence[StackDifference]) -> str | None:
    """A sentence for the report saying where differences against the goldens probably come from."""
    if not diffs:
        return None
    sentences = []
    models = [d for d in diffs if d.category == "model"]
    if models:  # the most specific cause first, with the hashes that prove it
        changed = ", ".join(f"{d.key.removeprefix('models.')} {_short(d.golden)} -> {_short(d.current)}"
                            for d in models)
        sentences.append(
            f"model files changed since the goldens were made ({changed}): differences are expected from the "
            "model itself; refresh the goldens if the new model is intended"
        )
    settings = [d for d in diffs if d.category == "settings"]
    if settings:
        keys = ", ".join(d.key for d in settings)
        sentences.append(f"the profile settings changed since the goldens were made ({keys})")
    env = [d for d in diffs if d.category in ("environment", "cpu", "isa")]
    if env:
        made, made_on = _describe(env, golden_side=True)
        now, now_on = _describe(env, golden_side=False)
        before = " ".join(p for p in (f"with {made}" if made else "", made_on) if p)
        after = " ".join(p for p in (now, now_on) if p)
        sentences.append(
            f"goldens were made {before}; this run is {after}: differences may come from the stack, not the model"
        )
    return "; ".join(sentences) + "."


def _short(value: Any) -> str:
    return "(none)" if value is None else str(value)[:12]


def _describe(diffs: Sequence[StackDifference], *, golden_side: bool) -> tuple[str, str]:
    """('paddle 3.2.2, oneDNN on', 'on Intel Xeon (avx512)') for one side of the differences."""
    words: list[str] = []
    cpu = isa = ""
    for d in diffs:
        value, other = (d.golden, d.current) if golden_side else (d.current, d.golden)
        if d.category == "isa":
            isa = _isa(value, other)
        elif d.category == "cpu":
            cpu = _show(value)
        else:
            words.append(f"{d.label} {_show(value)}")
    where = ("on " + (f"{cpu} ({isa})" if cpu and isa else cpu or isa)) if cpu or isa else ""
    return ", ".join(words), where


def _show(value: Any) -> str:
    if value is None:
        return "(not recorded)"
    if isinstance(value, bool):
        return "enabled" if value else "disabled"
    return str(value)


def isa_level(flags: Any) -> str | None:
    """The highest SIMD level in a flag list or string ('avx512f avx2 ...' -> 'avx512')."""
    items = isa_flags(flags)
    for level in _ISA_LEVELS:
        if any(item.startswith(level) for item in items):
            return level.replace("_", ".")
    return None


def _isa(value: Any, other: Any) -> str:
    if value is None:
        return "(ISA not recorded)"
    mine, theirs = isa_level(value), isa_level(other)
    if mine is not None and mine != theirs:
        return mine
    # Same top level: name the flags that differ, which is what changes kernel choice.
    a = set(isa_flags(value))
    b = set(isa_flags(other))
    extra, lacking = sorted(a - b)[:4], sorted(b - a)[:4]
    detail = " ".join([*(f"+{f}" for f in extra), *(f"-{f}" for f in lacking)])
    return f"{mine or 'unknown ISA'} {detail}" if detail else (mine or "unknown ISA")


def isa_flags(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.replace(",", " ").lower().split()
    if isinstance(value, (list, tuple)):
        return [str(f).lower() for f in value]
    return []
