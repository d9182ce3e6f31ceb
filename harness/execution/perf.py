"""Measurement helpers for the benchmarks: a bare PaddleOCR loop, detection-only and recognition-only models, peak RSS.

The bare loop is the yardstick for the harness's own cost: the same `PaddleOCR.predict` calls with the same
kwargs (`paddleocr_kwargs`), in a fresh process like a harness worker (the first predict of a process is cold:
oneDNN builds its kernels then), on images decoded before the clock starts. It runs one image at a time on
request, so a benchmark can interleave it image by image with the harness path: on a shared machine, numbers
taken seconds apart are comparable, numbers taken a minute apart often are not. Nothing here asserts a time.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Self

import numpy as np

from harness.corpus.loader import read_image
from harness.engine import paddleocr_kwargs, set_offline_env, to_canonical
from harness.execution.normaliser import peak_rss_kib
from harness.backends.identity import named
from harness.model.modeldirs import ModelDirs
from harness.model.results import OcrResult
from harness.model.settings import EngineSettings


def peak_rss_bytes(pid: int | None = None) -> int | None:
    """Peak resident set size (VmHWM) of a live process; None where /proc is not available."""
    kib = peak_rss_kib(pid)
    return None if kib is None else kib * 1024


def _bare_main(conn: Connection, settings: EngineSettings, dirs: ModelDirs, images: list[tuple[str, Path]],
               max_pixels: int) -> None:
    arrays = [read_image(path, max_pixels=max_pixels) for _, path in images]
    set_offline_env()
    t0 = time.perf_counter()
    from paddleocr import PaddleOCR

    ocr = PaddleOCR(**paddleocr_kwargs(settings, dirs))
    conn.send(time.perf_counter() - t0)
    while (index := conn.recv()) is not None:
        t0 = time.perf_counter()
        raw = ocr.predict(arrays[index])
        seconds = time.perf_counter() - t0
        conn.send((seconds, to_canonical(raw[0], images[index][0], arrays[index])))


class BareProcess:
    """A spawned process holding a bare `PaddleOCR` and the decoded images; `predict(i)` times one call there.

    Only the predict call is timed (in the child), so the pipe to this process costs the measurement nothing.
    The child starts cold, like a new harness worker.
    """

    def __init__(self, settings: EngineSettings, dirs: ModelDirs, images: Sequence[tuple[str, Path]],
                 max_pixels: int = 40_000_000) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_bare_main, args=(child, settings, dirs, list(images), max_pixels),
                                 daemon=True, name="ocr-harness-bare")
        self._proc.start()
        child.close()
        self.load_s: float = self._receive("loading the model")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def predict(self, index: int) -> tuple[float, OcrResult]:
        """(seconds inside `PaddleOCR.predict`, canonical result) for image `index`."""
        self._conn.send(index)
        reply: tuple[float, OcrResult] = self._receive(f"predicting image {index}")
        return reply

    def _receive(self, doing: str) -> Any:
        try:
            return self._conn.recv()
        except EOFError:  # the child's traceback or Paddle's crash text went to stderr
            self._proc.join(10)
            raise RuntimeError(f"the bare PaddleOCR process died while {doing} "
                               f"(exit code {self._proc.exitcode})") from None

    def close(self) -> None:
        if self._proc.is_alive():
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._proc.join(30)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
        self._conn.close()


def _common_kwargs(settings: EngineSettings) -> dict[str, Any]:
    return {"device": settings.device, "enable_mkldnn": settings.enable_mkldnn,
            "cpu_threads": settings.resolved_threads()}


def detector(settings: EngineSettings, dirs: ModelDirs) -> Any:
    """The pipeline's text detection model alone, with the same dir, limits and thresholds."""
    set_offline_env()
    from paddleocr import TextDetection

    settings = named(settings, dirs)
    return TextDetection(model_name=settings.det_model_name, model_dir=str(dirs.det),
                         limit_side_len=settings.det_limit_side_len, limit_type=settings.det_limit_type,
                         thresh=settings.det_thresh, box_thresh=settings.det_box_thresh,
                         unclip_ratio=settings.det_unclip_ratio, **_common_kwargs(settings))


def recognizer(settings: EngineSettings, dirs: ModelDirs) -> Any:
    """The pipeline's text recognition model alone; call `predict(crops, batch_size=settings.rec_batch_size)`."""
    set_offline_env()
    from paddleocr import TextRecognition

    settings = named(settings, dirs)
    return TextRecognition(model_name=settings.rec_model_name, model_dir=str(dirs.rec), **_common_kwargs(settings))


def text_crops(image: np.ndarray, polys: Sequence[Any]) -> list[np.ndarray]:
    """Line crops as the OCR pipeline feeds them to recognition: perspective crops, sorted by aspect ratio."""
    from paddlex.inference.pipelines.components import CropByPolys

    crops = [c for c in CropByPolys(det_box_type="quad")(image, [np.asarray(p) for p in polys]) if c.size]
    return sorted(crops, key=lambda c: c.shape[1] / float(c.shape[0]))
