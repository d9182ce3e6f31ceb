"""No report names a machine path: this run's absolute roots and the portable names they are written as
(harness.util.portable), and the texts that must stay as the OCR read them."""

from __future__ import annotations

from pathlib import Path

from harness.execution.state import RunPlan, RunState
from harness.backends.pack import cache_root
from harness.util.portable import MachinePaths, for_run


def machine_paths(p: RunPlan) -> MachinePaths:
    """This run's absolute roots and their portable names (harness.util.portable): no report names a machine path."""
    golden = Path(p.profile.golden_dir)
    cache = cache_root(p.profile.model_cache).resolve()
    det, rec = (d if p.dirs.source != "service" and not d.resolve().is_relative_to(cache) else None
                for d in (p.dirs.det, p.dirs.rec))
    return for_run(checkout=p.base, corpus_root=p.corpus.root,
                   golden_root=golden if golden.is_absolute() else p.base / golden,
                   cache_root=cache, det_model_dir=det, rec_model_dir=rec)


def report_paths(p: RunPlan, state: RunState) -> MachinePaths:
    """`machine_paths` that leave every text the OCR read (any path, golden, ground truth) as it was read."""
    results = [o.runs for o in state.outcomes.values()]
    results += [o.runs for path in state.extra_paths.values() for o in path.values()]
    texts = {line.text for runs in results for r in runs for line in r.lines}
    golden = (state.prepared or {}).get("golden")
    texts.update(line.text for g in getattr(golden, "goldens", {}).values() for line in g.result.lines)
    texts.update(t.text for it in p.items for t in it.truth or ())
    return machine_paths(p).keeping(texts)
