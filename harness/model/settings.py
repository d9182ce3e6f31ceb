"""A profile's settings: engine, checks and tolerances, each validated key by key (harness.config reads them).

The `[checks]` keys each check owns, and the rules checks add, come from the catalogue the caller hands in
(harness.model.catalogue); each backend's own `[engine.<name>]` table is of that backend's type: nothing here
knows which checks exist, and of the backends only the default's name.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from harness.model.catalogue import BackendRules, BackendTable, Catalogue
from harness.util.errors import UserError

# The backend of a profile that names none, and of goldens made before backends existed. Which backends exist, and
# which `[engine]` keys and sub-tables each owns, comes from the catalogue (harness.model.catalogue BackendRules).
DEFAULT_BACKEND = "paddle"
# The bundled model pack of a profile that names none (`[engine] pack`); the packs themselves are the paddle
# backend's (harness.backends.paddle.pack).
DEFAULT_PACK = "pp-ocrv4-mobile"
_UNSET: Any = object()  # get() without a default: an unknown key raises KeyError
_Table = TypeVar("_Table", bound=BackendTable)


@dataclass(frozen=True)
class EngineSettings:
    """Everything that decides what the engine reads; `None` means the harness default.

    Backend-neutral settings (models, detection limits, thresholds, recognition batch) apply to every backend:
    in-process backends are given them, the http backend is expected to be configured with them and every
    difference the service reports is flagged. A backend owns some flat `[engine]` keys or a table of its own
    (`[engine.<name>]`, typed by the backend: `BackendRules.settings`); the other backends reject them.
    """

    backend: str = DEFAULT_BACKEND  # a registered backend (harness.backends.registry)
    # The backend whose goldens this profile's golden set holds, when it is not `backend` itself: the profile
    # declares that its backend reads like that one within the profile's tolerances ("shares the goldens").
    goldens_from: str | None = None
    # "module:callable" building the engine in the worker as callable(settings, model_dirs); None: PaddleOCR.
    # An extension point like Polygraphy's runners: wrap or replace the engine without touching the harness.
    factory: str | None = None
    pack: str | None = None  # the bundled model pack (None: DEFAULT_PACK) for det and rec dirs the profile leaves unset
    # Model names and rec input shape: None takes what the model dir's inference.yml declares (run plans resolve
    # them, harness.backends.identity); a value that differs from the dir's is a usage error naming both. Set them
    # only for an old-format dir without inference.yml, together with rec_char_dict.
    det_model_name: str | None = None
    rec_model_name: str | None = None
    det_model_dir: str | None = None  # None: the bundled model pack
    rec_model_dir: str | None = None
    rec_char_dict: str | None = None  # only for an old-format rec dir without inference.yml
    rec_image_shape: tuple[int, ...] | None = None
    device: str = "cpu"
    enable_mkldnn: bool = True
    cpu_threads: int | None = None  # None: the machine's cores, not PaddleOCR's 10
    # Paddle Inference passes to remove (PaddleX's paddle_static engine_config `delete_pass`); None: PaddleOCR's
    # own engine config, untouched. The `variations` check's bn-unfused path sets the BN fusion passes here.
    delete_passes: tuple[str, ...] | None = None
    # oneDNN held to an older ISA in the worker (ONEDNN_MAX_CPU_ISA, e.g. "AVX2"); None: the CPU's best. The
    # `variations` check's isa-* paths set it: another runner type's numerics, in a fresh worker of this machine.
    onednn_max_isa: str | None = None
    rec_batch_size: int = 6
    det_limit_side_len: int = 960
    det_limit_type: str = "max"
    det_thresh: float = 0.3
    det_box_thresh: float = 0.6
    det_unclip_ratio: float = 1.5
    rec_score_thresh: float = 0.0
    use_textline_orientation: bool = False
    use_doc_orientation_classify: bool = False
    use_doc_unwarping: bool = False
    # Each backend's own table by backend name, of the backend's own type. A profile read from harness.toml holds
    # every registered backend's (those it leaves unset at their defaults), so reports record them all.
    tables: Mapping[str, BackendTable] = field(default_factory=dict)

    def table(self, name: str, kind: type[_Table]) -> _Table:
        """Backend `name`'s table as its own type: how the backend reads it (its defaults when none is held)."""
        found = self.tables.get(name)
        if found is None:
            return kind()
        if not isinstance(found, kind):  # a bug: another type registered under the backend's name
            raise TypeError(f"engine.{name}: a {type(found).__name__}, not a {kind.__name__}")
        return found

    def as_dict(self) -> dict[str, Any]:
        """As report.json records it: the flat keys, then each backend's table under its name."""
        d = dataclasses.asdict(self)
        d.pop("tables")
        return {**d, **{name: table.to_dict() for name, table in self.tables.items()}}

    def validate(self, where: str, backends: Mapping[str, BackendRules]) -> None:
        names = ", ".join(backends)
        _require(self.backend in backends, f"{where}.backend", f"must be one of {names}")
        _require(self.goldens_from is None or (self.goldens_from in backends and self.goldens_from != self.backend),
                 f"{where}.goldens_from", f"must be another backend ({names})")
        default = EngineSettings()
        for owner in backends.values():
            if owner.name == self.backend:
                continue
            for name in owner.flat_keys:
                _require(getattr(self, name) == getattr(default, name), f"{where}.{name}",
                         f"belongs to the {owner.name} backend; this profile's backend is {self.backend}")
        for owner in backends.values():
            if owner.settings is not None and owner.name != self.backend:
                _require(self.tables.get(owner.name, owner.settings()) == owner.settings(), f"{where}.{owner.name}",
                         f"settings for the {owner.name} backend; this profile's backend is {self.backend}")
        for name, table in self.tables.items():
            table.validate(f"{where}.{name}")
        _require(self.factory is None or (":" in self.factory and all(self.factory.split(":", 1))),
                 f"{where}.factory", "must look like 'package.module:callable'")
        _require(self.device == "cpu" or self.device.startswith("gpu"), f"{where}.device", "must be 'cpu' or 'gpu[:N]'")
        _require(self.cpu_threads is None or self.cpu_threads >= 1, f"{where}.cpu_threads", "must be >= 1")
        _require(self.rec_image_shape is None or (len(self.rec_image_shape) == 3
                                                  and all(v > 0 for v in self.rec_image_shape)),
                 f"{where}.rec_image_shape", "must be three positive ints [C, H, W]")
        for name in ("pack", "det_model_name", "rec_model_name"):
            _require(getattr(self, name) is None or bool(str(getattr(self, name)).strip()), f"{where}.{name}",
                     "must not be empty")
        _require(self.rec_batch_size >= 1, f"{where}.rec_batch_size", "must be >= 1")
        _require(32 <= self.det_limit_side_len <= 8192, f"{where}.det_limit_side_len", "must be in 32..8192")
        _require(self.det_limit_type in ("max", "min"), f"{where}.det_limit_type", "must be 'max' or 'min'")
        for name in ("det_thresh", "det_box_thresh", "rec_score_thresh"):
            _require(0.0 <= getattr(self, name) <= 1.0, f"{where}.{name}", "must be in 0..1")
        _require(self.det_unclip_ratio > 0, f"{where}.det_unclip_ratio", "must be > 0")
        for name in ("use_textline_orientation", "use_doc_orientation_classify", "use_doc_unwarping"):
            _require(not getattr(self, name), f"{where}.{name}",
                     "needs a model the offline pack does not ship; it would be downloaded")

    def resolved_threads(self) -> int:
        return self.cpu_threads if self.cpu_threads is not None else (os.cpu_count() or 1)

    def hash_dict(self, backends: Mapping[str, BackendRules]) -> dict[str, Any]:
        """What the stack's `engine_settings_hash` is computed over: the neutral settings plus the backend's own.

        For the backend that owns the flat keys (paddle) this is exactly the flat dict the harness has always
        hashed, so goldens made before backends existed keep matching. Transport settings (url, timeouts, retries)
        and `goldens_from` never change what is read, so they are not in it."""
        own = backends[self.backend]
        d = dataclasses.asdict(self)
        for key in ("backend", "goldens_from", "tables"):
            d.pop(key)
        for key in ("delete_passes", "onednn_max_isa"):  # unset: the dict every golden was stamped with before
            if d[key] is None:
                d.pop(key)
        if d["pack"] in (None, DEFAULT_PACK):  # the default pack: as stamped before the key existed
            d.pop("pack")
        if own.flat_keys:
            return d
        for rules in backends.values():
            for key in rules.flat_keys:
                d.pop(key, None)
        d["backend"] = self.backend
        if own.settings is not None and own.hashed_table:
            d[own.name] = self.tables.get(own.name, own.settings()).to_dict()
        return d


