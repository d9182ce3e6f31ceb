"""`harness.toml`: named profiles, strictly validated before any model loads.

A profile may `extends` another; CLI flags override the resolved profile. Every key is checked: unknown keys,
wrong types and impossible values end as a `UserError` naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from harness.errors import UserError

CONFIG_NAME = "harness.toml"


@dataclass(frozen=True)
class EngineSettings:
    """Everything handed to `paddleocr.PaddleOCR`; `None` means the harness default."""

    # "module:callable" building the engine in the worker as callable(settings, model_dirs); None: PaddleOCR.
    # An extension point like Polygraphy's runners: wrap or replace the engine without touching the harness.
    factory: str | None = None
    det_model_name: str = "PP-OCRv4_mobile_det"
    rec_model_name: str = "PP-OCRv4_mobile_rec"
    det_model_dir: str | None = None  # None: the bundled model pack
    rec_model_dir: str | None = None
    rec_char_dict: str | None = None  # only for an old-format rec dir without inference.yml
    rec_image_shape: tuple[int, ...] = (3, 48, 320)
    device: str = "cpu"
    enable_mkldnn: bool = True
    cpu_threads: int | None = None  # None: the machine's cores, not PaddleOCR's 10
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

    def validate(self, where: str) -> None:
        _require(self.factory is None or (":" in self.factory and all(self.factory.split(":", 1))),
                 f"{where}.factory", "must look like 'package.module:callable'")
        _require(self.device == "cpu" or self.device.startswith("gpu"), f"{where}.device", "must be 'cpu' or 'gpu[:N]'")
        _require(self.cpu_threads is None or self.cpu_threads >= 1, f"{where}.cpu_threads", "must be >= 1")
        _require(len(self.rec_image_shape) == 3 and all(v > 0 for v in self.rec_image_shape),
                 f"{where}.rec_image_shape", "must be three positive ints [C, H, W]")
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
    repeats: int = 3  # in-process repeats per image, compared exactly
    cross_process: bool = False  # repeat once more in a fresh worker
    mutation: bool = True  # the engine must not modify its input image
    goldens: bool = True
    missing_golden: str = "fail"  # fail | warn
    batch_paths: bool = False  # bs1 vs profile batch vs several images per call
    batch_path_images: int = 3  # images per predict call for the multi-image path
    golden_path: str = "profile"  # which path the goldens use: profile | bs1
    variations: bool = False  # oneDNN on/off and thread counts, judged by the golden tolerances
    variation_threads: tuple[int, ...] = (1,)
    # 0: every image. N: variations, several-per-call batching and the fresh process (properties of the stack)
    # run on a deterministic stratified sample of N images covering every template x tag (harness.sampling).
    stack_sample: int = 0
    audit: bool = True  # static eval-mode / BN audit of the model dirs
    audit_min_variance: float = 1e-6
    probe: bool = False  # behavioural batch-independence probe on the raw models
    bn_drift: bool = False
    bn_drift_images: int = 8
    bn_drift_threshold: float = 2.5  # clean bank slips score up to ~2.3 on det's head BN layer
    accuracy: bool = True

    def validate(self, where: str) -> None:
        _require(1 <= self.repeats <= 100, f"{where}.repeats", "must be in 1..100")
        _require(self.missing_golden in ("fail", "warn"), f"{where}.missing_golden", "must be 'fail' or 'warn'")
        _require(self.golden_path in ("profile", "bs1"), f"{where}.golden_path", "must be 'profile' or 'bs1'")
        _require(2 <= self.batch_path_images <= 64, f"{where}.batch_path_images", "must be in 2..64")
        _require(all(t >= 1 for t in self.variation_threads), f"{where}.variation_threads", "values must be >= 1")
        _require(self.audit_min_variance >= 0, f"{where}.audit_min_variance", "must be >= 0")
        _require(self.bn_drift_threshold > 0, f"{where}.bn_drift_threshold", "must be > 0")
        _require(self.bn_drift_images >= 1, f"{where}.bn_drift_images", "must be >= 1")
        _require(self.stack_sample >= 0, f"{where}.stack_sample", "must be >= 0 (0: every image)")


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
    workers: int = 1
    image_timeout_s: float = 300.0
    engine: EngineSettings = field(default_factory=EngineSettings)
    checks: CheckSettings = field(default_factory=CheckSettings)
    tolerances: Tolerances = field(default_factory=Tolerances)
    # What the batch_paths check tolerates between the goldens' path and the other batch paths. PaddleOCR pads
    # recognition crops to the widest in their batch, so these may need to be looser than `tolerances`; a lost
    # key-field value (amount, account, date) fails whatever they say.
    batch_tolerances: Tolerances = field(default_factory=Tolerances)

    def golden_engine(self) -> EngineSettings:
        """The engine the goldens are made and compared on: recognition batch 1 when `golden_path = "bs1"`.
        Refresh, run, status and the pytest plugin all record and compare this engine's stack."""
        if self.checks.golden_path == "bs1":
            return dataclasses.replace(self.engine, rec_batch_size=1)
        return self.engine

    def validate(self) -> None:
        where = f"profiles.{self.name}"
        _require(self.workers >= 1, f"{where}.workers", "must be >= 1")
        _require(self.image_timeout_s > 0, f"{where}.image_timeout_s", "must be > 0")
        _require(self.max_image_pixels > 0, f"{where}.max_image_pixels", "must be > 0")
        self.engine.validate(f"{where}.engine")
        self.checks.validate(f"{where}.checks")
        self.tolerances.validate(f"{where}.tolerances")
        self.batch_tolerances.validate(f"{where}.batch_tolerances")

    @property
    def golden_name(self) -> str:
        return self.golden_set or self.name

    def replace(self, **changes: Any) -> Profile:
        return dataclasses.replace(self, **changes)

    def settings_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _require(ok: bool, key: str, why: str) -> None:
    if not ok:
        raise UserError(f"{key}: {why}")


