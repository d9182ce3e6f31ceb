"""The http backend's transport against canned loopback servers: one fault per test, real sockets, no service.

Faults that need no real OCR (redirects, answers without dataInfo, huge, trickling or silent answers, deep JSON,
Retry-After past the deadline) are answered by `canned_service.CannedService` in seconds; the clean side of each
behaviour runs against the real PaddleX service in tests/backends/http/test_serving.py. Each test runs the CLI
as CI does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from canned_service import CERT, CannedService
from conftest import CORPUS, ROOT, CliRun, run_cli
from harness.backends.http.client import retry_after_s
from harness.checks.inference_check import FAILED, judge_retries, merged_details, merged_summary
from harness.model.inference import ImageOutcome, TransportNotes
from harness.model.outcome import ImageCheck, from_images
from harness.util.service_url import redact_url, url_problem

ONE = ["--id", "slip_0000"]


def config(tmp_path: Path, **http: object) -> Path:
    """A profile on the smoke corpus against a service; `http` adds `[engine.http]` keys (TOML literals)."""
    path = tmp_path / "harness.toml"
    path.write_text("\n".join([
        "[profiles.t]", f'corpus = "{CORPUS.as_posix()}"', 'subset = "smoke"',
        f'golden_dir = "{(ROOT / "golden").as_posix()}"', 'golden_set = "default"',
        "[profiles.t.engine]", 'backend = "http"', 'goldens_from = "paddle"',
        "[profiles.t.engine.http]", *(f"{k} = {v}" for k, v in http.items()),
        "[profiles.t.checks]", "repeats = 1", "parity = false", ""]), encoding="utf-8")
    return path


def run(tmp_path: Path, url: str, *args: str, env: dict[str, str] | None = None, **http: object) -> CliRun:
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    cfg = config(tmp_path, **{"retries": 1, "backoff_s": 0.1, **http})
    return run_cli(["run", "--config", str(cfg), "--profile", "t", "--service-url", url, "--out", str(out), *args],
                   out=out, env=env, timeout=300)


def image_error(res: CliRun) -> str:
    (image,) = res.report["images"]
    assert image["error"], image
    return str(image["error"])


def one_line_usage_error(res: CliRun) -> str:
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


# --- what the service answers ------------------------------------------------------------------------------------

def test_a_redirect_is_refused_naming_the_status_and_the_location_host(tmp_path: Path) -> None:
    with CannedService("redirect") as s:
        res = run(tmp_path, s.url, *ONE)
    assert res.returncode == 1, res.stderr[-2000:]
    error = image_error(res)
    assert "HTTP 301" in error and "redirect to other.example:8080 refused" in error, error
    assert s.state.requests == 2  # preflight + the one POST: not retried, not followed
    assert res.report["checks"]["inference"]["failed_images"] == ["slip_0000"]


def test_a_redirect_at_preflight_is_a_usage_error(tmp_path: Path) -> None:
    with CannedService("redirect", after=0) as s:
        res = run(tmp_path, s.url, *ONE)
    line = one_line_usage_error(res)
    assert "HTTP 301" in line and "other.example" in line, line


def test_an_answer_without_data_info_is_an_error(tmp_path: Path) -> None:
    with CannedService("no-datainfo") as s:
        res = run(tmp_path, s.url, *ONE)
    assert res.returncode == 1
    assert "no result.dataInfo" in image_error(res)


def test_a_huge_answer_is_refused_while_it_is_read(tmp_path: Path) -> None:
    with CannedService("huge", huge_bytes=300 * 1024 * 1024) as s:
        res = run(tmp_path, s.url, *ONE)
    assert res.returncode == 1
    assert "larger than max_response_bytes 8388608" in image_error(res)
    # Refused after 8 MiB: the server could not push more than socket buffers hold beyond that.
    assert s.state.sent < 64 * 1024 * 1024, s.state.sent


def test_a_declared_huge_answer_is_refused_before_reading_and_the_limit_is_configurable(tmp_path: Path) -> None:
    with CannedService("huge-declared", huge_bytes=2_000_000) as s:
        res = run(tmp_path, s.url, *ONE, max_response_bytes=1_000_000)
    assert res.returncode == 1
    assert "answer of 2000000 bytes (Content-Length) is larger than max_response_bytes 1000000" in image_error(res)


def test_deep_json_at_preflight_is_a_usage_error(tmp_path: Path) -> None:
    with CannedService("deep", after=0) as s:
        res = run(tmp_path, s.url, *ONE)
    assert "nested too deeply" in one_line_usage_error(res)


def test_deep_json_for_an_image_is_that_images_error(tmp_path: Path) -> None:
    with CannedService("deep") as s:
        res = run(tmp_path, s.url, *ONE)
    assert res.returncode == 1 and "nested too deeply" in image_error(res)


# --- time: the whole request, and the image's budget --------------------------------------------------------------

def test_a_trickling_answer_times_out_at_the_image_deadline(tmp_path: Path) -> None:
    with CannedService("trickle", delay_s=0.5) as s:
        t0 = time.monotonic()
        res = run(tmp_path, s.url, *ONE, timeout_s=2, retries=2, backoff_s=0.5)
        wall = time.monotonic() - t0
    assert res.returncode == 1
    error = image_error(res)
    assert "timed out" in error and "of the answer's bytes received" in error, error
    # Each try ends at timeout_s however the bytes trickle; with the default image_timeout_s 300, 3 tries.
    assert "after 3 tries" in error, error
    assert wall < 60, wall


def test_tries_stop_at_image_timeout(tmp_path: Path) -> None:
    with CannedService("trickle", delay_s=0.5) as s:
        out = tmp_path / "out"
        cfg = config(tmp_path, timeout_s=2, retries=5, backoff_s=0.5)
        text = cfg.read_text(encoding="utf-8").replace('subset = "smoke"', 'subset = "smoke"\nimage_timeout_s = 5')
        cfg.write_text(text, encoding="utf-8")
        t0 = time.monotonic()
        res = run_cli(["run", "--config", str(cfg), "--profile", "t", "--service-url", s.url, "--out", str(out),
                       *ONE], out=out)
        wall = time.monotonic() - t0
    assert res.returncode == 1, res.stderr[-2000:]
    error = image_error(res)
    assert "timed out" in error and ("image_timeout_s" in error), error
    assert s.state.requests <= 1 + 3  # preflight + at most 3 tries fit 5 s of 2 s tries
    assert wall < 60, wall


def test_hang_after_headers_times_out(tmp_path: Path) -> None:
    with CannedService("hang-after-headers") as s:
        res = run(tmp_path, s.url, *ONE, timeout_s=1.5, retries=0)
    assert res.returncode == 1
    assert "timed out: no complete answer within timeout_s (1.5 s)" in image_error(res)


def test_retry_after_past_the_deadline_fails_the_image_at_once(tmp_path: Path) -> None:
    with CannedService("status", status=503, retry_after="600") as s:
        t0 = time.monotonic()
        res = run(tmp_path, s.url, *ONE, retries=3)
        wall = time.monotonic() - t0
    assert res.returncode == 1
    error = image_error(res)
    assert "HTTP 503" in error and "Retry-After 600 s would pass the image's deadline" in error, error
    assert s.state.requests == 2 and wall < 60


def test_429_is_retried_after_retry_after_and_counted(tmp_path: Path) -> None:
    with CannedService("status", status=429, retry_after="1") as s:
        t0 = time.monotonic()
        res = run(tmp_path, s.url, *ONE, retries=2, backoff_s=0)
        wall = time.monotonic() - t0
    assert res.returncode == 1
    error = image_error(res)
    assert "HTTP 429" in error and "after 3 tries" in error, error
    assert s.state.requests == 4
    inference = res.report["checks"]["inference"]
    assert inference["details"]["retries"]["by_image"] == {"slip_0000": ["429", "429"]}
    assert "1 of 1 images needed a retry: 429, 429" in inference["summary"]
    assert wall >= 2  # two waits of Retry-After 1 s, although backoff_s = 0


def test_retry_after_parsing() -> None:
    assert retry_after_s("3") == 3.0 and retry_after_s(None) is None and retry_after_s("soon") is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: now


# --- cancellation ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_a_run_against_a_silent_service_within_5_s(tmp_path: Path, signum: int) -> None:
    with CannedService("never") as s:
        out = tmp_path / "out"
        cfg = config(tmp_path, timeout_s=120, retries=2)
        proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "--config", str(cfg), "--profile", "t",
                                 "--service-url", s.url, "--out", str(out), "--id", "slip_0000", "--id", "slip_0001"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                # as from a terminal: a suite started in the background inherits SIGINT ignored,
                                # which the harness keeps ignoring on purpose (nohup)
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            assert s.wait_for_requests(2), "the run never sent its first image"
            time.sleep(0.5)  # blocked on the answer now
            t0 = time.monotonic()
            proc.send_signal(signum)
            stdout, stderr = proc.communicate(timeout=30)
            wall = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 128 + signum, (proc.returncode, stderr[-2000:])
    assert wall < 5, wall
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["complete"] is False, report.get("incomplete")
    assert s.state.requests == 2  # nothing sent after the signal


# --- https -----------------------------------------------------------------------------------------------------

def test_https_with_a_trusted_certificate_runs_and_its_deadline_holds(tmp_path: Path) -> None:
    trust = {"SSL_CERT_FILE": str(CERT)}
    with CannedService("ok", tls=True) as s:
        res = run(tmp_path / "ok", s.url, *ONE, env=trust)
    assert s.url.startswith("https://") and s.state.requests == 2
    (image,) = res.report["images"]
    assert image["error"] is None and res.report["checks"]["inference"]["passed"], image
    with CannedService("hang-after-headers", tls=True) as s:  # the deadline cuts the wrapped socket too
        res = run(tmp_path / "hang", s.url, *ONE, env=trust, timeout_s=1.5, retries=0)
    assert "timed out: no complete answer within timeout_s (1.5 s)" in image_error(res)


def test_https_with_an_untrusted_certificate_is_a_usage_error(tmp_path: Path) -> None:
    with CannedService("ok", tls=True) as s:
        res = run(tmp_path, s.url, *ONE, env={"SSL_CERT_FILE": os.devnull})
    assert "CERTIFICATE_VERIFY_FAILED" in one_line_usage_error(res)


# --- credentials --------------------------------------------------------------------------------------------------

CANARY_PASSWORD = "canaryPW7731"
CANARY_TOKEN = "canaryTOKEN5519"
CANARY_HEADER = "canaryHEADER2288"


def test_credentials_reach_no_report_log_or_terminal(tmp_path: Path) -> None:
    with CannedService("status", status=500) as s:
        url = s.url.replace("http://", f"http://svc:{CANARY_PASSWORD}@") + f"?access_token={CANARY_TOKEN}&v=2"
        res = run(tmp_path, url, *ONE, "--html", env={"OCR_TEST_AUTH": f"Bearer {CANARY_HEADER}"},
                  headers_env='{ "X-Api-Key" = "OCR_TEST_AUTH" }')
    assert res.returncode == 1, res.stderr[-2000:]
    error = image_error(res)
    assert "HTTP 500" in error and "access_token=***" in error and "***@127.0.0.1" in error, error
    sent = s.state.headers[-1]
    assert sent["X-Api-Key"] == f"Bearer {CANARY_HEADER}" and sent["Authorization"].startswith("Basic ")
    files = [p for p in res.out.rglob("*") if p.is_file()]
    assert {"report.json", "results.jsonl", "junit.xml", "summary.md", "report.html"} <= {p.name for p in files}
    for text, where in [*((p.read_bytes().decode("utf-8", "replace"), str(p)) for p in files),
                        (res.stdout, "stdout"), (res.stderr, "stderr")]:
        for canary in (CANARY_PASSWORD, CANARY_TOKEN, CANARY_HEADER):
            assert canary not in text, (canary, where)


def test_credentials_reach_no_usage_error(tmp_path: Path) -> None:
    with CannedService("redirect", after=0) as s:
        url = s.url.replace("http://", f"http://svc:{CANARY_PASSWORD}@") + f"?access_token={CANARY_TOKEN}"
        res = run(tmp_path, url, *ONE)
    line = one_line_usage_error(res)
    assert CANARY_PASSWORD not in line and CANARY_TOKEN not in line and "access_token=***" in line, line
    res = run_cli(["run", "--config", str(config(tmp_path, url_env='"OCR_TEST_URL"')), "--profile", "t",
                   "--out", str(tmp_path / "o2"), *ONE], env={"OCR_TEST_URL": f"http://[::1?t={CANARY_TOKEN}"})
    line = one_line_usage_error(res)
    assert "url_env: the URL in OCR_TEST_URL: not a valid URL" in line and CANARY_TOKEN not in line, line


def test_a_header_from_an_unset_variable_is_a_usage_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OCR_TEST_AUTH"}
    out = tmp_path / "out"
    cfg = config(tmp_path, headers_env='{ Authorization = "OCR_TEST_AUTH" }')
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--config", str(cfg), "--profile", "t",
                           "--service-url", "http://127.0.0.1:9/ocr", "--out", str(out), *ONE], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "headers_env.Authorization: environment variable OCR_TEST_AUTH is not set" in proc.stderr


def test_redact_url() -> None:
    assert redact_url("http://u:p@h:8080/ocr?access_token=abc&v=2") == "http://***@h:8080/ocr?access_token=***&v=***"
    assert redact_url("https://h/ocr?bare") == "https://h/ocr?***"
    assert redact_url("http://[::1]:80/ocr") == "http://[::1]:80/ocr"
    assert redact_url("http://[::1") == "***"


# --- bad values are usage errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "value", "message"), [
    ("timeout_s", "inf", "timeout_s: must be a finite number of seconds > 0"),
    ("timeout_s", "nan", "timeout_s: must be a finite number of seconds > 0"),
    ("backoff_s", "inf", "backoff_s: must be a finite number of seconds >= 0"),
    ("max_response_bytes", "10", "max_response_bytes: must be in 1024..2**31"),
    ("max_retry_rate", "1.5", "max_retry_rate: must be in 0..1"),
    ("headers_env", '{ "Bad Header" = "X" }', "headers_env.Bad Header: is not an HTTP header name"),
    ("url", '"http://[::1"', "url: not a valid URL (Invalid IPv6 URL)"),
    ("url", '"http://h:99999/ocr"', "url: not a valid URL (Port out of range 0-65535)"),
])
def test_bad_http_values_exit_2_with_one_line(tmp_path: Path, key: str, value: str, message: str) -> None:
    cfg = config(tmp_path, **{key: value, **({} if key == "url" else {"url": '"http://127.0.0.1:9/ocr"'})})
    res = run_cli(["run", "--config", str(cfg), "--profile", "t", "--out", str(tmp_path / "out"), *ONE])
    line = one_line_usage_error(res)
    assert message in line, line


def test_service_url_flag_is_validated_like_the_file(tmp_path: Path) -> None:
    res = run(tmp_path, "http://[::1", *ONE)
    assert "url: not a valid URL (Invalid IPv6 URL)" in one_line_usage_error(res)
    assert url_problem("http://127.0.0.1:8080/ocr") is None


# --- the retry verdict, and how shards of a run merge it --------------------------------------------------------

def test_retries_fail_inference_above_max_retry_rate_naming_the_images() -> None:
    outcomes = {f"i{n}": ImageOutcome(f"i{n}", error="x" if n == 0 else None,
                                      transport=TransportNotes(retries=("503", "503") if n == 3 else ()))
                for n in range(24)}
    per_image = {i: ImageCheck(o.error is None, o.error or "ok") for i, o in outcomes.items()}
    check = from_images("inference", per_image, FAILED)
    within = judge_retries(check, outcomes, 0.05)  # 1 of 24: 0.042
    assert within.failed_images == ["i0"] and within.summary.endswith("; 1 of 24 images needed a retry: 503, 503")
    over = judge_retries(check, outcomes, 0.02)
    assert over.failed_images == ["i0", "i3"] and not over.passed
    assert over.summary == ("2 of 24 images failed to run or needed a retry: i0, i3; "
                            "1 of 24 images needed a retry: 503, 503 (rate 0.042 above max_retry_rate 0.02)")
    assert over.per_image["i3"].details["retries"] == ["503", "503"]
    # Two shards of one run: the retries add up.
    other = {"retries": {"images": 1, "of": 12, "rate": 1 / 12, "max_retry_rate": 0.02, "total": 1,
                         "by_image": {"j5": ["429"]}}}
    merged = merged_details("inference", [], [over.details, other], {}, None)
    assert merged["retries"]["images"] == 2 and merged["retries"]["of"] == 36 and merged["retries"]["total"] == 3
    assert merged_summary("S", False, merged, "", "").startswith("S; 2 of 36 images needed a retry: 503, 503, 429")


def test_shards_of_a_service_run_merge(tmp_path: Path) -> None:
    ids = [a for i in ("slip_0002", "slip_0003", "slip_0006", "slip_0007") for a in ("--id", i)]
    with CannedService("ok") as s:
        shards = [run(tmp_path / f"s{k}", s.url, *ids, "--shard", f"{k}/2", "--no-goldens") for k in (1, 2)]
    assert [r.returncode for r in shards] == [0, 0], [r.stderr[-1000:] for r in shards]
    out = tmp_path / "merged"
    merged = run_cli(["report", "merge", *(str(r.out) for r in shards), "--config", str(tmp_path / "s1" / "harness.toml"),
                      "--out", str(out)], out=out)
    assert merged.returncode == 0, merged.stderr[-2000:]
    inference = merged.report["checks"]["inference"]
    assert inference["summary"] == "all 4 images clean; none of 4 images needed a retry", inference["summary"]
    assert inference["details"]["retries"]["of"] == 4
    served = merged.report["checks"]["served_settings"]
    assert served["passed"] and served["summary"].endswith("; so do the answers to every image"), served
    # Each shard compared its own service's settings: the merge counts both comparisons.
    per_shard = [r.report["checks"]["served_settings"] for r in shards]
    assert [c["judged"] for c in per_shard] == [10, 10] and (served["judged"], served["unit"]) == (20, "settings")
