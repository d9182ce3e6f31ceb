"""A loopback server that answers the PaddleX OCR protocol with canned bytes, for transport faults that need no
real OCR (redirects, huge or trickling or missing answers, deep JSON): seconds instead of a service start.

Request 1 (the harness's preflight) and every request up to `after` get a well-formed answer that reports the
profile's default settings; later ones get the fault of `mode`:
- ok: the same well-formed answer (no lines, `dataInfo` from the PNG's own header);
- redirect: 301 to another host;
- no-datainfo: a well-formed answer without `result.dataInfo`;
- huge: a 200 answer streamed without Content-Length, `huge_bytes` long;
- huge-declared: a 200 answer whose Content-Length says `huge_bytes` (nothing else sent);
- trickle: a well-formed answer sent one byte every `delay_s`;
- hang-after-headers: status and headers (with Content-Length), then nothing;
- never: the request is read and never answered;
- status: `status` with `Retry-After: retry_after` (when set) and a PaddleX error body;
- deep: a JSON body nested 100 000 arrays deep (applies from the preflight on when `after` = 0);
- surrogate / nan: a well-formed answer with one line whose text is the escape "\\ud800" (a lone surrogate) or
  whose score is NaN (Python's json writes it; JSON has no such number).
With `tls=True` it speaks https with the committed loopback certificate (tests/data, for 127.0.0.1 only; a
client trusts it through SSL_CERT_FILE). It counts requests, the bytes it managed to send, and keeps each
request's headers.
"""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.http.engine import expected_settings
from harness.model.settings import EngineSettings

CERT = Path(__file__).parent / "data" / "loopback-cert.pem"
KEY = Path(__file__).parent / "data" / "loopback-key.pem"


def ok_answer(png_b64: str | None, data_info: bool = True, line: tuple[str, float] | None = None) -> bytes:
    width = height = 32
    if png_b64:
        png = base64.b64decode(png_b64[:64])  # the IHDR chunk: width and height at bytes 16..24
        width, height = struct.unpack(">II", png[16:24])
    pruned: dict[str, Any] = {"rec_texts": [], "rec_scores": [], "rec_polys": [],
                              **expected_settings(EngineSettings())}
    if line is not None:
        pruned.update(rec_texts=[line[0]], rec_scores=[line[1]], rec_polys=[[[1, 1], [20, 1], [20, 9], [1, 9]]])
    result: dict[str, Any] = {"ocrResults": [{"prunedResult": pruned}]}
    if data_info:
        result["dataInfo"] = {"width": width, "height": height, "type": "image"}
    return json.dumps({"logId": "x", "errorCode": 0, "errorMsg": "Success", "result": result}).encode()


@dataclass
class CannedState:
    mode: str
    after: int = 1
    delay_s: float = 0.2
    huge_bytes: int = 300 * 1024 * 1024
    status: int = 503
    retry_after: str | None = None
    requests: int = 0
    sent: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


class CannedService:
    def __init__(self, mode: str = "ok", *, tls: bool = False, **options: Any) -> None:
        self.state = CannedState(mode, **options)
        state = self.state

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with state.lock:
                    state.requests += 1
                    n = state.requests
                    state.headers.append(dict(self.headers.items()))
                try:
                    payload = json.loads(body).get("file")
                except ValueError:
                    payload = None
                try:
                    self._handle(state.mode if n > state.after else "ok", payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up: what the test wants
                    pass
                self.close_connection = True

            def _head(self, code: int, headers: dict[str, str]) -> None:
                self.send_response(code)
                for k, v in {"Content-Type": "application/json", "Connection": "close", **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.flush()

            def _write(self, data: bytes) -> None:
                self.wfile.write(data)
                self.wfile.flush()
                with state.lock:
                    state.sent += len(data)

            def _handle(self, mode: str, payload: str | None) -> None:
                if mode in ("ok", "no-datainfo", "trickle"):
                    data = ok_answer(payload, data_info=mode != "no-datainfo")
                    self._head(200, {"Content-Length": str(len(data))})
                    if mode != "trickle":
                        self._write(data)
                        return
                    for i in range(len(data)):
                        if state.stop.wait(state.delay_s):
                            return
                        self._write(data[i:i + 1])
                elif mode in ("surrogate", "nan"):
                    line = ("\ud800", 0.9) if mode == "surrogate" else ("ok", float("nan"))
                    data = ok_answer(payload, line=line)
                    self._head(200, {"Content-Length": str(len(data))})
                    self._write(data)
                elif mode == "redirect":
                    self._head(301, {"Location": "http://other.example:8080/ocr", "Content-Length": "0"})
                elif mode == "huge":
                    self._head(200, {})  # no length: read until the connection closes
                    chunk = b" " * (1024 * 1024)
                    for _ in range(state.huge_bytes // len(chunk)):
                        if state.stop.is_set():
                            return
                        self._write(chunk)
                elif mode == "huge-declared":
                    self._head(200, {"Content-Length": str(state.huge_bytes)})
                elif mode in ("hang-after-headers", "never"):
                    if mode == "hang-after-headers":
                        self._head(200, {"Content-Length": "1000"})
                    state.stop.wait(600)
                elif mode == "status":
                    data = json.dumps({"errorCode": state.status, "errorMsg": f"planted {state.status}"}).encode()
                    extra = {"Retry-After": state.retry_after} if state.retry_after is not None else {}
                    self._head(state.status, {"Content-Length": str(len(data)), **extra})
                    self._write(data)
                elif mode == "deep":
                    data = b"[" * 100_000 + b"]" * 100_000
                    self._head(200, {"Content-Length": str(len(data))})
                    self._write(data)
                else:
                    raise ValueError(f"unknown mode {mode!r}")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(CERT, KEY)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base}/ocr"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for_requests(self, n: int, timeout_s: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.state.lock:
                if self.state.requests >= n:
                    return True
            time.sleep(0.02)
        return False

    def __enter__(self) -> CannedService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.state.stop.set()  # handlers blocked in never/hang/trickle return
        self.server.shutdown()
        self.server.server_close()