def find_config(start: Path | None = None) -> Path | None:
    """`harness.toml` in the current directory or the nearest parent."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / CONFIG_NAME).is_file():
            return d / CONFIG_NAME
    return None


def load_profile(path: Path | None, name: str) -> tuple[Profile, Path]:
    """The resolved profile and the directory its relative paths are relative to."""
    if path is None:
        if name != "default":
            raise UserError(f"profile {name!r} requested but no {CONFIG_NAME} was found")
        return Profile(), Path.cwd()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: invalid TOML: {e}") from None
    unknown = set(raw) - {"profiles"}
    if unknown:
        raise UserError(f"{path}: unknown top-level key {sorted(unknown)[0]!r} (expected [profiles.NAME])")
    profiles = raw.get("profiles", {})
    if not isinstance(profiles, dict) or name not in profiles:
        known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) else ""
        raise UserError(f"{path}: no profile {name!r} (profiles: {known or 'none'})")
    merged = _resolve(profiles, name, path, chain=())
    merged.pop("extends", None)
    profile = _build(Profile, merged, f"profiles.{name}", path)
    profile = profile.replace(name=name)
    profile.validate()
    return profile, path.parent


def _resolve(profiles: dict[str, Any], name: str, path: Path, chain: tuple[str, ...]) -> dict[str, Any]:
    if name in chain:
        raise UserError(f"{path}: profiles.{name}.extends: cycle {' -> '.join((*chain, name))}")
    body = profiles.get(name)
    if not isinstance(body, dict):
        raise UserError(f"{path}: profiles.{chain[-1] if chain else name}.extends: no profile {name!r}")
    parent = body.get("extends")
    if parent is None:
        return dict(body)
    if not isinstance(parent, str):
        raise UserError(f"{path}: profiles.{name}.extends: expected a profile name")
    base = _resolve(profiles, parent, path, (*chain, name))
    return _deep_merge(base, body)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _build(cls: type, raw: dict[str, Any], where: str, path: Path) -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "name"}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in names:
            close = difflib.get_close_matches(key, sorted(names), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"{path}: {where}.{key}: unknown key{hint}")
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}", path)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str, path: Path) -> Any:
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise UserError(f"{path}: {key}: expected a table")
        return _build(hint, value, key, path)
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        return _coerce(options[0], value, key, path)
    if origin is tuple:
        item = get_args(hint)[0]
        if not isinstance(value, list):
            raise UserError(f"{path}: {key}: expected a list, got {type(value).__name__}")
        return tuple(_coerce(item, v, f"{key}[{i}]", path) for i, v in enumerate(value))
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(hint)
    if ok is None:
        raise TypeError(f"unsupported config type {hint!r} at {key}")
    if not ok:
        raise UserError(f"{path}: {key}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return float(value) if hint is float else value
