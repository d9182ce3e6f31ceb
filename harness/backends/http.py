"""The http backend: a running service speaking the PaddleX serving OCR protocol.

`POST <url>` with `{"file": <base64 PNG>, "fileType": 1, "visualize": false}`; the answer's
`result.ocrResults[0].prunedResult` holds rec_texts, rec_scores, rec_polys plus the settings the service ran
with (text_det_params, model_settings, text_rec_score_thresh). The image sent is the decoded array every other
backend gets, encoded losslessly (PNG): a difference is the service's, not a decoding difference.

Transport faults never end the run: every request has a timeout; connection errors, timeouts and 5xx are
retried a bounded number of times with doubling backoff; what is left (and 4xx, malformed JSON) becomes that
image's error with the service's own message. Before anything runs, `preflight` reaches the service once: an
unreachable or wrong URL is a usage error (exit 2), and what the service reports about its settings is
recorded and compared with the profile's.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.backends.base import StackFacts
from harness.config import EngineSettings
from harness.errors import UserError
from harness.modelpack import ModelDirs
from harness.results import OcrResult

RETRY_STATUS = range(500, 600)
# PaddleX's own default for the pipeline's max_side_limit, which the harness never changes.
DEFAULT_MAX_SIDE_LIMIT = 4000


class ServiceError(Exception):
    """One request failed for good: the message names the URL, what went wrong and the service's own words."""


@dataclass(frozen=True)
class Reply:
    pruned: Mapping[str, Any]
    data_info: Mapping[str, Any]
    server: str | None
    tries: int


def encode_image(image: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ServiceError("could not encode the image as PNG")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def _service_message(body: bytes) -> str:
    """PaddleX answers errors as {"errorCode": N, "errorMsg": "..."}; anything else is quoted briefly."""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and data.get("errorMsg"):
            return str(data["errorMsg"])
    except ValueError:
        pass
    text = body.decode("utf-8", "replace").strip()
    return text[:200] or "(empty body)"


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        e = e.reason if isinstance(e.reason, BaseException) else e
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(e, ConnectionResetError):
        return "connection reset" + (f" ({e})" if str(e) else "")
    if isinstance(e, http.client.HTTPException):
        return f"broken HTTP answer ({type(e).__name__}: {e})"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve host ({e.strerror or e})"
    return f"{type(e).__name__}: {e}"


class Client:
    """POSTs one image at a time; thread-safe (one urllib request per call)."""

    def __init__(self, url: str, timeout_s: float, retries: int, backoff_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s

    def post(self, payload_b64: str) -> Reply:
        body = json.dumps({"file": payload_b64, "fileType": 1, "visualize": False}).encode("utf-8")
        last = "no attempt"
        tries = 0
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            tries += 1
            req = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    raw, status, server = resp.read(), resp.status, resp.headers.get("Server")
            except urllib.error.HTTPError as e:
                msg = f"HTTP {e.code} {e.reason}: {_service_message(e.read())}"
                if e.code in RETRY_STATUS:
                    last = msg
                    continue
                raise ServiceError(f"POST {self.url}: {msg}") from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                last = _reason(e)
                continue
            return self._parse(raw, status, server, tries)
        raise ServiceError(f"POST {self.url}: {last} (after {tries} tries)")

    def _parse(self, raw: bytes, status: int, server: str | None, tries: int) -> Reply:
        try:
            data = json.loads(raw)
        except ValueError as e:
            start = raw[:80].decode("utf-8", "replace")
            raise ServiceError(f"POST {self.url}: malformed JSON in the response (HTTP {status}): {e}; "
                               f"body starts {start!r}") from None
        try:
            if data.get("errorCode", 0) != 0:
                raise ServiceError(f"POST {self.url}: service error {data.get('errorCode')}: {data.get('errorMsg')}")
            result = data["result"]
            pruned = result["ocrResults"][0]["prunedResult"]
            for key in ("rec_texts", "rec_scores", "rec_polys"):
                if not isinstance(pruned[key], list):
                    raise TypeError(f"{key} is not a list")
        except (KeyError, IndexError, TypeError, AttributeError) as e:
            raise ServiceError(f"POST {self.url}: not a PaddleX OCR answer (HTTP {status}): missing or bad "
                               f"result.ocrResults[0].prunedResult ({type(e).__name__}: {e})") from None
        return Reply(pruned=pruned, data_info=result.get("dataInfo") or {}, server=server, tries=tries)


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


@dataclass(frozen=True)
class SettingDifference:
    key: str  # dotted, in the service's terms: text_det_params.limit_type
    profile: Any
    service: Any

    def describe(self) -> str:
        return f"{self.key}: profile {self.profile!r}, service {self.service!r}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "profile": self.profile, "service": self.service}


def settings_differences(expected: Mapping[str, Any], reported: Mapping[str, Any]) -> list[SettingDifference]:
    """Every expected setting the service reports differently, or does not report at all."""
    out: list[SettingDifference] = []

    def walk(exp: Any, rep: Any, prefix: str) -> None:
        if isinstance(exp, Mapping):
            for k, v in exp.items():
                walk(v, rep.get(k) if isinstance(rep, Mapping) else None, f"{prefix}{k}" if not prefix else f"{prefix}.{k}")
            return
        same = (rep is not None and isinstance(exp, (int, float)) and not isinstance(exp, bool)
                and isinstance(rep, (int, float)) and not isinstance(rep, bool) and abs(float(exp) - float(rep)) < 1e-9)
        if not same and exp != rep:
            out.append(SettingDifference(prefix, exp, rep))

    walk(expected, reported, "")
    return out


def preflight(settings: EngineSettings, where: str) -> dict[str, Any]:
    """Reach the service with one small blank image; exit 2 when it cannot be reached or does not answer like
    a PaddleX OCR endpoint. Returns the facts for the stack record (no URL: ports differ between runs)."""
    http = settings.http
    url = http.resolved_url(f"{where}.http")
    client = Client(url, timeout_s=http.timeout_s, retries=0, backoff_s=0.0)
    blank = np.full((32, 32, 3), 255, np.uint8)
    try:
        reply = client.post(encode_image(blank))
    except ServiceError as e:
        raise UserError(f"{where}.http: {e}") from None
    return {"server": reply.server, "reported": reported_settings(reply.pruned)}


class HttpBackend:
    """The Backend protocol over HTTP; up to `max_in_flight` requests at once for a multi-image call."""

    name = "http"

    def __init__(self, settings: EngineSettings, dirs: ModelDirs) -> None:
        h = settings.http
        self.settings = settings
        self.url = h.resolved_url("engine.http")
        self.client = Client(self.url, timeout_s=h.timeout_s, retries=h.retries, backoff_s=h.backoff_s)
        self.max_in_flight = h.max_in_flight
        self._last: Reply | None = None

    def facts(self) -> StackFacts:
        reported = reported_settings(self._last.pruned) if self._last else {}
        return StackFacts(self.name, "service", None, {},
                          {"server": self._last.server if self._last else None, "reported": reported})

    def _one(self, image: np.ndarray, image_id: str) -> OcrResult:
        from harness.backends.paddle import to_canonical

        reply = self.client.post(encode_image(image))
        self._last = reply
        height, width = image.shape[:2]
        size = (reply.data_info.get("width"), reply.data_info.get("height"))
        if None not in size and size != (width, height):
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
        self._last = None
