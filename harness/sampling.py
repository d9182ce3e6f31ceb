"""What a check needs to see: the whole corpus, or a declared, deterministic, stratified sample.

Golden comparison, repeats and the service (bs1) path judge every image: their findings are about images.
A stack variation (oneDNN off, another thread count), several images per predict call and a fresh process
find properties of the stack: a change that moves results moves them on any representative sample. Those
checks may run on `checks.stack_sample` images chosen here.

The sample covers every (template, tag) cell of the selection first, then fills up in crc32-of-id order; it is
drawn from the whole selection, so every shard of a run uses the same sample (each runs its share of it).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

from harness.model.corpus import CorpusItem


def _cells(item: CorpusItem) -> set[tuple[str, str]]:
    template = item.template or ""
    return {(template, tag) for tag in item.tags} or {(template, "")}


def stratified_sample(items: Sequence[CorpusItem], size: int) -> tuple[CorpusItem, ...]:
    """`size` usable items covering every (template, tag) cell (more when the cells need more), in corpus
    order; every usable item when `size` is 0 or covers them all."""
    usable = [it for it in items if it.problem is None]
    if size <= 0 or size >= len(usable):
        return tuple(usable)
    order = sorted(usable, key=lambda it: (zlib.crc32(it.id.encode("utf-8")), it.id))
    chosen: list[CorpusItem] = []
    covered: set[tuple[str, str]] = set()
    left = list(order)
    while True:  # greedy set cover: the item adding most uncovered cells, ties in the fixed pseudo-random order
        best = max(left, key=lambda it: len(_cells(it) - covered), default=None)
        if best is None or not _cells(best) - covered:
            break
        chosen.append(best)
        covered |= _cells(best)
        left.remove(best)
    for it in order:
        if len(chosen) >= size:
            break
        if it not in chosen:
            chosen.append(it)
    picked = {id(it) for it in chosen}
    return tuple(it for it in usable if id(it) in picked)


def detectable_rate(calls: int, confidence: float = 0.95) -> float | None:
    """The smallest per-call rate of a nondeterministic fault that `calls` compared model calls catch with
    `confidence`: a fault on 1 call in m is missed with probability (1 - 1/m)^calls."""
    if calls <= 0:
        return None
    return float(1.0 - (1.0 - confidence) ** (1.0 / calls))


def describe_power(calls: int) -> str:
    rate = detectable_rate(calls)
    if rate is None:
        return "no repeated call compared"
    return f"{calls} compared model calls: a fault on 1 call in {math.floor(1 / rate)} or more often is caught " \
           "with 95% probability"


def sample_info(sample: Sequence[CorpusItem], usable: int) -> dict[str, object]:
    """What the report says about a sample: its size, the usable images it was drawn from, and its ids."""
    return {"size": len(sample), "of": usable, "ids": [it.id for it in sample]}


def sample_note(info: dict[str, object] | None) -> str:
    if not info or info["size"] == info["of"]:
        return ""
    return f" [stack check on a stratified sample of {info['size']} of {info['of']} images]"
