"""Planning a run: everything that can be wrong with its inputs (corpus, shard, executor, model pack, a
service) is read and checked here, before a model loads, so a usage error costs seconds, not minutes."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.backends import preflight, resolve_engine
from harness.corpus.loader import load_corpus
from harness.execution.executor import require_executor
from harness.execution.state import RunPlan
from harness.model.corpus import CorpusItem
from harness.model.settings import Profile
from harness.util.errors import UserError


def shard_items(items: Sequence[CorpusItem], shard: tuple[int, int] | None) -> tuple[CorpusItem, ...]:
    """Deterministic split by image id (stable across machines and Python hash seeds)."""
    if shard is None:
        return tuple(items)
    k, n = shard
    return tuple(it for it in items if zlib.crc32(it.id.encode("utf-8")) % n == k - 1)


def plan(profile: Profile, base: Path, *, shard: tuple[int, int] | None = None, log_dir: Path | None = None,
         shard_source: Mapping[str, Any] | None = None) -> RunPlan:
    corpus = load_corpus((base / profile.corpus).resolve(), subset=profile.subset, tags=profile.tags, ids=profile.ids)
    items = shard_items(corpus.items, shard)
    if not items:
        raise UserError(f"{corpus.root}: shard {shard[0]}/{shard[1]} selects no images" if shard else
                        f"{corpus.root}: no images selected")
    require_executor(profile)
    # The dirs say which models they are: the plan's profile carries those names from here on (stack, report).
    engine, dirs = resolve_engine(profile.engine, base, profile.model_cache)
    profile = profile.replace(engine=engine)
    facts = preflight(profile.engine, f"profiles.{profile.name}.engine")  # a service: reachable, and its settings
    return RunPlan(profile=profile, base=base, corpus=corpus, items=items, dirs=dirs, shard=shard, log_dir=log_dir,
                   shard_source=shard_source, backend_facts=facts)
