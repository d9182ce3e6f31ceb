"""Backends: the engines the harness runs, by name (`[profiles.X.engine] backend = ...`).

Each backend is a package that registers one `BackendSpec` (harness.backends.spec, harness.backends.registry):
- `paddle`: PaddleOCR on Paddle Inference (the default; what the goldens in golden/default were made with).
- `onnxruntime`: the same PaddleOCR pipeline on ONNX Runtime, with the pinned ONNX pack or the user's ONNX dirs.
- `http`: a running service speaking the PaddleX serving OCR protocol.
More come from the `ocr_harness.backends` entry point group. Backends that load native code run in spawned worker
processes (a crash fails an image, not the run); the others in this process. Every backend implements
`harness.backends.base.Backend`. The functions below are what the rest of the harness asks of the profile's backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.backends import identity, registry
from harness.backends.base import Backend
from harness.backends.spec import BackendSpec
from harness.model.modeldirs import ModelDirs
from harness.model.catalogue import BackendRules
from harness.model.settings import EngineSettings, Profile
from harness.util.errors import UserError

__all__ = ["Backend", "BackendSpec"]
# Always in a backend's stack record and expected to differ when goldens are shared (`engine.goldens_from`).
SHARED_STACK_KEYS = ("backend", "engine_settings_hash")


def _registry() -> ModuleType:
    """The loaded registry. A process no composition root started (a spawned worker, a Ray actor) asks here
    first, so it loads the backends itself: the built-in ones and the same plug-ins as its parent."""
    if not registry.loaded():
        from harness.backends import builtin  # that process's composition root

        registry.load(builtin)
    return registry


def backend(name: str) -> BackendSpec:
    spec: BackendSpec = _registry().get(name)
    return spec


def settings_rules() -> dict[str, BackendRules]:
    """Every backend's `[engine]` rules: what the engine settings hash is computed with."""
    rules: dict[str, BackendRules] = _registry().rules()
    return rules


def with_service_url(engine: EngineSettings, url: str) -> EngineSettings:
    """`run --service-url`: the endpoint set on the first service backend's table (http), whichever backend the
    profile runs (validation then names a table set for another backend)."""
    specs: list[BackendSpec] = list(_registry().specs())
    hook = next(s.with_service_url for s in specs if s.with_service_url is not None)
    return hook(engine, url)


def specs() -> tuple[BackendSpec, ...]:
    """Every registered backend, in registration order: for the hooks every backend may have (cancel, reset)."""
    found: tuple[BackendSpec, ...] = _registry().specs()
    return found


def served_settings(engine: EngineSettings) -> dict[str, Any]:
    """A service's settings as it should report them, in its own terms; {} for a backend that reports none."""
    expected = backend(engine.backend).served_settings
    return expected(engine) if expected is not None else {}


def load_callable(dotted: str) -> Callable[..., Any]:
    module, _, attr = dotted.partition(":")
    found: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    return found


def engine_factory(settings: EngineSettings) -> Callable[[EngineSettings, ModelDirs], Any]:
    """`engine.factory` when set (it wraps or replaces the backend), else the backend's own class."""
    return load_callable(settings.factory or backend(settings.backend).engine)


def resolve_models(settings: EngineSettings, base: Path, cache: str | None = None) -> ModelDirs:
    """The model dirs the backend loads, verified before any model loads."""
    return backend(settings.backend).resolve_models(settings, base, cache)


def resolve_engine(settings: EngineSettings, base: Path,
                   cache: str | None = None) -> tuple[EngineSettings, ModelDirs]:
    """The model dirs, and the settings with the model names and rec input shape those dirs declare (a profile
    that names another model than its dir is a UserError naming both): what every run records and loads."""
    dirs = resolve_models(settings, base, cache)
    return (identity.resolved(settings, dirs) if backend(settings.backend).paddlex_dirs else settings), dirs


def main_workers(profile: Profile) -> int:
    """Parallel drivers of the main pass: worker processes, or for a service the requests in flight."""
    return backend(profile.engine.backend).main_workers(profile)


def runs_in_workers(engine: EngineSettings) -> bool:
    """Its engine runs in spawned worker processes (so it may run on Ray), not in this process."""
    return backend(engine.backend).in_worker


def max_retry_rate(engine: EngineSettings) -> float | None:
    """A service's share of retried images above which `inference` fails; None: a backend that never retries."""
    rate = backend(engine.backend).max_retry_rate
    return rate(engine) if rate is not None else None


def environment_record(engine: EngineSettings) -> dict[str, Any]:
    """The backend's entries in report.json's `environment` (paddle: oneDNN and threads; others: the name)."""
    return backend(engine.backend).environment(engine)


def unsupported_checks(profile: Profile) -> dict[str, str]:
    """Checks the profile's backend says cannot judge it, with the reason the report shows."""
    return backend(profile.engine.backend).unsupported_checks()


def preflight(settings: EngineSettings, where: str = "engine") -> dict[str, Any]:
    """Before any model loads: for a service, reach it and read what it reports about itself."""
    check = backend(settings.backend).preflight
    return check(settings, where) if check is not None else {}


def adjust_stack(base: Mapping[str, Any], engine: EngineSettings, facts: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stack record for this backend from the neutral record `base` (harness.environment.stack)."""
    return backend(engine.backend).stack(base, engine, facts)


def backend_owned_keys(golden_stack: Mapping[str, Any], current_stack: Mapping[str, Any]) -> list[str]:
    """Stack keys that a declared golden sharing (`engine.goldens_from`) expects to differ: the backend, its
    runtime, its model files and settings, and what it cannot report (a service's CPU). CPU, Python, batch size
    and the rest are still compared when both sides record them."""
    keys = {*SHARED_STACK_KEYS, *(k for s in _registry().specs() for k in s.owned_stack_keys)}
    out = [k for k in golden_stack if k not in current_stack]  # what this backend cannot know (a service's CPU)
    for stack in (golden_stack, current_stack):
        for k, v in stack.items():
            if k in keys:
                out.append(k)
            if k == "models" and isinstance(v, Mapping):
                out += [f"models.{m}" for m in v]
            elif k in keys and isinstance(v, Mapping):  # what a service reports about itself
                out += [f"{k}.{m}" for m in _flat_keys(v)]
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
