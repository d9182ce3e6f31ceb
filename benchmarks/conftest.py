"""Fixtures for the benchmarks (`tox -e bench`): the default profile's plan on the committed smoke subset, loaded
engines, and a clock for the phases of a whole run.

Nothing here gates on an absolute time: this kind of machine is shared and drifts. Gates compare ratios of
numbers measured side by side in the same run; everything else goes to `benchmark.extra_info` and the JSON.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.config import Profile, load_profile
from harness.corpus.loader import CorpusItem, read_image
from harness.runner import RunPlan, plan
from harness.worker import ImageOutcome, ImageRequest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "harness.toml"
IMAGES_ENV = "OCR_HARNESS_BENCH_IMAGES"
ROUNDS_ENV = "OCR_HARNESS_BENCH_ROUNDS"


def benchmark_json_path(option: Any) -> Path | None:
    """--benchmark-json as a path, whatever pytest-benchmark made of it: a Path (5.3+), or a file it already
    opened while parsing the command line (up to 5.2: argparse.FileType)."""
    if option is None:
        return None
    return Path(option if isinstance(option, str | os.PathLike) else option.name)


def pytest_configure(config: pytest.Config) -> None:
    """pytest-benchmark 5.3+ opens --benchmark-json at the end without creating its folder (tox's `out/` in a fresh
    clone). Up to 5.2 it opens the file while parsing the command line, before any conftest runs: there tox's
    `commands_pre` creates the folder."""
    target = benchmark_json_path(config.getoption("benchmark_json", default=None))
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)


def profile_named(name: str, **changes: Any) -> tuple[Profile, Path]:
    profile, base = load_profile(CONFIG, name)
    return (profile.replace(**changes) if changes else profile), base


def requests_for(items: Sequence[CorpusItem]) -> list[ImageRequest]:
    return [ImageRequest(image_id=it.id, path=str(it.path), sha256=it.sha256) for it in items]


def rotating(values: Sequence[Any]) -> Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]:
    """A `benchmark.pedantic(setup=...)` that hands each round the next value: rounds = len(values) covers each once."""
    it: Iterator[Any] = itertools.cycle(values)
    return lambda: ((next(it),), {})


def rounds(n: int, warmup: int = 0) -> dict[str, int]:
    """`benchmark.pedantic`'s rounds and warm-up rounds. OCR_HARNESS_BENCH_ROUNDS=N caps the rounds at N and drops
    the warm-up: the test suite runs the bench env with 1 (every benchmark once, timed) so that it cannot rot."""
    cap = os.environ.get(ROUNDS_ENV)
    if not cap:
        return {"rounds": n, "warmup_rounds": warmup}
    return {"rounds": min(n, int(cap)), "warmup_rounds": 0}


def mib(n: int | None) -> float | None:
    return round(n / 2**20, 1) if n is not None else None


def summary(values: Sequence[float]) -> dict[str, float]:
    v = sorted(values)
    return {"median": statistics.median(v), "min": v[0], "max": v[-1], "n": len(v)}


@pytest.fixture(scope="session")
def default_plan() -> RunPlan:
    """The default profile (1 worker, threads = cores, oneDNN on) on the smoke subset; model pack prepared.

    OCR_HARNESS_BENCH_IMAGES=N keeps the first N images (the fast test of these benchmarks uses 1)."""
    profile, base = profile_named("default")
    p = plan(profile, base)
    limit = os.environ.get(IMAGES_ENV)
    return dataclasses.replace(p, items=p.items[: int(limit)]) if limit else p


@pytest.fixture(scope="session")
def smoke_images(default_plan: RunPlan) -> list[tuple[str, np.ndarray]]:
    return [(it.id, read_image(it.path, max_pixels=default_plan.profile.max_image_pixels))
            for it in default_plan.items]


@pytest.fixture(scope="session")
def engine(default_plan: RunPlan) -> Any:
    """The harness engine in this process, loaded and warmed on one image."""
    from harness.engine import OcrEngine

    eng = OcrEngine(default_plan.profile.engine, default_plan.dirs)
    first = default_plan.items[0]
    eng.predict([read_image(first.path)], [first.id])
    return eng


@dataclasses.dataclass
class Phase:
    name: str
    wall_s: float
    predict_s: float = 0.0  # sum of the per-image predict times inside the phase (0 for non-inference phases)
    images: int = 0

    def scaled(self, factor: float) -> float:
        """Fixed part (process start, model load, cold first call, checks) + the per-image part scaled."""
        return (self.wall_s - self.predict_s) + self.predict_s * factor


class PhaseClock:
    """Times the phases of `run_and_report` by wrapping the pipeline's inference calls and check hooks.

    Inference calls (`infer_all`, `infer_together`) are named by their label (main, fresh, bs1, multi,
    onednn-off, threads-1); model-level hooks (audit, probe, bn_drift) by name; the rest is "other".
    """

    HOOKS = ("audit", "probe", "bn_drift")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import dataclasses

        from harness import runner
        from harness.checks import builtin, registry

        self.phases: list[Phase] = []
        monkeypatch.setattr(runner, "infer_all", self._infer(runner.infer_all))
        monkeypatch.setattr(builtin, "infer_all", self._infer(builtin.infer_all))
        monkeypatch.setattr(builtin, "infer_together", self._infer(builtin.infer_together, tag="multi"))
        for name in self.HOOKS:  # the registry holds each check's run function: time it there
            spec = registry.get(name)
            assert spec is not None, name
            monkeypatch.setitem(registry._SPECS, name, dataclasses.replace(spec, run=self._hook(spec.run, name)))

    def _infer(self, fn: Callable[..., dict[str, ImageOutcome]],
               tag: str | None = None) -> Callable[..., dict[str, ImageOutcome]]:
        def timed(*args: Any, **kwargs: Any) -> dict[str, ImageOutcome]:
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            wall = time.perf_counter() - t0
            predict = sum(sum(o.predict_s) for o in out.values() if o.ok)
            # Both functions take (plan, settings, label, ...).
            label = tag or str(kwargs.get("label", args[2] if len(args) > 2 else fn.__name__))
            self.phases.append(Phase(label, wall, predict, sum(1 for o in out.values() if o.ok)))
            return out

        return timed

    def _hook(self, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.phases.append(Phase(name, time.perf_counter() - t0))

        return timed


@pytest.fixture
def phase_clock(monkeypatch: pytest.MonkeyPatch) -> PhaseClock:
    return PhaseClock(monkeypatch)
