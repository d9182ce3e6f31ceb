"""The check registry: one `CheckSpec` per check, and everything that lists checks reads it.

Config validation (`[profiles.X.checks]` keys), the `run` CLI flags, the order checks run and are reported in,
how `report merge` combines shards, and what renderers show all come from here, so a new check is one module
that calls `register` (see docs/architecture.md, "Extending").

Checks live in `harness.checks.builtin`; more are loaded from the modules named in `$OCR_HARNESS_CHECKS`
(comma-separated, importable module names) and from the `ocr_harness.checks` entry point group: importing such
a module registers its checks. Registration order is run order; `order` is report order. Only the composition
root (harness.cli, harness.pytest_plugin) imports the built-in checks and calls `load`; below it, config is
handed `catalogue()`.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, Literal, cast

from harness.backends import backend, settings_rules, unsupported_checks
from harness.execution.state import RunPlan, RunState
from harness.model.catalogue import Catalogue, Option
from harness.model.details import Details
from harness.model.outcome import CheckResult, ImageCheck
from harness.model.report import FIRST, LAST, CheckLayout
from harness.model.settings import CheckSettings, Profile
from harness.model.views import PlanView, ShardView, StateView
from harness.util.errors import UserError

PLUGINS_ENV = "OCR_HARNESS_CHECKS"
ENTRY_POINT_GROUP = "ocr_harness.checks"

Runner = Callable[[PlanView, StateView], CheckResult]
# `report merge`: (check name, shards, each shard's check details, the merged per-image verdicts, stored goldens
# or None) -> the merged details. None on a spec: the shards must agree on them. The details are the records
# the spec's `details` reads (harness.model.details) and it returns one, or, without `details`, the raw mappings.
MergeDetails = Callable[[str, Sequence[ShardView], Sequence[Any], Mapping[str, ImageCheck],
                         "Collection[str] | None"], Any]
# `report merge`: (one shard's details of the check, where they are for messages) -> the typed record, or a
# UserError naming the field (harness.model.details).
DetailsReader = Callable[[Any, str], Details]
Scaling = Literal["corpus", "sample", "fixed"]  # how a phase's cost grows: every image, the stack sample, not at all
# `report merge`: (the merged check's from_images summary, whether it passed, merged details, shard 1's summary,
# the tail shard 1's summary appended after its failing ids) -> the merged summary.
MergeSummary = Callable[[str, bool, Mapping[str, Any], str, str], str]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    order: int  # report order (view, markdown, junit, html); run order is registration order
    run: Runner  # -> the CheckResult named `name`
    level: Literal["image", "model"] = "image"  # judged per image (merged image by image) or per model
    key: str | None = None  # the `[checks]` key that enables it; None: always on (unless `skip` says otherwise)
    flag_help: str | None = None  # help of a `run --<key>/--no-<key>` flag; None: no flag
    # `[checks]` keys it owns (CheckSettings holds only the core ones); `key` too when its default is not off or
    # reports always record it.
    options: tuple[Option[Any], ...] = ()
    validate: Callable[[CheckSettings, str], None] | None = None  # raises UserError naming the key
    validate_profile: Callable[[Profile, str], None] | None = None  # its keys against the rest of the profile
    skip: Callable[[Profile], str | None] | None = None  # why it does not run for this profile (after `key`)
    absent_unless: Callable[[Profile], bool] | None = None  # False: not in the report at all (not even skipped)
    prepare: Callable[[PlanView], Any] | None = None  # before any model loads; the result is state.prepared[name]
    child: bool = False  # runs Paddle in a child process: a child that dies fails this check, the run goes on
    timed: bool = False  # its wall time is a phase of its own in timing.phases
    reuses_main_workers: bool = False  # takes the main pass's loaded workers (same settings): they stay loaded for it
    # The inference phases it adds to timing.phases for a profile, and how each scales (`ocr-harness plan`);
    # a timed check's own phase is (name, "fixed").
    phases: Callable[[Profile], Sequence[tuple[str, Scaling]]] | None = None
    merge_details: MergeDetails | None = None
    merge_summary: MergeSummary | None = None
    details: DetailsReader | None = None  # how `report merge` reads a shard's details of this check; None: raw
    per_shard: bool = False  # measured on a sample; shards that disagree are reported per shard, not refused
    # A model-level check reads the models, not the shard's images, so a sharded run judges it on shard 1 only;
    # True: it judges this shard's own calls (its latencies, a service's answers), so every shard runs it.
    every_shard: bool = False
    list_details: bool = True  # renderers may list its top-level details when nothing more specific applies

    @property
    def flag(self) -> str | None:
        return f"--{self.key.replace('_', '-')}" if self.flag_help and self.key else None

    def applies(self, profile: Profile) -> bool:
        """It runs for `profile` (is in its report and not skipped)."""
        return (self.absent_unless is None or self.absent_unless(profile)) and self.skip_reason(profile) is None

    def phase_costs(self, profile: Profile) -> list[tuple[str, Scaling]]:
        """The timing.phases this check adds to a run of `profile` (none when it does not run)."""
        if not self.applies(profile):
            return []
        own: list[tuple[str, Scaling]] = [(self.name, "fixed")] if self.timed else []
        return own + list(self.phases(profile) if self.phases is not None else ())

    def left_to_first_shard(self, shard: tuple[int, int] | None) -> bool:
        """Whether shard `shard` (K, N) records this check as not run because shard 1 judges it."""
        return self.level == "model" and not self.every_shard and shard is not None and shard[0] != 1

    def setting(self, profile: Profile, key: str) -> Any:
        """A `[checks]` value this check owns: the profile's, else the check's own default (an enabling key that
        is no CheckSettings field and no option of its own is off by default)."""
        default = next((option.default for option in self.options if option.key == key), False if key == self.key
                       else None)
        return profile.checks.get(key, default)

    def skip_reason(self, profile: Profile) -> str | None:
        """None when the check runs for `profile`, else what its skipped entry says."""
        if self.key is not None and not self.setting(profile, self.key):
            return "disabled in profile"
        if self.skip is not None:
            return self.skip(profile)
        return None


_SPECS: dict[str, CheckSpec] = {}
_loaded = False


def register(spec: CheckSpec) -> CheckSpec:
    """Adds a check; a name registered twice is a bug in whichever module did it."""
    if spec.name in _SPECS and _SPECS[spec.name] is not spec:
        raise ValueError(f"check {spec.name!r} is registered twice")
    if spec.name in FIRST + LAST:
        raise ValueError(f"check name {spec.name!r} is reserved")
    _SPECS[spec.name] = spec
    return spec


def load(builtin: ModuleType) -> None:
    """The composition root's call: `builtin`, the harness's own checks, imported (and so registered) by the
    caller, then the plug-in checks. Once per process; later calls do nothing."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    if not _SPECS:
        raise RuntimeError(f"{builtin.__name__} registered no check")
    for name in filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise UserError(f"${PLUGINS_ENV}: cannot import check module {name!r}: {e}") from None
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def specs() -> tuple[CheckSpec, ...]:
    """Every registered check, in run order."""
    _require_loaded()
    return tuple(_SPECS.values())


