"""The backend protocol and registry, and what each backend contributes to config and stack (no model loads)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from harness.backends import (Backend, adjust_stack, backend_owned_keys, check_may_write_goldens, engine_factory,
                              main_workers, registry, resolve_engine, unsupported_checks)
from harness.backends.http.engine import HttpBackend
from harness.backends.onnxruntime.engine import OnnxRuntimeEngine
from harness.backends.paddle.engine import OcrEngine
from harness.checks import registry as check_registry
from harness.checks.registry import catalogue
from harness.config import load_profile
from harness.environment import settings_hash, stack
from harness.golden.status import stack_differences
from harness.golden.store import GoldenStore
from harness.model.modeldirs import ModelDirs
from harness.backends.http.settings import HttpSettings, http_settings
from harness.model.settings import EngineSettings, Profile
from harness.util.errors import UserError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "harness.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_registry_names_every_backend_and_its_engine() -> None:
    assert registry.names()[:3] == ("paddle", "onnxruntime", "http")
    assert engine_factory(EngineSettings()) is OcrEngine
    assert engine_factory(EngineSettings(backend="onnxruntime")) is OnnxRuntimeEngine
    assert engine_factory(EngineSettings(backend="http")) is HttpBackend
    # engine.factory still wraps or replaces whatever the backend is
    wrapped = engine_factory(EngineSettings(factory="harness.backends.paddle.engine:to_canonical"))
    assert wrapped.__name__ == "to_canonical"
    assert registry.get("paddle").in_worker and registry.get("onnxruntime").in_worker
    assert not registry.get("http").in_worker


def test_backends_implement_the_protocol() -> None:
    for cls in (OcrEngine, OnnxRuntimeEngine, HttpBackend):
        for member in ("name", "predict", "close"):
            assert hasattr(cls, member), (cls, member)
    service = HttpBackend(EngineSettings(backend="http", tables={"http": HttpSettings(url="http://127.0.0.1:9/ocr")}),
                          ModelDirs(Path("."), Path("."), "service"))
    assert isinstance(service, Backend)


def test_paddle_stack_matches_the_committed_goldens() -> None:
    """No behaviour change: the paddle backend's settings hash and stack keys are what the goldens recorded."""
    profile, base = load_profile(ROOT / "harness.toml", "release", catalogue())
    meta = GoldenStore(ROOT / "golden", "default").meta()
    assert meta is not None
    # The names and rec input shape are the pack dirs' own (their inference.yml), as every run plan resolves them.
    engine, _ = resolve_engine(profile.engine, base)
    profile = profile.replace(engine=engine)
    assert (engine.det_model_name, engine.rec_model_name) == ("PP-OCRv4_mobile_det", "PP-OCRv4_mobile_rec")
    assert settings_hash(profile.engine.hash_dict(registry.rules())) == meta.stack["engine_settings_hash"]
    current = stack(profile.engine, {k: v for k, v in meta.stack["models"].items()})
    assert current["backend"] == "paddle"
    differing = {d.key for d in stack_differences(meta.stack, current)}
    assert differing <= {"cpu_model", "isa", "python"}, differing  # the machine may differ; the stack must not
    # Planted: one paddle setting changed -> the hash moves.
    changed = dataclasses.replace(profile.engine, enable_mkldnn=False)
    assert settings_hash(changed.hash_dict(registry.rules())) != meta.stack["engine_settings_hash"]


