"""Per-image latency on the smoke subset: end to end (in this process and through a worker), detection alone,
recognition alone, and what starting a worker costs (model load + the cold first predict) in time and memory.

Each round is one image, so the medians are per-image medians over the subset."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import pytest
from conftest import mib, requests_for, rotating, rounds

from harness.execution.perf import detector, peak_rss_bytes, recognizer, text_crops
from harness.execution.state import RunPlan
from harness.execution.worker import Worker, WorkerSpec
from harness.model.inference import ImageOutcome, ImageRequest

pytestmark = pytest.mark.bench


def _spec(p: RunPlan, label: str) -> WorkerSpec:
    return WorkerSpec(settings=p.profile.engine, dirs=p.dirs, max_pixels=p.profile.max_image_pixels, label=label)


def test_worker_start(benchmark: Any, default_plan: RunPlan) -> None:
    """Spawn, import Paddle, build the pipeline, then the first predict (cold: oneDNN creates its kernels)."""
    first = requests_for(default_plan.items[:1])
    started: list[Worker] = []
    records: list[tuple[float, float, int | None]] = []

    def close_previous() -> None:
        while started:
            started.pop().close()

    def start_and_first_predict() -> None:
        w = Worker(_spec(default_plan, "bench-start"))
        started.append(w)
        (out,) = w.infer(first)
        assert out.ok, out.error
        records.append((w.load_s[0], out.predict_s[0], peak_rss_bytes(w.pid)))

    try:
        benchmark.pedantic(start_and_first_predict, setup=close_previous, **rounds(2, warmup=1))
    finally:
        close_previous()
    measured = records[-2:]  # not the warm-up round (with --benchmark-disable there is one record)
    benchmark.extra_info.update({
        "model_load_s_median": statistics.median(r[0] for r in measured),
        "cold_first_predict_s_median": statistics.median(r[1] for r in measured),
        "worker_peak_rss_mib_after_first": mib(max((r[2] for r in measured if r[2] is not None), default=None)),
    })


def test_e2e_in_process(benchmark: Any, engine: Any, smoke_images: list[tuple[str, np.ndarray]]) -> None:
    """`OcrEngine.predict` on one image, warm, in this process: the floor for the service path."""
    def one(image: tuple[str, np.ndarray]) -> Any:
        return engine.predict([image[1]], [image[0]])

    benchmark.pedantic(one, setup=rotating(smoke_images), **rounds(len(smoke_images), warmup=1))
    benchmark.extra_info["images"] = len(smoke_images)


@pytest.fixture(scope="module")
def worker(default_plan: RunPlan) -> Any:
    with Worker(_spec(default_plan, "bench")) as w:
        w.start()
        yield w


def test_e2e_worker(benchmark: Any, worker: Worker, default_plan: RunPlan) -> None:
    """One image per round trip through a persistent worker: read + sha256 in the child, predict, canonicalise,
    input-mutation digest, results pickled back. The first call (cold) is the warm-up round."""
    calls: list[tuple[float, ImageOutcome]] = []

    def one(req: ImageRequest) -> None:
        t0 = time.perf_counter()
        (out,) = worker.infer([req])
        calls.append((time.perf_counter() - t0, out))
        assert out.ok, out.error

    reqs = requests_for(default_plan.items)
    benchmark.pedantic(one, setup=rotating(reqs), **rounds(len(reqs), warmup=1))
    measured = calls[-len(reqs):]  # not the cold warm-up call
    benchmark.extra_info.update({
        "images": len(reqs),
        "worker_predict_s_median": statistics.median(o.predict_s[0] for _, o in measured),
        "worker_read_s_median": statistics.median(o.read_s for _, o in measured),
        "round_trip_minus_predict_s_median": statistics.median(t - o.predict_s[0] for t, o in measured),
        "worker_peak_rss_mib": mib(peak_rss_bytes(worker.pid)),
    })


@pytest.fixture(scope="module")
def det_model(default_plan: RunPlan) -> Any:
    return detector(default_plan.profile.engine, default_plan.dirs)


@pytest.fixture(scope="module")
def crops(det_model: Any, smoke_images: list[tuple[str, np.ndarray]]) -> list[list[np.ndarray]]:
    """Per image, the line crops recognition sees in the pipeline (from this detector's boxes)."""
    return [text_crops(img, det_model.predict(img)[0]["dt_polys"]) for _, img in smoke_images]


def test_detection_only(benchmark: Any, det_model: Any, smoke_images: list[tuple[str, np.ndarray]]) -> None:
    benchmark.pedantic(lambda img: det_model.predict(img), setup=rotating([img for _, img in smoke_images]),
                       **rounds(len(smoke_images), warmup=1))
    benchmark.extra_info["images"] = len(smoke_images)


def test_recognition_only(benchmark: Any, default_plan: RunPlan, crops: list[list[np.ndarray]]) -> None:
    """All line crops of one image per round, in the profile's recognition batch size."""
    model = recognizer(default_plan.profile.engine, default_plan.dirs)
    batch = default_plan.profile.engine.rec_batch_size
    benchmark.pedantic(lambda c: model.predict(c, batch_size=batch), setup=rotating(crops),
                       **rounds(len(crops), warmup=1))
    benchmark.extra_info.update({"images": len(crops), "rec_batch_size": batch,
                                 "crops_per_image_median": statistics.median(len(c) for c in crops)})
