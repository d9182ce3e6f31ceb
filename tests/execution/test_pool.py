"""The run's worker pool: loaded workers are reused only by a pass that asks, only with the same settings, only
while alive, and every kept one is closed at the end; a profile keeps the main pass's workers only when a check
will take them. The nightly end to end (which passes start workers, and that every fault still fires) is in
tests/e2e/test_nightly_catch.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.checks.registry import catalogue
from harness.config import load_profile
from harness.execution.local import LocalWorker
from harness.execution.pool import WorkerPool
from harness.execution.worker import Worker, WorkerSpec
from harness.model.modeldirs import ModelDirs
from harness.model.settings import EngineSettings
from harness.run.pipeline.execute import keeps_main_workers

CONFIG = Path(__file__).resolve().parents[2] / "harness.toml"
DIRS = ModelDirs(Path("det"), Path("rec"), "user")
MAIN = EngineSettings()
OTHER = dataclasses.replace(MAIN, rec_batch_size=1)


class Engine:
    closed = 0

    def __init__(self, settings: EngineSettings, dirs: ModelDirs) -> None:
        pass

    def close(self) -> None:
        Engine.closed += 1


class FailingClose(Engine):
    def close(self) -> None:
        raise RuntimeError("planted close failure")


def loaded(settings: EngineSettings, engine: type[Engine] = Engine) -> LocalWorker:
    w = LocalWorker(WorkerSpec(settings, DIRS, label="main-0"), engine)
    w.start()
    return w


def test_reuse_takes_a_loaded_worker_with_the_same_settings_only() -> None:
    pool = WorkerPool()
    w = loaded(MAIN)
    pool.give(w, keep=True)
    assert pool.take(WorkerSpec(OTHER, DIRS), 1.0, reuse=True) is not w  # other settings: a new worker
    assert pool.take(WorkerSpec(MAIN, DIRS), 1.0) is not w  # not asked to reuse (the fresh-process pass)
    assert pool.started == 2
    assert pool.take(WorkerSpec(MAIN, DIRS), 1.0, reuse=True) is w and pool.started == 2
    assert isinstance(pool.take(WorkerSpec(MAIN, DIRS), 1.0, reuse=True), Worker)  # taken once: gone from the pool
    assert pool.started == 3


def test_a_worker_not_kept_or_dead_is_closed_not_pooled() -> None:
    pool = WorkerPool()
    before = Engine.closed
    pool.give(loaded(MAIN), keep=False)
    dead = loaded(MAIN)
    dead.close()
    pool.give(dead, keep=True)
    assert Engine.closed == before + 2
    assert pool.take(WorkerSpec(MAIN, DIRS), 1.0, reuse=True) not in (dead,) and pool.started == 1


def test_close_stops_every_kept_worker_and_raises_the_first_failure() -> None:
    pool = WorkerPool()
    before = Engine.closed
    for engine in (FailingClose, Engine, Engine):
        pool.give(loaded(MAIN, engine), keep=True)
    with pytest.raises(RuntimeError, match="planted close failure"):
        pool.close()
    assert Engine.closed == before + 2  # the two after the failing one too
    pool.close()  # nothing left
    assert Engine.closed == before + 2


def test_only_a_profile_that_runs_several_per_call_keeps_the_main_workers() -> None:
    assert keeps_main_workers(load_profile(CONFIG, "nightly", catalogue())[0])
    assert not keeps_main_workers(load_profile(CONFIG, "release", catalogue())[0])
    service = load_profile(CONFIG, "service", catalogue())[0]
    asked = dataclasses.replace(service, checks=service.checks.with_values(batch_paths=True))
    assert not keeps_main_workers(asked)  # batch_paths is skipped over http: nothing would take them
