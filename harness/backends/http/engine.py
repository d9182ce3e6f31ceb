"""The http backend: a running service speaking the PaddleX serving OCR protocol.

`POST <url>` with `{"file": <base64 PNG>, "fileType": 1, "visualize": false}`; the answer's
`result.ocrResults[0].prunedResult` holds rec_texts, rec_scores, rec_polys plus the settings the service ran
with (text_det_params, model_settings, text_rec_score_thresh), and `result.dataInfo` the size it decoded. The
image sent is the decoded array every other backend gets, encoded losslessly (PNG): a difference is the
service's, not a decoding difference.

Transport faults never end the run and never pass unseen (harness.backends.http.client): what a try cannot fix
becomes that image's error with the service's own message, and each image's retries and the settings each answer
reported go to the worker (`take_notes`) for the inference and served_settings checks. Before anything runs,
`preflight` reaches the service once: an unreachable or wrong URL is a usage error (exit 2), and what the
service reports about its settings is recorded.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from harness.backends.http.client import Client, ServiceError
from harness.backends.paddle.engine import to_canonical  # PaddleX's result shape; loads no Paddle
from harness.model.inference import TransportNotes
from harness.model.modeldirs import ModelDirs
from harness.model.results import OcrResult
from harness.backends.http.settings import HttpSettings, http_settings
from harness.model.settings import EngineSettings
from harness.util.errors import UserError

# PaddleX's own default for the pipeline's max_side_limit, which the harness never changes.
DEFAULT_MAX_SIDE_LIMIT = 4000
__all__ = ["Client", "HttpBackend", "ServiceError", "encode_image", "expected_settings", "preflight",
           "reported_settings"]


def encode_image(image: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ServiceError("could not encode the image as PNG")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def reported_settings(pruned: Mapping[str, Any]) -> dict[str, Any]:
    """What a PaddleX OCR answer says about the settings the service ran with."""
    keys = ("text_det_params", "model_settings", "text_rec_score_thresh", "text_type")
    return {k: pruned[k] for k in keys if k in pruned}


def expected_settings(settings: EngineSettings) -> dict[str, Any]:
    """The profile's neutral settings in the service's own terms (the keys of `reported_settings`)."""
    return {
        "text_det_params": {"limit_side_len": settings.det_limit_side_len, "limit_type": settings.det_limit_type,
                            "thresh": settings.det_thresh, "box_thresh": settings.det_box_thresh,
                            "unclip_ratio": settings.det_unclip_ratio, "max_side_limit": DEFAULT_MAX_SIDE_LIMIT},
        "model_settings": {"use_doc_preprocessor": settings.use_doc_orientation_classify or settings.use_doc_unwarping,
                           "use_textline_orientation": settings.use_textline_orientation},
        "text_rec_score_thresh": settings.rec_score_thresh,
        "text_type": "general",
    }


def client_for(http: HttpSettings, where: str, *, retries: int | None = None) -> Client:
    """The profile's client: its URL and headers resolved from the environment now."""
    return Client(http.resolved_url(where), timeout_s=http.timeout_s,
                  retries=http.retries if retries is None else retries, backoff_s=http.backoff_s,
                  max_response_bytes=http.max_response_bytes, headers=http.resolved_headers(where))


def preflight(settings: EngineSettings, where: str) -> dict[str, Any]:
    """Reach the service with one small blank image; exit 2 when it cannot be reached or does not answer like
    a PaddleX OCR endpoint. Returns the facts for the stack record (no URL: ports differ between runs)."""
    client = client_for(http_settings(settings), f"{where}.http", retries=0)
    blank = np.full((32, 32, 3), 255, np.uint8)
    try:
        reply = client.post(encode_image(blank))
    except ServiceError as e:
        raise UserError(f"{where}.http: {e}") from None
    return {"server": reply.server, "reported": reported_settings(reply.pruned)}


class HttpBackend:
    """The Backend protocol over HTTP (a `RemoteBackend`); up to `max_in_flight` requests at once for a
    multi-image call."""

    name = "http"

    def __init__(self, settings: EngineSettings, dirs: ModelDirs) -> None:
        self.settings = settings
        self.client = client_for(http_settings(settings), "engine.http")
        self.url = self.client.url
        self.max_in_flight = http_settings(settings).max_in_flight
        self._notes: dict[str, TransportNotes] = {}
        self._lock = threading.Lock()

    def set_image_timeout(self, seconds: float) -> None:
        self.client.image_timeout_s = seconds

    def take_notes(self, image_id: str) -> TransportNotes:
        with self._lock:
            return self._notes.pop(image_id, TransportNotes())

    def _note(self, image_id: str, retries: Sequence[str], reported: Mapping[str, Any] | None) -> None:
        """Accumulated over an image's repeats until the worker takes them."""
        with self._lock:
            old = self._notes.get(image_id, TransportNotes())
            self._notes[image_id] = TransportNotes(retries=(*old.retries, *retries),
                                                   reported=(*old.reported, *([reported] if reported is not None
                                                                              else [])))

    def _one(self, image: np.ndarray, image_id: str) -> OcrResult:
        try:
            reply = self.client.post(encode_image(image))
        except ServiceError as e:
            self._note(image_id, e.retries, None)
            raise
        self._note(image_id, reply.retries, reported_settings(reply.pruned))
        height, width = image.shape[:2]
        size = (reply.data_info["width"], reply.data_info["height"])
        if size != (width, height):
            raise ServiceError(f"POST {self.url}: the service decoded {image_id} as {size[0]}x{size[1]}, "
                               f"sent {width}x{height}")
        try:
            return to_canonical(reply.pruned, image_id, image)
        except (RuntimeError, ValueError, TypeError) as e:
            raise ServiceError(f"POST {self.url}: unusable OCR answer for {image_id}: {e}") from None

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        if len(images) == 1 or self.max_in_flight == 1:
            return [self._one(img, i) for img, i in zip(images, image_ids, strict=True)]
        with ThreadPoolExecutor(max_workers=min(self.max_in_flight, len(images))) as pool:
            return list(pool.map(self._one, images, image_ids))

    def close(self) -> None:
        pass  # nothing is held between calls
