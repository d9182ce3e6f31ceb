"""Backends side by side in one run: per-image latency and throughput of paddle, onnxruntime and a local PaddleX
service (http), and what the HTTP path costs over in-process inference with the same models and settings.

The service is a real `paddlex --serve` on loopback with the pack's models, the profile's settings and the same
thread count. Only ratios measured in the same run gate anything (this machine is shared).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from conftest import requests_for, summary

from harness.backends import resolve_models
from harness.backends.http.serving import Service, start_service
from harness.backends.http.settings import with_url
from harness.execution.pool import make_worker
from harness.execution.state import RunPlan
from harness.execution.worker import WorkerSpec
from harness.model.settings import EngineSettings

pytestmark = pytest.mark.bench
REPEATS = 2


@pytest.fixture(scope="module")
def service(default_plan: RunPlan, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    s = start_service(tmp_path_factory.mktemp("bench-service"), default_plan.dirs, default_plan.profile.engine,
                      cpu_threads=default_plan.profile.engine.resolved_threads())
    try:
        yield s
    finally:
        s.kill()


def settings_for(p: RunPlan, backend: str, url: str) -> EngineSettings:
    neutral = dataclasses.replace(p.profile.engine, backend=backend)
    if backend == "http":
        return with_url(dataclasses.replace(neutral, enable_mkldnn=True, cpu_threads=None), url)
    if backend == "onnxruntime":
        return dataclasses.replace(neutral, enable_mkldnn=True, cpu_threads=None)
    return neutral


@pytest.mark.parametrize("backend", ["paddle", "onnxruntime", "http"])
def test_backend_latency_and_throughput(benchmark: Any, default_plan: RunPlan, service: Service, backend: str) -> None:
    """One worker (or one request in flight), every smoke image, REPEATS predicts each; load kept apart."""
    p = default_plan
    settings = settings_for(p, backend, service.url)
    dirs = resolve_models(settings, p.base, p.profile.model_cache)
    spec = WorkerSpec(settings=settings, dirs=dirs, max_pixels=p.profile.max_image_pixels, label=f"bench-{backend}")
    requests = requests_for(p.items)
    per_image: list[float] = []
    walls: list[float] = []
    with make_worker(spec, 600) as w:
        w.start()

        def one_pass() -> None:
            t0 = time.perf_counter()
            for req in requests:
                (out,) = w.infer([req], repeats=REPEATS)
                assert out.ok, out.error
                per_image.append(statistics.median(out.predict_s))
            walls.append(time.perf_counter() - t0)

        benchmark.pedantic(one_pass, rounds=1, warmup_rounds=0)
        load = w.load_s[0] if w.load_s else None
    images = len(requests) * REPEATS
    benchmark.extra_info.update({
        "backend": backend, "images": len(requests), "repeats": REPEATS,
        "latency_s": summary(per_image), "p90_s": sorted(per_image)[min(len(per_image) - 1, int(0.9 * len(per_image)))],
        "throughput_images_per_s": images / walls[-1], "load_s": load,
    })


def test_http_overhead_vs_in_process(benchmark: Any, default_plan: RunPlan, service: Service,
                                     engine: Any, smoke_images: list[tuple[str, np.ndarray]]) -> None:
    """The same images, alternately through the service (HTTP client: PNG + base64 + JSON + round trip + the
    server's decoding) and through the in-process engine with the same models, settings and threads."""
    from harness.backends.http.engine import HttpBackend, encode_image

    client = HttpBackend(settings_for(default_plan, "http", service.url), default_plan.dirs)
    client.predict([smoke_images[0][1]], [smoke_images[0][0]])  # warm the server
    ratios, http_s, local_s, encode_s = [], [], [], []

    def alternate() -> None:
        for image_id, img in smoke_images:
            t0 = time.perf_counter()
            remote = client.predict([img], [image_id])
            t1 = time.perf_counter()
            local = engine.predict([img], [image_id])
            t2 = time.perf_counter()
            encode_image(img)
            encode_s.append(time.perf_counter() - t2)
            http_s.append(t1 - t0)
            local_s.append(t2 - t1)
            ratios.append((t1 - t0) / (t2 - t1))
            assert [ln.text for ln in remote[0].lines] == [ln.text for ln in local[0].lines]

    benchmark.pedantic(alternate, rounds=1, warmup_rounds=0)
    benchmark.extra_info.update({
        "images": len(smoke_images), "http_s": summary(http_s), "in_process_s": summary(local_s),
        "overhead_s_median": statistics.median(h - l for h, l in zip(http_s, local_s, strict=True)),
        "ratio_http_over_in_process": summary(ratios), "client_png_base64_s": summary(encode_s),
    })
    # Gate on the ratio measured side by side (not on one image: the one-image smoke run only proves it runs):
    # the HTTP path must not cost more than half again the inference.
    if len(smoke_images) >= 4:
        assert statistics.median(ratios) < 1.5, benchmark.extra_info