@dataclass(frozen=True)
class Tolerances:
    """How far a current line may move from its golden line and still pass."""

    text_max_cer: float = 0.0  # 0: exact text
    poly_max_shift_px: float = 1.0  # max vertex shift; covers last-bit box moves across CPUs
    poly_min_iou: float = 0.9
    score_abs: float = 1e-4  # other CPU ISAs move scores by ~2e-6
    match_min_iou: float = 0.3  # below this a golden and a current line are not the same line

    def validate(self, where: str) -> None:
        _require(0.0 <= self.text_max_cer <= 1.0, f"{where}.text_max_cer", "must be in 0..1")
        _require(self.poly_max_shift_px >= 0, f"{where}.poly_max_shift_px", "must be >= 0")
        _require(0.0 <= self.poly_min_iou <= 1.0, f"{where}.poly_min_iou", "must be in 0..1")
        _require(self.score_abs >= 0, f"{where}.score_abs", "must be >= 0")
        _require(0.0 < self.match_min_iou <= 1.0, f"{where}.match_min_iou", "must be in (0, 1]")


@dataclass(frozen=True)
class CheckSettings:
    """The `[checks]` table: the core keys every run needs as fields, each check's own keys (declared next to the
    check, harness.model.catalogue Option) in `extra`."""

    repeats: int = 3  # in-process repeats per image on the main pass, compared exactly
    golden_path: str = "profile"  # which path the goldens are made and compared on: profile | bs1
    # 0: every image. N: variations, several-per-call batching and the fresh process (properties of the stack)
    # run on a deterministic stratified sample of N images covering every template x tag (harness.sampling).
    stack_sample: int = 0
    accuracy: bool = True  # the report's accuracy against the corpus's ground truth

    # The checks' own keys: those the profile sets, and those reports always record (at their defaults).
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Those keys' defaults, from the catalogue the profile was read with: not a setting (never reported or compared).
    defaults: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def get(self, key: str, default: Any = _UNSET) -> Any:
        """A `[checks]` value by key: a field above, or a check's option (its default when unset)."""
        if key not in ("extra", "defaults") and key in _field_names(CheckSettings):
            return getattr(self, key)
        if key in self.extra:
            return self.extra[key]
        if key in self.defaults:
            return self.defaults[key]
        if default is _UNSET:
            raise KeyError(key)
        return default

    def with_values(self, **values: Any) -> CheckSettings:
        """A copy with these keys changed, fields and registered options alike."""
        fields = _field_names(CheckSettings)
        own = {k: v for k, v in values.items() if k in fields and k not in ("extra", "defaults")}
        extra = {**self.extra, **{k: v for k, v in values.items() if k not in own}}
        return dataclasses.replace(self, **own, extra=extra)

    def as_dict(self) -> dict[str, Any]:
        """The flat `[checks]` table, as report.json records it."""
        d = dataclasses.asdict(self)
        d.pop("extra")
        d.pop("defaults")
        return {**d, **self.extra}

    def validate(self, where: str, catalogue: Catalogue) -> None:
        """Each check validates the keys it owns; an option's value is checked by its own rule."""
        for key, value in self.extra.items():
            option = catalogue.options.get(key)
            if option is None:
                raise UserError(f"{where}.{key}: unknown key")
            why = option.problem(value) if option.problem is not None else None
            _require(why is None, f"{where}.{key}", why or "")
        _require(1 <= self.repeats <= 100, f"{where}.repeats", "must be in 1..100")
        _require(self.golden_path in ("profile", "bs1"), f"{where}.golden_path", "must be 'profile' or 'bs1'")
        _require(self.stack_sample >= 0, f"{where}.stack_sample", "must be >= 0 (0: every image)")
        for rule in catalogue.validators:
            rule(self, where)


