"""The http backend's transport: one image POSTed to a service, every fault of the exchange named, none hidden.

- one try is bounded as a whole (`timeout_s` covers connect, send and the whole answer, however slowly it
  trickles: a timer cuts the socket at the deadline), and an image's tries stop at its `image_timeout_s`;
- connection errors, timeouts, 429 and 5xx are retried (doubling backoff, or the service's `Retry-After`; a wait
  past the image's deadline fails the image at once), and every retry's reason is returned with the answer or
  the error;
- a redirect is refused (followed, a POST turns into a GET without the image, answered by another host), an
  answer larger than `max_response_bytes` is refused while it is read, and an answer without `dataInfo` or
  nested too deeply to parse is not an OCR answer;
- `cancel_requests` (a SIGINT/SIGTERM) cuts every request in flight at once.
No message names the URL with its credentials (harness.util.service_url). stdlib `http.client` rather than urllib:
urllib follows redirects and reads whole bodies by default, and neither it nor urllib3 bounds a whole answer in
time, which is what the timer here does.
"""

from __future__ import annotations

import base64
import email.utils
import errno
import http.client
import json
import os
import select
import socket
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.http.settings import HttpSettings
from harness.util.errors import UserError
from harness.util.service_url import Endpoint, parse_endpoint
from harness.util.values import no_constant, printable, value_problem

ERROR_BODY_LIMIT = 64 * 1024  # of a non-2xx answer, only the start is read: it is quoted, never parsed whole
CHUNK = 64 * 1024
POLL_S = 0.1  # how often a connect in progress looks at its deadline and at cancellation


def retryable_status(status: int) -> bool:
    return status == 429 or 500 <= status < 600


class ServiceError(Exception):
    """One request failed for good: the message names the (redacted) URL, what went wrong and the service's own
    words; `retries` says why each earlier try was retried."""

    def __init__(self, message: str, retries: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.retries = tuple(retries)


@dataclass(frozen=True)
class Reply:
    pruned: Mapping[str, Any]
    data_info: Mapping[str, Any]
    server: str | None
    tries: int
    retries: tuple[str, ...] = ()


def _service_message(body: bytes) -> str:
    """PaddleX answers errors as {"errorCode": N, "errorMsg": "..."}; anything else is quoted briefly."""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and data.get("errorMsg"):
            return printable(str(data["errorMsg"])[:500])  # "\ud800" in it: the report must still be written
    except (ValueError, RecursionError):
        pass
    text = body.decode("utf-8", "replace").strip()
    return text[:200] or "(empty body)"


def _reason(e: BaseException) -> str:
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


def _after(tries: int) -> str:
    return f"after {tries} {'try' if tries == 1 else 'tries'}"


def _short(e: BaseException) -> str:
    """A retry's reason as the summary lists it."""
    return _reason(e).split(" (")[0]


def retry_after_s(value: str | None) -> float | None:
    """Retry-After in seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


# --- cancellation: every try in flight, so that a stopping run can cut them all at once -------------------------

_CANCELLED = threading.Event()
_LIVE: set[_Try] = set()
# Reentrant: the signal handler that cancels runs in the main thread, possibly while that thread (a preflight)
# holds the lock.
_LIVE_LOCK = threading.RLock()


def cancel_requests() -> None:
    """From now on no request starts, no retry waits, and every request in flight is cut now."""
    _CANCELLED.set()
    with _LIVE_LOCK:
        live = list(_LIVE)
    for t in live:
        t.cut()


def allow_requests() -> None:
    _CANCELLED.clear()


class _Try:
    """One try's deadline. A socket read only times out when nothing arrives, so a trickling answer would never
    end; a timer cuts the socket at the deadline instead, and a cancelled run cuts it at once."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self._sock: socket.socket | None = None
        self._lock = threading.RLock()  # reentrant for the same reason as _LIVE_LOCK
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Try:
        with _LIVE_LOCK:
            _LIVE.add(self)
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def stopped(self) -> bool:
        return self.expired or _CANCELLED.is_set() or self.remaining() <= 0

    def _expire(self) -> None:
        self.expired = True
        self.cut()

    def attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
        if self.stopped():
            self.cut()

    def cut(self) -> None:
        """Shut the socket down: a read or write blocked on it in another thread returns at once."""
        with self._lock:
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def connect(self, address: tuple[str, int], timeout: object = None, source_address: object = None
                ) -> socket.socket:
        """http.client's `_create_connection`: a connect that the deadline and cancellation can stop (a socket
        that is still connecting cannot be shut down from another thread, so it polls)."""
        last: OSError = OSError("no address to connect to")
        for family, type_, proto, _, addr in socket.getaddrinfo(*address, type=socket.SOCK_STREAM):
            sock = socket.socket(family, type_, proto)
            try:
                sock.setblocking(False)
                err = sock.connect_ex(addr)
                while err in (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY):
                    if self.stopped():
                        raise TimeoutError("timed out while connecting")
                    _, ready, _ = select.select([], [sock], [], max(0.0, min(POLL_S, self.remaining())))
                    if ready:
                        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, os.strerror(err))
                sock.settimeout(max(0.001, self.remaining()))
                self.attach(sock)
                return sock
            except OSError as e:
                sock.close()
                last = e
            except BaseException:
                sock.close()
                raise
        raise last