def get(name: str) -> CheckSpec | None:
    _require_loaded()
    return _SPECS.get(name)


def _require_loaded() -> None:
    if not _loaded:  # a bug: a caller below the composition root would see no check at all
        raise RuntimeError("the checks are not loaded: the composition root calls harness.checks.registry.load")


def on_run(run: Callable[[RunPlan, RunState], CheckResult]) -> Runner:
    """A built-in runner that reads the run's own plan and state (its stack sample, worker pool, progress)."""
    # The harness hands every runner its RunPlan and RunState (harness.model.views); the views are the part of
    # them a plug-in check may rely on, the built-in checks are the harness's own.
    return cast(Runner, run)


def on_plan(prepare: Callable[[RunPlan], Any]) -> Callable[[PlanView], Any]:
    """A built-in `prepare` that reads the run's own plan (as `on_run`: the harness hands in its RunPlan)."""
    return cast("Callable[[PlanView], Any]", prepare)


def unsupported(name: str) -> Callable[[Profile], str | None]:
    """A `skip` rule: the reason the profile's backend gives for not running check `name` (its spec's
    `unsupported`)."""
    return lambda profile: unsupported_checks(profile).get(name)


def reads_paddle_programs(name: str) -> Callable[[Profile], str | None]:
    """A `skip` rule of a check that reads the model dirs' Paddle programs: a backend that runs none cannot feed
    it (then the backend's own word on check `name`)."""
    def skip(profile: Profile) -> str | None:
        spec = backend(profile.engine.backend)
        if not spec.paddle_programs:
            return f"reads Paddle programs; the {spec.name} backend runs none"
        return unsupported_checks(profile).get(name)
    return skip


def options() -> dict[str, tuple[CheckSpec, Option[Any]]]:
    """Every `[checks]` key owned by a registered check beyond CheckSettings' own fields."""
    fields = {f.name for f in dataclasses.fields(CheckSettings)}
    out: dict[str, tuple[CheckSpec, Option[Any]]] = {}
    for spec in specs():
        declared = {opt.key for opt in spec.options}
        if spec.key is not None and spec.key not in fields | declared:  # an enabling key off by default
            out[spec.key] = (spec, Option(spec.key, bool, False, spec.flag_help or ""))
        for opt in spec.options:
            out[opt.key] = (spec, opt)
    return out


def catalogue() -> Catalogue:
    """What config is handed to read and validate profiles: the checks' own keys and rules, and the backends'."""
    return Catalogue(options={key: option for key, (_, option) in options().items()},
                     validators=tuple(spec.validate for spec in specs() if spec.validate is not None),
                     profile_rules=tuple(s.validate_profile for s in specs() if s.validate_profile is not None),
                     names=tuple(spec.name for spec in specs()), backends=settings_rules())


def report_order() -> tuple[str, ...]:
    """The order people read checks in: cheap model-wide sanity, then per-image comparisons."""
    return FIRST + tuple(s.name for s in sorted(specs(), key=lambda s: s.order)) + LAST


def order_key(name: str) -> tuple[int, str]:
    return layout().key(name)


def layout() -> CheckLayout:
    """What renderers are handed of the catalogue: report order, and the checks whose details they do not list."""
    return CheckLayout(report_order(), frozenset(s.name for s in specs() if not s.list_details))
