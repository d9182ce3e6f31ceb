"""One capture for the BN statistics of det and rec: what the Paddle predictor really receives in a worker.

A worker of the profile's own engine settings runs the images one per call (the service path) with
`WorkerSpec.capture_dir` set; every det and rec input batch it feeds the predictor is written there
(harness.backends.paddle.capture). Nothing re-implements pre-processing, so whatever the pipeline does (resize
limits, normalisation, rec width bucketing and padding, batch size) is what gets measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.backends.paddle.capture import captured_files
from harness.backends.paddle.child import ChildError
from harness.model.inference import ImageRequest
from harness.model.modeldirs import ModelDirs
from harness.model.settings import EngineSettings
from harness.execution.worker import Worker, WorkerError, WorkerSpec


@dataclass(frozen=True)
class Capture:
    """The captured input batches of one pass, per model kind, and the images that ran."""

    dir: Path
    images: tuple[str, ...]  # ids of the images that ran
    failed: tuple[tuple[str, str], ...]  # (image id, reason) of the images that did not
    # Per image that ran, in order: the indices into files(kind) of its batches, det and rec.
    batches: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = ()

    def files(self, kind: str) -> list[Path]:
        return captured_files(self.dir, kind)

    def per_image(self, kind: str) -> list[list[int]]:
        """Each image's batch indices of `kind` (an image whose text had no line has no rec batch: left out)."""
        at = 0 if kind == "det" else 1
        return [list(b[at]) for b in self.batches if b[at]]


def capture_inputs(settings: EngineSettings, dirs: ModelDirs, requests: list[ImageRequest], out: Path, *,
                   want: int | None = None, max_pixels: int = 40_000_000, log_path: str | None = None,
                   timeout_s: float = 300.0) -> Capture:
    """Runs `requests` in order through one capturing worker until `want` of them ran (None: all); an image that
    fails is recorded and replaced by the next. A worker that cannot load is a ChildError (the check fails)."""
    spec = WorkerSpec(settings=settings, dirs=dirs, max_pixels=max_pixels, label="bn-capture", log_path=log_path,
                      capture_dir=str(out))
    ran: list[str] = []
    failed: list[tuple[str, str]] = []
    batches: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    seen = {"det": 0, "rec": 0}
    try:
        with Worker(spec, timeout_s=timeout_s) as worker:
            for req in requests:
                if want is not None and len(ran) >= want:
                    break
                [outcome] = worker.infer([req])
                now = {kind: len(captured_files(Path(out), kind)) for kind in seen}
                spans = tuple(tuple(range(seen[kind], now[kind])) for kind in ("det", "rec"))
                seen = now
                if outcome.ok:
                    ran.append(req.image_id)
                    batches.append((spans[0], spans[1]))
                else:
                    failed.append((req.image_id, outcome.error or "no result"))
    except WorkerError as e:
        raise ChildError(f"bn capture: {e}") from None
    return Capture(Path(out), tuple(ran), tuple(failed), tuple(batches))
