"""A loopback proxy in front of a real service that plants transport faults (the OCR itself stays real).

Modes, applied from request number `after` + 1 on (the harness's preflight is request 1):
- pass: forward everything;
- status-once: answer the next request with HTTP 503 and a PaddleX error body, then forward;
- status-always: answer every request with HTTP 500 and a PaddleX error body;
- truncate: forward, but cut the answer's JSON in half;
- slow: wait `delay_s` before forwarding (longer than the client's timeout);
- status-n: answer the next `count` requests with `status` (and `Retry-After: retry_after` when set), then forward;
- every: answer every `every`-th request with HTTP 503 (a service that fails one request in `every`), forward
  the others;
- drift: forward, but make the answer report PaddleX's template detection limits (min side 64) although the
  service ran the profile's (a replica configured differently from the one that answered the preflight).
It also counts requests and the most that were in flight at once.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field


@dataclass
class ProxyState:
    upstream: str
    mode: str = "pass"
    after: int = 1
    delay_s: float = 0.0
    count: int = 1
    status: int = 503
    retry_after: str | None = None
    every: int = 10
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class FaultProxy:
    def __init__(self, upstream: str, mode: str = "pass", *, after: int = 1, delay_s: float = 0.0,
                 **options: object) -> None:
        self.state = ProxyState(upstream, mode, after, delay_s, **options)  # type: ignore[arg-type]
        state = self.state

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with state.lock:
                    state.requests += 1
                    n = state.requests
                    state.in_flight += 1
                    state.max_in_flight = max(state.max_in_flight, state.in_flight)
                try:
                    self._handle(n, body)
                finally:
                    with state.lock:
                        state.in_flight -= 1

            def _handle(self, n: int, body: bytes) -> None:
                faulty = n > state.after
                if faulty and (state.mode == "status-always" or (state.mode == "status-once" and n == state.after + 1)):
                    code = 500 if state.mode == "status-always" else 503
                    self._send(code, json.dumps({"errorCode": code, "errorMsg": f"planted fault {code}"}).encode())
                    return
                k = n - state.after  # this request's number among the faulty ones
                if faulty and ((state.mode == "status-n" and k <= state.count)
                               or (state.mode == "every" and k % state.every == 0)):
                    code = state.status if state.mode == "status-n" else 503
                    extra = {"Retry-After": state.retry_after} if state.retry_after is not None else {}
                    self._send(code, json.dumps({"errorCode": code, "errorMsg": f"planted fault {code}"}).encode(),
                               extra)
                    return
                if faulty and state.mode == "slow":
                    time.sleep(state.delay_s)
                req = urllib.request.Request(state.upstream + self.path, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=300) as resp:
                        code, data = resp.status, resp.read()
                except urllib.error.HTTPError as e:
                    code, data = e.code, e.read()
                if faulty and state.mode == "truncate":
                    data = data[: len(data) // 2]
                if faulty and state.mode == "drift":
                    answer = json.loads(data)
                    params = answer["result"]["ocrResults"][0]["prunedResult"]["text_det_params"]
                    params.update(limit_side_len=64, limit_type="min")
                    data = json.dumps(answer).encode()
                self._send(code, data)

            def _send(self, code: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(code)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): fine
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ocr"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
