"""The backend registry: one `BackendSpec` per backend, the way checks have theirs (harness.checks.registry).

The built-in backends (paddle, onnxruntime, http: harness.backends.builtin) are registered by the composition
root's `load`; more come from the modules named in `$OCR_HARNESS_BACKENDS` (comma-separated, importable module
names) and from the `ocr_harness.backends` entry point group: importing such a module registers its backend.
A process no composition root started (a spawned worker, a Ray actor) loads them on its first question to
harness.backends. Config is handed the backends' rules inside the catalogue (`rules()`), so reading a profile
loads no engine.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from types import ModuleType

from harness.backends.spec import BackendSpec
from harness.model.catalogue import BackendRules
from harness.util.errors import UserError

PLUGINS_ENV = "OCR_HARNESS_BACKENDS"
ENTRY_POINT_GROUP = "ocr_harness.backends"

_SPECS: dict[str, BackendSpec] = {}
_loaded = False


def register(spec: BackendSpec) -> BackendSpec:
    """Adds a backend; a name registered twice is a bug in whichever module did it."""
    if spec.name in _SPECS and _SPECS[spec.name] is not spec:
        raise ValueError(f"backend {spec.name!r} is registered twice")
    _SPECS[spec.name] = spec
    return spec


def load(builtin: ModuleType) -> None:
    """`builtin`, the harness's own backends, imported (and so registered) by the caller, then the plug-in
    backends. Once per process; later calls do nothing."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    if not _SPECS:
        raise RuntimeError(f"{builtin.__name__} registered no backend")
    for name in filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise UserError(f"${PLUGINS_ENV}: cannot import backend module {name!r}: {e}") from None
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def loaded() -> bool:
    return _loaded


def specs() -> tuple[BackendSpec, ...]:
    """Every registered backend, in registration order."""
    _require_loaded()
    return tuple(_SPECS.values())


def names() -> tuple[str, ...]:
    return tuple(spec.name for spec in specs())


def get(name: str) -> BackendSpec:
    _require_loaded()
    try:
        return _SPECS[name]
    except KeyError:
        raise UserError(f"unknown backend {name!r} (known: {', '.join(_SPECS)})") from None


def rules() -> dict[str, BackendRules]:
    """What config is handed to read and validate `[engine]`: each backend's keys and table."""
    return {spec.name: spec.rules for spec in specs()}


def _require_loaded() -> None:
    if not _loaded:  # a bug: a caller below the composition root would see no backend at all
        raise RuntimeError("the backends are not loaded: the composition root calls harness.backends.registry.load")