def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


EXECUTORS = ("local", "ray")
_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+:[0-9]{1,5}|\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}")


@dataclass(frozen=True)
class ExecutorSettings:
    """`[executor]`: where the main pass's calls run. `local`: worker processes on this machine (`workers`);
    `ray`: Ray actors, each supervising one harness worker process, on a Ray cluster (docs/scale-out.md)."""

    kind: str = "local"
    # Ray only: "local" starts a private cluster on this machine for the run (loopback, no dashboard); "auto"
    # joins the cluster this machine is part of (RAY_ADDRESS or a running `ray start`); "host:port" is a cluster's
    # GCS address.
    address: str = "local"
    slots: int | None = None  # Ray only: calls in flight at once; None: the cluster's CPUs / the engine's threads

    def validate(self, where: str) -> None:
        _require(self.kind in EXECUTORS, f"{where}.kind", f"must be one of {', '.join(EXECUTORS)}")
        _require(self.address in ("local", "auto") or bool(_HOST_PORT.fullmatch(self.address)), f"{where}.address",
                 "must be 'local', 'auto' or host:port")
        _require(self.slots is None or 1 <= self.slots <= 4096, f"{where}.slots", "must be in 1..4096")
        if self.kind == "local":
            _require(self.address == "local" and self.slots is None, f"{where}.address" if self.address != "local"
                     else f"{where}.slots", "is a Ray setting; this profile's executor is local")


