"""The http backend against a real `paddlex --serve` on loopback: goldens, served settings, parity, faults.

Each service is a real PaddleX server with the pack's PP-OCRv4 models. Transport faults (5xx, malformed JSON,
timeouts) are planted by a loopback proxy in front of the real server; the OCR underneath stays real.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend_faults import swapped, swapped_digit_rec_dir
from conftest import CORPUS, ROOT, CliRun, run_cli
from fault_proxy import FaultProxy
from harness.model.modeldirs import ModelDirs
from harness.model.settings import EngineSettings
from harness.backends.paddle.pack import prepare_bundled
from serving import Service, free_port, start_service

pytestmark = pytest.mark.slow
SMOKE_FEW = ["--id", "slip_0000", "--id", "slip_0003"]


@pytest.fixture(scope="module")
def pack() -> ModelDirs:
    return prepare_bundled(EngineSettings())


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, pack: ModelDirs) -> Iterator[Service]:
    s = start_service(tmp_path_factory.mktemp("service"), pack)
    try:
        yield s
    finally:
        s.kill()


def service_config(tmp_path: Path, *, parity: bool = True, retries: int = 2, backoff_s: float = 0.2,
                   timeout_s: float = 120.0, max_in_flight: int = 1, max_retry_rate: float = 0.05) -> Path:
    path = tmp_path / "harness.toml"
    path.write_text("\n".join([
        "[profiles.t]", f'corpus = "{CORPUS.as_posix()}"', 'subset = "smoke"',
        f'golden_dir = "{(ROOT / "golden").as_posix()}"', 'golden_set = "default"',
        "[profiles.t.engine]", 'backend = "http"', 'goldens_from = "paddle"',
        "[profiles.t.engine.http]", f"retries = {retries}", f"backoff_s = {backoff_s}", f"timeout_s = {timeout_s}",
        f"max_in_flight = {max_in_flight}", f"max_retry_rate = {max_retry_rate}",
        "[profiles.t.checks]", "repeats = 1", f"parity = {json.dumps(parity)}", ""]), encoding="utf-8")
    return path


def run_t(tmp_path: Path, url: str, *args: str, **config: object) -> CliRun:
    out = tmp_path / "out"
    cfg = service_config(tmp_path, **config)  # type: ignore[arg-type]
    return run_cli(["run", "--config", str(cfg), "--profile", "t", "--service-url", url, "--out", str(out), *args],
                   out=out)


# --- a clean service --------------------------------------------------------------------------------------------

def test_clean_service_passes_goldens_settings_and_parity(service: Service, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = run_cli(["run", "--profile", "service", "--out", str(out), "--html"], out=out,
                  env={"OCR_HARNESS_SERVICE_URL": service.url})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    report = res.report
    assert len(report["images"]) == 12
    for name in ("inference", "served_settings", "golden", "parity"):
        check = report["checks"][name]
        assert check["passed"] and not check["skipped"], (name, check["summary"])
    st = report["stack"]
    assert st["backend"] == "http" and st["service"]["server"] == "uvicorn"
    assert st["service"]["reported"]["text_det_params"]["limit_type"] == "max"
    parity = report["checks"]["parity"]["details"]
    assert parity["paths"]["http"]["beyond"] == 0 and parity["paths"]["http"]["failed_to_run"] == 0
    assert parity["latency"]["http"]["images"] == 12
    # The clean side of every transport fault: no redirect, every answer with dataInfo and within
    # max_response_bytes and timeout_s, no retry, and every answer reporting the profile's settings.
    inference = report["checks"]["inference"]
    assert inference["summary"] == "all 12 images clean; none of 12 images needed a retry"
    assert inference["details"]["retries"]["images"] == 0
    served = report["checks"]["served_settings"]
    assert served["summary"].endswith("; so do the answers to every image")
    assert served["details"]["answers"] == {"differing": {}}
    assert "Backend parity" in (out / "summary.md").read_text(encoding="utf-8")
    assert "Backend parity" in (out / "report.html").read_text(encoding="utf-8")


def test_requests_in_flight_are_bounded(service: Service, tmp_path: Path) -> None:
    with FaultProxy(service.base, "pass") as proxy:
        res = run_t(tmp_path, proxy.url, "--id", "slip_0000", "--id", "slip_0001", "--id", "slip_0002",
                    "--id", "slip_0003", parity=False, max_in_flight=2)
    assert res.returncode == 0, res.stdout[-2000:]
    assert proxy.state.requests == 5  # preflight + 4 images
    assert proxy.state.max_in_flight == 2


# --- transport faults (planted by the proxy; the OCR stays real) ------------------------------------------------

@pytest.mark.parametrize("status", [503, 429])
def test_two_refusals_then_success_are_retried_after_retry_after_and_fail_inference(
        service: Service, tmp_path: Path, status: int) -> None:
    with FaultProxy(service.base, "status-n", count=2, status=status, retry_after="1") as proxy:
        t0 = time.monotonic()
        res = run_t(tmp_path, proxy.url, "--id", "slip_0000", parity=False, backoff_s=0.01)
        wall = time.monotonic() - t0
    assert proxy.state.requests == 4  # preflight, two planted refusals, the answer
    assert wall >= 2  # Retry-After: 1 twice, although backoff_s is 0.01
    assert res.returncode == 1, res.stdout[-2000:]
    inference = res.report["checks"]["inference"]
    assert not inference["passed"] and inference["failed_images"] == ["slip_0000"]  # it ran, after 2 refusals
    assert f"1 of 1 images needed a retry: {status}, {status} (rate 1.000 above max_retry_rate 0.05)" \
        in inference["summary"]
    assert res.report["images"][0]["checks"]["inference"]["details"]["retries"] == [str(status)] * 2
    assert res.report["checks"]["golden"]["passed"]  # the answer itself was right
    assert f"needed a retry: {status}, {status}" in (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")


def test_retries_within_max_retry_rate_pass_and_are_still_recorded(service: Service, tmp_path: Path) -> None:
    with FaultProxy(service.base, "status-once") as proxy:
        res = run_t(tmp_path, proxy.url, "--id", "slip_0000", parity=False, max_retry_rate=1.0)
    assert res.returncode == 0, res.stdout[-2000:]
    assert proxy.state.requests == 3  # preflight, the planted 503, the retry
    inference = res.report["checks"]["inference"]
    assert inference["summary"] == "all 1 images clean; 1 of 1 images needed a retry: 503"
    assert inference["details"]["retries"]["by_image"] == {"slip_0000": ["503"]}


def test_a_service_failing_one_request_in_ten_fails_inference(service: Service, tmp_path: Path) -> None:
    with FaultProxy(service.base, "every", every=10) as proxy:
        res = run_t(tmp_path, proxy.url, parity=False)
    assert res.returncode == 1, res.stdout[-2000:]
    inference = res.report["checks"]["inference"]
    assert inference["failed_images"] == [res.report["images"][9]["id"]]  # the 10th request's image
    assert res.report["checks"]["golden"]["passed"]  # every answer, retried or not, was right
    retries = inference["details"]["retries"]
    assert (retries["images"], retries["of"], retries["total"]) == (1, 12, 1), retries
    assert "1 of 12 images needed a retry: 503 (rate 0.083 above max_retry_rate 0.05)" in inference["summary"]
    assert proxy.state.requests == 1 + 12 + 1


def test_settings_reported_by_answers_are_compared_not_only_the_preflights(service: Service, tmp_path: Path) -> None:
    with FaultProxy(service.base, "drift") as proxy:  # the preflight's answer is left alone
        res = run_t(tmp_path, proxy.url, *SMOKE_FEW, parity=False)
    assert res.returncode == 1, res.stdout[-2000:]
    assert proxy.state.requests == 3
    served = res.report["checks"]["served_settings"]
    assert not served["passed"] and served["details"]["differences"] == []  # the preflight agreed
    assert ("answers for 2 of 2 images report other settings (the preflight reported the profile's): "
            "text_det_params.limit_side_len: profile 960, service 64; text_det_params.limit_type: profile 'max', "
            "service 'min' (slip_0000, slip_0003)") in served["summary"], served["summary"]
    differing = served["details"]["answers"]["differing"]
    assert sorted(differing) == ["slip_0000", "slip_0003"]
    assert {d["key"]: d["service"] for d in differing["slip_0003"]} == {"text_det_params.limit_side_len": 64,
                                                                         "text_det_params.limit_type": "min"}


def test_persistent_5xx_becomes_the_images_error_with_the_service_message(service: Service, tmp_path: Path) -> None:
    with FaultProxy(service.base, "status-always") as proxy:
        res = run_t(tmp_path, proxy.url, *SMOKE_FEW, parity=False, retries=1)
    assert res.returncode == 1
    for image in res.report["images"]:
        assert "HTTP 500" in image["error"] and "planted fault 500" in image["error"], image["error"]
        assert "after 2 tries" in image["error"]
    assert res.report["checks"]["inference"]["failed_images"] == ["slip_0000", "slip_0003"]
    assert proxy.state.requests == 1 + 2 * 2


def test_malformed_json_becomes_the_images_error(service: Service, tmp_path: Path) -> None:
    with FaultProxy(service.base, "truncate") as proxy:
        res = run_t(tmp_path, proxy.url, "--id", "slip_0000", parity=False)
    assert res.returncode == 1
    (image,) = res.report["images"]
    assert "malformed JSON" in image["error"] and "HTTP 200" in image["error"]
    assert proxy.state.requests == 2  # not retried: the service answered, wrongly


def test_a_slow_service_times_out_per_request(service: Service, tmp_path: Path) -> None:
    with FaultProxy(service.base, "slow", delay_s=4.0) as proxy:
        res = run_t(tmp_path, proxy.url, "--id", "slip_0000", parity=False, timeout_s=1.5, retries=1, backoff_s=0.1)
    assert res.returncode == 1
    (image,) = res.report["images"]
    assert "timed out: no complete answer within timeout_s (1.5 s)" in image["error"], image["error"]
    assert image["error"].endswith("(after 2 tries)"), image["error"]


# --- wrong URL, planted model, default settings, a service dying mid-run -----------------------------------------

def test_wrong_path_is_a_usage_error(service: Service, tmp_path: Path) -> None:
    res = run_t(tmp_path, service.base + "/wrong", "--id", "slip_0000")
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert "HTTP 404" in res.stderr and "/wrong" in res.stderr


def test_planted_model_service_is_caught_by_golden_and_parity(tmp_path: Path, pack: ModelDirs) -> None:
    bad = ModelDirs(det=pack.det, rec=swapped_digit_rec_dir(pack.rec, tmp_path / "rec-swapped"), source="user")
    s = start_service(tmp_path / "faulty", bad)
    try:
        res = run_t(tmp_path, s.url, *SMOKE_FEW)
    finally:
        s.kill()
    assert res.returncode == 1, res.stderr[-2000:]
    assert res.report["checks"]["served_settings"]["passed"]  # same settings: the model is what differs
    for name in ("golden", "parity"):
        check = res.report["checks"][name]
        assert not check["passed"] and check["failed_images"] == ["slip_0000", "slip_0003"], check["summary"]
    image = res.report["images"][0]
    lines = image["checks"]["parity"]["details"]["paths"]["http"]["lines"]
    assert any(d["critical"] for d in lines)
    assert any(d["golden_text"] == "601743707102007566" and d["current_text"] == swapped("601743707102007566") for d in lines)


def test_paddlex_default_settings_are_flagged_before_results(tmp_path: Path, pack: ModelDirs) -> None:
    s = start_service(tmp_path / "defaults", pack, paddlex_defaults=True)
    try:
        res = run_t(tmp_path, s.url, "--html")
    finally:
        s.kill()
    assert res.returncode == 1
    served = res.report["checks"]["served_settings"]
    assert not served["passed"]
    diffs = {d["key"]: (d["profile"], d["service"]) for d in served["details"]["differences"]}
    assert diffs == {"text_det_params.limit_side_len": (960, 64), "text_det_params.limit_type": ("max", "min")}
    assert res.report["stack"]["service"]["reported"]["text_det_params"]["limit_side_len"] == 64
    summary = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert "Service settings differ from the profile" in summary and "text_det_params.limit_type" in summary
    (tmp_path / "out" / "report.json").replace(tmp_path.parent / "paddlex-defaults-report.json")


def test_service_killed_mid_run_fails_the_rest_and_writes_a_complete_report(tmp_path: Path, pack: ModelDirs) -> None:
    s = start_service(tmp_path / "dying", pack)
    ids = [f"slip_{i:04d}" for i in range(6)]
    cfg = service_config(tmp_path, parity=False, retries=1, backoff_s=0.1)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "harness", "run", "--config", str(cfg), "--profile", "t", "--service-url", s.url,
            "--out", str(out), *[a for i in ids for a in ("--id", i)]]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while s.requests_seen() < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)  # preflight + two images answered
        s.kill()
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        s.kill()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stdout[-2000:] + stderr[-2000:]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    images = {i["id"]: i for i in report["images"]}
    assert list(images) == ids  # complete: every image is in the report
    ok = [i for i in ids if images[i]["error"] is None]
    failed = [i for i in ids if images[i]["error"] is not None]
    assert len(ok) >= 2 and failed, (ok, failed)
    assert ok == ids[: len(ok)]  # the service answered until it died, then nothing
    for i in failed:
        assert any(w in images[i]["error"] for w in ("connection refused", "connection reset", "broken HTTP")), \
            images[i]["error"]
    assert report["checks"]["inference"]["failed_images"] == failed
    # The images that ran still match their goldens; the rest were not judged, and an unmet golden fails.
    assert report["checks"]["golden"]["failed_images"] == failed
    assert all(images[i]["checks"]["golden"]["passed"] for i in ok)
    assert report["checks"]["golden"]["judged"] == len(ok)


def test_unreachable_url_is_a_one_line_usage_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/ocr"  # nothing listens there
    res = run_t(tmp_path, url, "--id", "slip_0000")
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert "connection refused" in res.stderr and url in res.stderr
    res = run_cli(["run", "--profile", "service", "--out", str(tmp_path / "o2")],
                  env={"OCR_HARNESS_SERVICE_URL": ""})
    assert res.returncode == 2 and "OCR_HARNESS_SERVICE_URL is not set" in res.stderr


def test_serve_config_runs_the_profiles_models_and_settings(tmp_path: Path, pack: ModelDirs) -> None:
    import yaml

    res = run_cli(["models", "serve-config", "--profile", "release", "--out", str(tmp_path / "OCR.yaml")])
    assert res.returncode == 0, res.stderr[-2000:]
    c = yaml.safe_load((tmp_path / "OCR.yaml").read_text(encoding="utf-8"))
    det, rec = c["SubModules"]["TextDetection"], c["SubModules"]["TextRecognition"]
    assert (det["model_name"], det["model_dir"]) == ("PP-OCRv4_mobile_det", str(pack.det))
    assert (det["limit_type"], det["limit_side_len"], rec["batch_size"]) == ("max", 960, 6)
    assert c["use_doc_preprocessor"] is False and "TextLineOrientation" not in c["SubModules"]
    res = run_cli(["models", "serve-config", "--profile", "release", "--paddlex-defaults",
                   "--out", str(tmp_path / "defaults.yaml")])
    d = yaml.safe_load((tmp_path / "defaults.yaml").read_text(encoding="utf-8"))["SubModules"]["TextDetection"]
    assert (d["limit_type"], d["limit_side_len"]) == ("min", 64)  # PaddleX's own template value
