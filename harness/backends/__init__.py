"""Backends: the engines the harness runs, by name (`[profiles.X.engine] backend = ...`).

- `paddle`: PaddleOCR on Paddle Inference (the default; what the goldens in golden/default were made with).
- `onnxruntime`: the same PaddleOCR pipeline on ONNX Runtime, with the pinned ONNX pack or the user's ONNX dirs.
- `http`: a running service speaking the PaddleX serving OCR protocol.

paddle and onnxruntime load native code and run in spawned worker processes (a crash fails an image, not the
run); http runs in this process. Every backend implements `harness.backends.base.Backend`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.base import Backend
from harness.backends.http.engine import preflight as http_preflight
from harness.backends.local import LocalWorker
from harness.backends.onnxruntime.pack import resolve_onnx_dirs
from harness.model.modeldirs import ModelDirs
from harness.model.settings import BACKENDS, EngineSettings, Profile
from harness.model.stack import StackFacts
from harness.backends.paddle.pack import resolve_model_dirs
from harness.util.errors import UserError
from harness.util.packages import package_version
from harness.worker import Worker, WorkerSpec


@dataclass(frozen=True)
class BackendKind:
    name: str
    runtime: str  # the distribution whose version is the runtime's
    in_worker: bool  # native code: run in a spawned worker for crash isolation
    paddle_programs: bool  # its model dirs hold Paddle programs (the audit, probe and BN drift checks read them)
    engine: str  # "module:callable" building the backend from (settings, model dirs)


KINDS: dict[str, BackendKind] = {
    "paddle": BackendKind("paddle", "paddlepaddle", True, True, "harness.backends.paddle.engine:OcrEngine"),
    "onnxruntime": BackendKind("onnxruntime", "onnxruntime", True, False,
                               "harness.backends.onnxruntime.engine:OnnxRuntimeEngine"),
    "http": BackendKind("http", "service", False, False, "harness.backends.http.engine:HttpBackend"),
}
assert tuple(KINDS) == BACKENDS
__all__ = ["Backend", "BackendKind", "KINDS", "StackFacts"]
SERVICE_SOURCE = "service"  # ModelDirs.source of a backend whose models live elsewhere


def kind(name: str) -> BackendKind:
    try:
        return KINDS[name]
    except KeyError:
        raise UserError(f"unknown backend {name!r} (known: {', '.join(KINDS)})") from None


def load_callable(dotted: str) -> Callable[..., Any]:
    module, _, attr = dotted.partition(":")
    return getattr(importlib.import_module(module), attr)


def engine_factory(settings: EngineSettings) -> Callable[[EngineSettings, ModelDirs], Any]:
    """`engine.factory` when set (it wraps or replaces the backend), else the backend's own class."""
    return load_callable(settings.factory or kind(settings.backend).engine)


def resolve_models(settings: EngineSettings, base: Path, cache: str | None = None) -> ModelDirs:
    """The model dirs the backend loads, verified before any model loads."""
    if settings.backend == "onnxruntime":
        return resolve_onnx_dirs(settings, base, cache)
    if settings.backend == "http":
        return ModelDirs(det=Path("."), rec=Path("."), source=SERVICE_SOURCE)
    return resolve_model_dirs(settings, base, cache)


def make_worker(spec: WorkerSpec, timeout_s: float) -> Worker | LocalWorker:
    if kind(spec.settings.backend).in_worker:
        return Worker(spec, timeout_s=timeout_s)
    return LocalWorker(spec, engine_factory(spec.settings), timeout_s=timeout_s)


def main_workers(profile: Profile) -> int:
    """Parallel drivers of the main pass: worker processes, or for a service the requests in flight."""
    return profile.engine.http.max_in_flight if profile.engine.backend == "http" else profile.workers


def unsupported_checks(profile: Profile) -> dict[str, str]:
    """Checks that cannot judge this backend, with the reason the report shows."""
    name = profile.engine.backend
    out: dict[str, str] = {}
    if not kind(name).paddle_programs:
        for check in ("audit", "probe", "bn_drift"):
            out[check] = f"reads Paddle programs; the {name} backend runs none"
    if name != "paddle":
        out["variations"] = f"oneDNN and thread variations are paddle settings; the backend is {name}"
    if name == "http":
        out["batch_paths"] = "the recognition batch size is the service's own setting; the client cannot vary it"
    return out


def preflight(settings: EngineSettings, where: str = "engine") -> dict[str, Any]:
    """Before any model loads: for a service, reach it and read what it reports about itself."""
    if settings.backend != "http":
        return {}
    return http_preflight(settings, where)


def adjust_stack(base: Mapping[str, Any], engine: EngineSettings, facts: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stack record for this backend: `base` is what the paddle stack has always held.

    paddle keeps exactly that plus `backend` (goldens made before backends existed read as paddle); other
    backends drop what does not decide their outputs and add their runtime."""
    out = dict(base)
    out["backend"] = engine.backend
    if engine.backend == "paddle":
        return out
    for key in ("paddle", "onednn"):
        out.pop(key, None)
    if engine.backend == "onnxruntime":
        out["onnxruntime"] = package_version("onnxruntime")
        out["cpu_threads"] = engine.onnxruntime.resolved_threads()
    if engine.backend == "http":
        # The client machine's packages, CPU and threads do not decide what a service reads; what it reports does.
        for key in ("paddleocr", "paddlex", "cpu_threads", "cpu_model", "isa", "models", "rec_batch_size"):
            out.pop(key, None)
        out["service"] = dict(facts or {})
    return out


def backend_owned_keys(golden_stack: Mapping[str, Any], current_stack: Mapping[str, Any]) -> list[str]:
    """Stack keys that a declared golden sharing (`engine.goldens_from`) expects to differ: the backend, its
    runtime, its model files and settings, and what it cannot report (a service's CPU). CPU, Python, batch size
    and the rest are still compared when both sides record them."""
    keys = {"backend", "paddle", "onnxruntime", "onednn", "cpu_threads", "engine_settings_hash", "paddleocr",
            "paddlex", "service"}
    out = [k for k in golden_stack if k not in current_stack]  # what this backend cannot know (a service's CPU)
    for stack in (golden_stack, current_stack):
        for k, v in stack.items():
            if k in keys:
                out.append(k)
            if k == "models" and isinstance(v, Mapping):
                out += [f"models.{m}" for m in v]
            if k == "service" and isinstance(v, Mapping):
                out += [f"service.{m}" for m in _flat_keys(v)]
    return sorted(set(out))


def _flat_keys(d: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        out += _flat_keys(v, f"{prefix}{k}.") if isinstance(v, Mapping) else [f"{prefix}{k}"]
    return out


def check_may_write_goldens(profile: Profile) -> None:
    """Goldens stay per stack: a profile that shares another backend's goldens never writes them."""
    e = profile.engine
    if e.goldens_from is not None:
        raise UserError(f"profiles.{profile.name}.engine.goldens_from: this {e.backend} profile shares the "
                        f"{e.goldens_from} goldens in {profile.golden_dir}/{profile.golden_name}; refresh them with a "
                        f"{e.goldens_from} profile, or give this profile its own golden_set")