class _Failed(Exception):
    """One try failed: `short` is the retry's reason, `message` the image's error if it stays failed."""

    def __init__(self, short: str, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.short, self.message, self.retryable = short, message, retryable


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes


class Client:
    """POSTs one image at a time; thread-safe (one connection per try)."""

    def __init__(self, url: str, *, timeout_s: float, retries: int, backoff_s: float,
                 image_timeout_s: float | None = None, max_response_bytes: int = HttpSettings.max_response_bytes,
                 headers: Mapping[str, str] | None = None) -> None:
        try:
            self.endpoint: Endpoint = parse_endpoint(url)
        except ValueError as e:  # validated with the profile; a URL from elsewhere still gets one line
            raise UserError(f"service URL {e}") from None
        self.url = self.endpoint.shown  # the only form of the URL any message uses
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.image_timeout_s = image_timeout_s if image_timeout_s is not None else timeout_s * (retries + 1)
        self.max_response_bytes = max_response_bytes
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        ep = self.endpoint
        if ep.username is not None and not any(k.lower() == "authorization" for k in self.headers):
            token = f"{ep.username}:{ep.password or ''}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")

    def post(self, payload_b64: str) -> Reply:
        body = json.dumps({"file": payload_b64, "fileType": 1, "visualize": False}).encode("utf-8")
        image_deadline = time.monotonic() + self.image_timeout_s
        retries: list[str] = []
        tries = 0
        while True:
            if _CANCELLED.is_set():
                raise ServiceError(f"POST {self.url}: cancelled: the run is stopping", retries)
            tries += 1
            deadline = min(time.monotonic() + self.timeout_s, image_deadline)
            wait: float | None = None
            try:
                answer = self._exchange(body, deadline, deadline == image_deadline)
            except _Failed as e:
                if not e.retryable:
                    raise ServiceError(f"POST {self.url}: {e.message}", retries) from None
                short, message = e.short, e.message
            else:
                status = answer.status
                if 200 <= status < 300:
                    return self._parse(answer, tries, retries)
                if 300 <= status < 400:
                    raise ServiceError(f"POST {self.url}: {self._redirect(answer)}", retries)
                message = f"HTTP {status} {answer.reason}: {_service_message(answer.body)}"
                if not retryable_status(status):
                    raise ServiceError(f"POST {self.url}: {message}", retries)
                short, wait = str(status), retry_after_s(answer.headers.get("Retry-After"))
            if tries > self.retries:
                raise ServiceError(f"POST {self.url}: {message} ({_after(tries)})", retries)
            pause = wait if wait is not None else self.backoff_s * 2 ** (tries - 1)
            left = image_deadline - time.monotonic()
            if pause >= left:
                said = f"Retry-After {pause:g} s" if wait is not None else f"the next try (in {pause:g} s)"
                raise ServiceError(f"POST {self.url}: {message}; {said} would pass the image's deadline "
                                   f"(image_timeout_s {self.image_timeout_s:g}, {max(0.0, left):.1f} s left) "
                                   f"({_after(tries)})", retries)
            retries.append(short)
            if _CANCELLED.wait(pause):
                raise ServiceError(f"POST {self.url}: cancelled: the run is stopping", retries)

    def _exchange(self, body: bytes, deadline: float, last_for_image: bool) -> _Answer:
        ep = self.endpoint
        cls = http.client.HTTPSConnection if ep.scheme == "https" else http.client.HTTPConnection
        limit = self.max_response_bytes
        received = [0]
        with _Try(deadline) as t:
            conn = cls(ep.host, ep.port, timeout=max(0.001, t.remaining()))
            conn._create_connection = t.connect  # type: ignore[attr-defined]  # http.client's own seam for this
            try:
                conn.connect()
                t.attach(conn.sock)  # https wraps the socket: cut the wrapped one
                conn.request("POST", ep.target, body=body, headers=self.headers)
                resp = conn.getresponse()
                ok = 200 <= resp.status < 300
                length = resp.getheader("Content-Length")
                if ok and length is not None and length.strip().isdigit() and int(length) > limit:
                    raise _Failed("too large", f"answer of {int(length)} bytes (Content-Length) is larger than "
                                  f"max_response_bytes {limit}", retryable=False)
                raw = self._read(resp, limit if ok else ERROR_BODY_LIMIT, strict=ok, received=received)
                if t.expired or _CANCELLED.is_set():  # the cut socket reads as a clean end: it was not
                    raise TimeoutError("timed out")
                if ok and length is not None and length.strip().isdigit() and len(raw) < int(length):
                    raise http.client.IncompleteRead(raw, int(length) - len(raw))
                return _Answer(resp.status, resp.reason, resp.headers, raw)
            except _Failed:
                raise
            except (OSError, http.client.HTTPException, ValueError) as e:
                if _CANCELLED.is_set():
                    raise _Failed("cancelled", "cancelled: the run is stopping", retryable=False) from None
                if t.expired or t.remaining() <= 0 or isinstance(e, TimeoutError):
                    which = "image_timeout_s" if last_for_image else "timeout_s"
                    got = f"; {received[0]} of the answer's bytes received" if received[0] else ""
                    raise _Failed("timed out", f"timed out: no complete answer within {which} "
                                  f"({self.timeout_s if which == 'timeout_s' else self.image_timeout_s:g} s{got})",
                                  retryable=True) from None
                raise _Failed(_short(e), _reason(e), retryable=True) from None
            finally:
                conn.close()

    @staticmethod
    def _read(resp: http.client.HTTPResponse, limit: int, *, strict: bool, received: list[int]) -> bytes:
        """The body, read in chunks so a too-large answer is refused before it is held (strict), or cut to its
        start (an error answer, only quoted)."""
        chunks: list[bytes] = []
        while True:
            chunk = resp.read1(CHUNK)
            if not chunk:
                return b"".join(chunks)
            received[0] += len(chunk)
            if received[0] > limit:
                if strict:
                    raise _Failed("too large", f"answer larger than max_response_bytes {limit} (refused after "
                                  f"{received[0]} bytes)", retryable=False)
                chunks.append(chunk[: limit - (received[0] - len(chunk))])
                return b"".join(chunks)
            chunks.append(chunk)

    @staticmethod
    def _redirect(answer: _Answer) -> str:
        location = answer.headers.get("Location")
        try:
            parts = urllib.parse.urlsplit(location or "")
            where = parts.hostname and (parts.hostname + (f":{parts.port}" if parts.port else ""))
        except ValueError:
            where = "an unreadable Location"
        target = where or ("the same host" if location else "no Location")
        return (f"HTTP {answer.status} {answer.reason}: redirect to {target} refused (a redirected POST arrives "
                f"as a GET without the image; set url to the address that answers)")

    def _parse(self, answer: _Answer, tries: int, retries: Sequence[str]) -> Reply:
        status, raw = answer.status, answer.body

        def fail(why: str) -> ServiceError:
            return ServiceError(f"POST {self.url}: {why}", retries)

        try:
            data = json.loads(raw, parse_constant=no_constant)
        except RecursionError:
            raise fail(f"answer nested too deeply to be a PaddleX OCR answer (HTTP {status}, {len(raw)} bytes)") \
                from None
        except ValueError as e:
            start = raw[:80].decode("utf-8", "replace")
            raise fail(f"malformed JSON in the response (HTTP {status}): {e}; body starts {start!r}") from None
        if not isinstance(data, dict):
            raise fail(f"not a PaddleX OCR answer (HTTP {status}): a JSON {type(data).__name__}, not an object")
        if (bad := value_problem(data)) is not None:  # the image's result could not be written to the report
            raise fail(f"unusable answer (HTTP {status}): {bad[0]}: {bad[1]}")
        if data.get("errorCode", 0) != 0:
            raise fail(f"service error {data.get('errorCode')}: {printable(str(data.get('errorMsg'))[:500])}")
        try:
            result = data["result"]
            pruned = result["ocrResults"][0]["prunedResult"]
            for key in ("rec_texts", "rec_scores", "rec_polys"):
                if not isinstance(pruned[key], list):
                    raise TypeError(f"{key} is not a list")
        except (KeyError, IndexError, TypeError, AttributeError) as e:
            raise fail(f"not a PaddleX OCR answer (HTTP {status}): missing or bad "
                       f"result.ocrResults[0].prunedResult ({type(e).__name__}: {e})") from None
        info = result.get("dataInfo")
        if not (isinstance(info, dict) and all(isinstance(info.get(k), int) and not isinstance(info.get(k), bool)
                                               for k in ("width", "height"))):
            raise fail(f"not a PaddleX OCR answer (HTTP {status}): no result.dataInfo with width and height, so "
                       f"the size the service decoded cannot be checked")
        return Reply(pruned=pruned, data_info=info, server=answer.headers.get("Server"), tries=tries,
                     retries=tuple(retries))