def test_other_backends_drop_paddle_keys_and_add_their_runtime() -> None:
    base = {"paddle": "3.2.2", "onednn": True, "cpu_threads": 2, "models": {"det/x": "a"}, "cpu_model": "c",
            "isa": [], "paddleocr": "3.7.0", "paddlex": "3.7.2", "rec_batch_size": 6}
    onnx = adjust_stack(base, EngineSettings(backend="onnxruntime"), None)
    assert onnx["backend"] == "onnxruntime" and onnx["onnxruntime"] and "paddle" not in onnx and "onednn" not in onnx
    served = adjust_stack(base, EngineSettings(backend="http"), {"server": "uvicorn", "reported": {"x": 1}})
    assert served["service"] == {"server": "uvicorn", "reported": {"x": 1}}
    assert "models" not in served and "cpu_model" not in served
    owned = backend_owned_keys(base, onnx)
    assert {"backend", "paddle", "onednn", "onnxruntime", "models.det/x"} <= set(owned)
    assert "cpu_model" not in owned and "rec_batch_size" not in owned
    # paddle backend: settings hash unchanged by the onnxruntime/http tables' existence, nor by delete_passes unset
    tables = {name: r.settings() for name, r in registry.rules().items() if r.settings is not None}
    assert set(tables) == {"onnxruntime", "http"}
    assert EngineSettings(tables=tables).hash_dict(registry.rules()) == {
        k: v for k, v in EngineSettings(tables=tables).as_dict().items()
        if k not in ("backend", "goldens_from", "onnxruntime", "http", "delete_passes", "onednn_max_isa", "pack")}
    assert EngineSettings(pack="pp-ocrv4-mobile").hash_dict(registry.rules()) == EngineSettings().hash_dict(
        registry.rules())  # naming the default pack is the default
    assert EngineSettings(pack="pp-ocrv5-mobile").hash_dict(registry.rules())["pack"] == "pp-ocrv5-mobile"
    assert EngineSettings(delete_passes=()).hash_dict(registry.rules())["delete_passes"] == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[profiles.p.engine]\nbackend = 'tensorrt'\n", "profiles.p.engine.backend: must be one of paddle, onnxruntime, http"),
        ("[profiles.p.engine]\nbackend = 'onnxruntime'\nenable_mkldnn = false\n",
         "profiles.p.engine.enable_mkldnn: belongs to the paddle backend; this profile's backend is onnxruntime"),
        ("[profiles.p.engine]\nbackend = 'http'\ncpu_threads = 2\n[profiles.p.engine.http]\nurl = 'http://x/ocr'\n",
         "profiles.p.engine.cpu_threads: belongs to the paddle backend"),
        ("[profiles.p.engine.http]\nurl = 'http://x/ocr'\n",
         "profiles.p.engine.http: settings for the http backend; this profile's backend is paddle"),
        ("[profiles.p.engine]\nbackend = 'onnxruntime'\n[profiles.p.engine.onnxruntime]\nintra_op_threads = 0\n",
         "profiles.p.engine.onnxruntime.intra_op_threads: must be >= 1"),
        ("[profiles.p.engine]\nbackend = 'onnxruntime'\n[profiles.p.engine.onnxruntime]\nthreads = 2\n",
         "profiles.p.engine.onnxruntime.threads: unknown key"),
        ("[profiles.p.engine]\nbackend = 'http'\n[profiles.p.engine.http]\nurl = 'ftp://x'\n",
         "profiles.p.engine.http.url: must start with http:// or https://"),
        ("[profiles.p.engine]\nbackend = 'http'\n[profiles.p.engine.http]\nurl = 'http://x'\nmax_in_flight = 0\n",
         "profiles.p.engine.http.max_in_flight: must be in 1..64"),
        ("[profiles.p.engine]\ngoldens_from = 'paddle'\n", "profiles.p.engine.goldens_from: must be another backend"),
        ("[profiles.p.checks]\nparity = true\n", "profiles.p.checks.parity_reference: is the profile's own backend"),
        ("[profiles.p.engine]\nbackend = 'onnxruntime'\n[profiles.p.checks]\nparity_reference = 'http'\n",
         "parity_reference: must be an in-process backend"),
        ("[profiles.p.parity_tolerances]\nscore_abs = -1\n", "profiles.p.parity_tolerances.score_abs: must be >= 0"),
    ],
)
def test_backend_settings_are_validated_with_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        load_profile(write(tmp_path, text), "p", catalogue())
    assert message in str(err.value)


def test_service_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    h = HttpSettings(url_env="OCR_TEST_URL")
    monkeypatch.delenv("OCR_TEST_URL", raising=False)
    with pytest.raises(UserError, match="environment variable OCR_TEST_URL is not set"):
        h.resolved_url("engine.http")
    monkeypatch.setenv("OCR_TEST_URL", "localhost:8080/ocr")
    with pytest.raises(UserError, match="must start with http"):
        h.resolved_url("engine.http")
    monkeypatch.setenv("OCR_TEST_URL", "http://127.0.0.1:8080/ocr")
    assert h.resolved_url("engine.http") == "http://127.0.0.1:8080/ocr"


def not_run(profile: Profile) -> set[str]:
    """The checks whose own skip rule rules them out for the profile (their enabling keys aside)."""
    return {s.name for s in check_registry.specs() if s.skip is not None and s.skip(profile) is not None}


def test_repo_backend_profiles() -> None:
    onnx, _ = load_profile(ROOT / "harness.toml", "onnx", catalogue())
    assert onnx.engine.backend == "onnxruntime" and onnx.engine.goldens_from == "paddle"
    assert onnx.checks.get("parity") and onnx.golden_name == "default"
    # What the checks rule out from the backend's capabilities, and what the backend says itself (batch_paths).
    assert not_run(onnx) == {"audit", "probe", "bn_drift", "variations"} and unsupported_checks(onnx) == {}
    service, _ = load_profile(ROOT / "harness.toml", "service", catalogue())
    assert not_run(service) == {"audit", "probe", "bn_drift", "variations", "batch_paths", "repeat"}  # repeats = 1
    assert set(unsupported_checks(service)) == {"batch_paths"}
    assert http_settings(service.engine).url_env == "OCR_HARNESS_SERVICE_URL" and main_workers(service) == 2
    release, _ = load_profile(ROOT / "harness.toml", "release", catalogue())
    assert not_run(release) == set() and main_workers(release) == release.workers
    with pytest.raises(UserError, match="shares the paddle goldens"):
        check_may_write_goldens(onnx)
    check_may_write_goldens(release)


def test_golden_refresh_refuses_a_profile_sharing_another_backends_goldens(tmp_path: Path) -> None:
    before = {p.name: p.read_bytes() for p in (ROOT / "golden" / "default").iterdir()}
    res = run_cli(["golden", "refresh", "--profile", "onnx", "--all", "--yes", "--out", str(tmp_path)])
    assert res.returncode == 2 and "shares the paddle goldens" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert {p.name: p.read_bytes() for p in (ROOT / "golden" / "default").iterdir()} == before
    assert json.loads((ROOT / "golden" / "default" / "_meta.json").read_text())["stack"]["paddle"] == "3.2.2"
