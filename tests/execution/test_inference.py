"""The inference core (harness.execution.inference) that a worker process and the in-process worker share: the
same engine gives the same outcomes through either, with the same bookkeeping (repeats, read and predict times,
the yardstick, images served, first call), and an engine that raises or an unreadable image fails that request
only, with the same message. What differs is the clock that prices the cost: CPU in a worker, wall in the
harness's own process."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT

from harness.backends import engine_factory
from harness.checks.registry import catalogue
from harness.config import load_profile
from harness.corpus.loader import load_corpus
from harness.execution.local import LocalWorker
from harness.execution.worker import Worker, WorkerSpec
from harness.model.inference import ImageOutcome, ImageRequest
from harness.backends.paddle.pack import resolve_model_dirs

RAISES = "slip_0001"


def run_calls(worker: Worker | LocalWorker, calls: list[list[ImageRequest]]) -> list[ImageOutcome]:
    return [worker.infer(call, repeats=2)[0] for call in calls]


@pytest.mark.slow
def test_a_worker_process_and_the_in_process_worker_keep_the_same_books(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAULT_IDS", RAISES)  # read by faults.RaisingEngine, in the spawned worker too
    engine = load_profile(ROOT / "harness.toml", "release", catalogue())[0].engine
    settings = dataclasses.replace(engine, factory="faults:RaisingEngine")
    items = {it.id: it for it in load_corpus(CORPUS, subset="smoke").items}
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a png")
    calls = [[ImageRequest(i, str(items[i].path), items[i].sha256)] for i in ("slip_0000", RAISES)]
    calls.append([ImageRequest("corrupt", str(corrupt), None)])
    spec = WorkerSpec(settings=settings, dirs=resolve_model_dirs(engine, ROOT), label="core")
    with Worker(spec) as w:
        process = run_calls(w, calls)
    with LocalWorker(spec, engine_factory(settings)) as w:
        local = run_calls(w, calls)
    for (ok, raised, unreadable), clock in ((process, "cpu"), (local, "wall")):
        assert ok.ok and len(ok.runs) == 2 and len(ok.predict_s) == len(ok.cost_s) == 2 and not ok.mutated
        assert ok.cost_clock == clock and ok.reference_s and ok.reference_s > 0 and ok.read_s > 0
        assert ok.first_call and ok.served == 1 and ok.peak_rss_kib and ok.worker_pid
        assert raised.error == f"RuntimeError: planted predict failure on {RAISES}" and not raised.runs
        assert unreadable.error and "corrupt.png" in unreadable.error and not unreadable.runs
    assert process[2].error == local[2].error
    assert process[0].runs == local[0].runs and len(process[0].runs[0].lines) > 10
    assert local[0].cost_s == local[0].predict_s  # wall clock: the predict's own time is its cost
    assert process[0].worker_pid != os.getpid() == local[0].worker_pid
