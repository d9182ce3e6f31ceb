"""Fixtures for the benchmarks (`tox -e bench`): the default profile's plan on the committed smoke subset and
loaded engines.

Nothing here gates on an absolute time: this kind of machine is shared and drifts. Gates compare ratios of
numbers measured side by side in the same run; everything else goes to `benchmark.extra_info` and the JSON.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import statistics
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.backends import builtin as builtin_backends
from harness.backends import registry as backend_registry
from harness.checks import builtin, registry
from harness.checks.registry import catalogue
from harness.config import load_profile
from harness.corpus.loader import read_image
from harness.execution.state import RunPlan
from harness.model.corpus import CorpusItem
from harness.model.inference import ImageRequest
from harness.model.settings import Profile
from harness.run.pipeline.plan import plan

registry.load(builtin)  # benchmarks are a composition root too
backend_registry.load(builtin_backends)

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
    profile, base = load_profile(CONFIG, name, catalogue())
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
    """The default profile on the smoke subset; model pack prepared.

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
