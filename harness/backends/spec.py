"""A backend as the rest of the harness sees it: one `BackendSpec`, registered by the backend's own package.

Config validation reads its `rules` (the `[engine]` keys it owns and the type of its own `[engine.<name>]` table);
runs ask it for its model dirs, its stack record, whether it runs in worker processes and which checks it cannot
run, and call its lifecycle hooks (a stopped run, a parity reference, a service's reported settings). Nothing
outside a backend's package tests its name: a capability or a hook here says what differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.model.catalogue import BackendRules
from harness.model.modeldirs import ModelDirs
from harness.model.settings import EngineSettings, Profile

# (settings, the profile's base dir, the model cache or None) -> the model dirs it loads, verified
ResolveModels = Callable[[EngineSettings, Path, "str | None"], ModelDirs]
# (the backend-neutral stack record, the settings, what its preflight reported or None) -> its stack record
StackRecord = Callable[[Mapping[str, Any], EngineSettings, "Mapping[str, Any] | None"], dict[str, Any]]


@dataclass(frozen=True)
class Pack:
    """An offline model pack a backend can load, for `models verify` and `models list`."""

    source: str  # ModelDirs.source of dirs it made
    label: str  # how `models verify` names a prepared copy ("pack", "ONNX pack")
    describe: Callable[[], str]  # "PACK_ID from CARRIER VERSION"
    verify_sources: Callable[[], Mapping[str, Path]]  # pinned file -> its path in the carrier, each verified
    pinned: Callable[[], Mapping[str, str]]  # pinned file -> sha256, in the order `models verify` prints them
    verify_prepared: Callable[[Path], None]


def neutral_stack(base: Mapping[str, Any], engine: EngineSettings, facts: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stack record of a backend that adds nothing: the neutral record and its name."""
    return {**base, "backend": engine.backend}


def named(engine: EngineSettings) -> dict[str, Any]:
    """What the environment record says of a backend that adds nothing: its name."""
    return {"backend": engine.backend}


@dataclass(frozen=True)
class BackendSpec:
    rules: BackendRules
    engine: str  # "module:callable" building the backend from (settings, model dirs), imported in the worker
    resolve_models: ResolveModels
    in_worker: bool = True  # native code: runs in a spawned worker for crash isolation (and may run on Ray)
    paddle_programs: bool = False  # its model dirs hold Paddle programs (the audit, probe and BN drift checks read)
    # its model dirs are PaddleX inference dirs whose inference.yml says which model they hold (harness.backends
    # .identity reads the names and rec input shape from it); a backend with models of its own format leaves it off
    paddlex_dirs: bool = False
    service: bool = False  # a service: it reports its own settings (the served_settings check) and retries
    stack: StackRecord = neutral_stack
    environment: Callable[[EngineSettings], dict[str, Any]] = named  # its entries in report.json's environment
    # A service: the share of images that needed a retry above which the `inference` check fails; None: no retries.
    max_retry_rate: Callable[[EngineSettings], float] | None = None
    # Checks it cannot judge, by name, with the reason the report shows, beyond what the checks themselves rule
    # out from its capabilities (`paddle_programs`, the flat keys it owns: harness.checks.registry).
    unsupported: Mapping[str, str] = field(default_factory=dict)
    # Stack keys it records that a golden sharing (`engine.goldens_from`) expects to differ: its runtime and what
    # it reports about itself.
    owned_stack_keys: tuple[str, ...] = ()
    preflight: Callable[[EngineSettings, str], dict[str, Any]] | None = None  # a service: reach it before any load
    drivers: Callable[[Profile], int] | None = None  # parallel drivers of the main pass; None: the profile's workers
    packs: tuple[Pack, ...] = ()  # the offline packs `models verify` checks for it; the last is its own
    models_note: str | None = None  # what `models list` says instead of listing dirs (models that are not local)
    # A run being stopped (SIGINT/SIGTERM): `cancel` cuts what it has in flight at once (a request blocked on a
    # silent service), `allow` lets it start work again (before a run and after the stopped one unwound).
    cancel: Callable[[], None] | None = None
    allow: Callable[[], None] | None = None
    # Flat `[engine]` keys it owns that a parity reference takes at their defaults, whichever backend the
    # reference is: they describe the profile's own runtime, not the reading compared with. (Every backend's
    # table is reset to its defaults for the reference anyway.)
    reference_resets: tuple[str, ...] = ()
    # A service: the profile's settings in the service's own terms, as its answers report them (what the
    # served_settings check compares, harness.checks.served).
    served_settings: Callable[[EngineSettings], dict[str, Any]] | None = None
    # A service: the settings with this endpoint (`run --service-url`).
    with_service_url: Callable[[EngineSettings, str], EngineSettings] | None = None

    @property
    def name(self) -> str:
        return self.rules.name

    def unsupported_checks(self) -> dict[str, str]:
        """Checks it says cannot judge it, with the reason the report shows (a check that needs a capability it
        lacks says so itself)."""
        return dict(self.unsupported)

    def main_workers(self, profile: Profile) -> int:
        return self.drivers(profile) if self.drivers is not None else profile.workers
