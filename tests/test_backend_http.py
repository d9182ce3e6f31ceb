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
from harness.config import EngineSettings
from harness.modelpack import ModelDirs, prepare_bundled
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
                   timeout_s: float = 120.0, max_in_flight: int = 1) -> Path:
    path = tmp_path / "harness.toml"
    path.write_text("\n".join([
        "[profiles.t]", f'corpus = "{CORPUS.as_posix()}"', 'subset = "smoke"',
        f'golden_dir = "{(ROOT / "golden").as_posix()}"', 'golden_set = "default"',
        "[profiles.t.engine]", 'backend = "http"', 'goldens_from = "paddle"',
        "[profiles.t.engine.http]", f"retries = {retries}", f"backoff_s = {backoff_s}", f"timeout_s = {timeout_s}",
        f"max_in_flight = {max_in_flight}",
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

def test_a_5xx_is_retried_with_backoff(service: Service, tmp_path: Path) -> None:
    with FaultProxy(service.base, "status-once") as proxy:
        res = run_t(tmp_path, proxy.url, "--id", "slip_0000", parity=False)
    assert res.returncode == 0, res.stdout[-2000:]
    assert proxy.state.requests == 3  # preflight, the planted 503, the retry
    assert res.report["checks"]["golden"]["passed"]


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
    assert "timed out (after 2 tries)" in image["error"], image["error"]


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