@dataclass(frozen=True)
class Profile:
    name: str = "default"
    description: str = ""
    corpus: str = "datasets/bank_slips"
    subset: str | None = None
    tags: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    golden_dir: str = "golden"
    golden_set: str | None = None  # None: the profile name; profiles with the same engine can share goldens
    model_cache: str | None = None  # None: $OCR_HARNESS_CACHE or the user's cache dir
    max_image_pixels: int = 40_000_000
    max_image_bytes: int = 256 * 2**20  # a corpus file over this is refused unread
    workers: int = 1
    image_timeout_s: float = 300.0
    engine: EngineSettings = field(default_factory=EngineSettings)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    checks: CheckSettings = field(default_factory=CheckSettings)
    tolerances: Tolerances = field(default_factory=Tolerances)
    # What the batch_paths check tolerates between the goldens' path and the other batch paths. PaddleOCR pads
    # recognition crops to the widest in their batch, so these may need to be looser than `tolerances`; a lost
    # key-field value (amount, account, date) fails whatever they say.
    batch_tolerances: Tolerances = field(default_factory=Tolerances)
    # What the parity check tolerates between the profile's backend and the reference backend; a lost key-field
    # value fails whatever they say.
    parity_tolerances: Tolerances = field(default_factory=Tolerances)

    def golden_engine(self) -> EngineSettings:
        """The engine the goldens are made and compared on: recognition batch 1 when `golden_path = "bs1"`.
        Refresh, run, status and the pytest plugin all record and compare this engine's stack."""
        if self.checks.golden_path == "bs1":
            return dataclasses.replace(self.engine, rec_batch_size=1)
        return self.engine

    def validate(self, catalogue: Catalogue) -> None:
        where = f"profiles.{self.name}"
        _require(self.workers >= 1, f"{where}.workers", "must be >= 1")
        _require(math.isfinite(self.image_timeout_s) and self.image_timeout_s > 0, f"{where}.image_timeout_s",
                 "must be a finite number of seconds > 0")
        _require(self.max_image_pixels > 0, f"{where}.max_image_pixels", "must be > 0")
        _require(self.max_image_bytes > 0, f"{where}.max_image_bytes", "must be > 0")
        self.engine.validate(f"{where}.engine", catalogue.backends)
        self.executor.validate(f"{where}.executor")
        self.checks.validate(f"{where}.checks", catalogue)
        self.tolerances.validate(f"{where}.tolerances")
        self.batch_tolerances.validate(f"{where}.batch_tolerances")
        self.parity_tolerances.validate(f"{where}.parity_tolerances")
        for rule in catalogue.profile_rules:
            rule(self, where)

    @property
    def golden_name(self) -> str:
        return self.golden_set or self.name

    def replace(self, **changes: Any) -> Profile:
        return dataclasses.replace(self, **changes)

    def settings_dict(self) -> dict[str, Any]:
        """The resolved profile as reports record it; each backend's table as it says (a URL's credentials redacted)."""
        return {**dataclasses.asdict(self), "engine": self.engine.as_dict(), "checks": self.checks.as_dict()}


def require(ok: bool, key: str, why: str) -> None:
    """A UserError naming `key` unless `ok`: how every validation rule (here and in check specs) reads."""
    if not ok:
        raise UserError(f"{key}: {why}")


_require = require


def with_model_dir(engine: EngineSettings, kind: str, model_dir: str) -> EngineSettings:
    """`engine` with `model_dir` as its det or rec model (the other one as it was)."""
    if kind == "det":
        return dataclasses.replace(engine, det_model_dir=model_dir)
    if kind == "rec":
        return dataclasses.replace(engine, rec_model_dir=model_dir)
    raise ValueError(f"model kind {kind!r}: det or rec")
