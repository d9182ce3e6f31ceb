"""`report merge`'s refusals: shards that are not the shards of one run (another profile, stack, corpus
selection or split; missing, repeated, overlapping or incomplete shards) are refused, naming the shard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.golden.status import stack_differences
from harness.model.results import REPORT_SCHEMA
from harness.report.shard_input import check_report
from harness.run.shards.shard_run import ShardRun
from harness.util.errors import UserError


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
            other = seen.setdefault(img.id, s)
            if other is not s:
                raise UserError(f"overlapping shards: image {img.id!r} is in {other.label} and {s.label}")
    return ordered


def _agree(a: ShardRun, b: ShardRun, what: str, x: Any, y: Any, hint: str = "") -> None:
    if x == y:
        return
    diffs = stack_differences(x, y) if isinstance(x, Mapping) and isinstance(y, Mapping) else ()
    where = ""
    if diffs:
        where, x, y = f" in {diffs[0].key}", diffs[0].golden, diffs[0].current
    raise UserError(f"cannot merge {b.label} with {a.label}: {what} differs{where}: {x!r} vs {y!r}{hint}")
