"""`harness.toml`: named profiles, strictly validated before any model loads.

A profile may `extends` another; CLI flags override the resolved profile. Every key is checked: unknown keys,
wrong types and impossible values end as a `UserError` naming the key. The keys checks own beyond the settings
dataclasses come from the catalogue the caller hands in: reading a profile loads no check.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from harness.model.catalogue import BackendRules, Catalogue
from harness.model.settings import CheckSettings, EngineSettings, Profile
from harness.util.errors import UserError
from harness.util.files import CONFIG_MAX, read_input_text
from harness.util.values import value_problem

CONFIG_NAME = "harness.toml"


def find_config(start: Path | None = None) -> Path | None:
    """`harness.toml` in the current directory or the nearest parent."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / CONFIG_NAME).is_file():
            return d / CONFIG_NAME
    return None


def load_profile(path: Path | None, name: str, catalogue: Catalogue) -> tuple[Profile, Path]:
    """The resolved profile and the directory its relative paths are relative to; `catalogue`: the checks' keys."""
    if path is None:
        if name != "default":
            raise UserError(f"profile {name!r} requested but no {CONFIG_NAME} was found")
        return Profile(engine=EngineSettings(tables=catalogue.default_tables()),
                       checks=CheckSettings(extra=catalogue.recorded(), defaults=catalogue.defaults())), Path.cwd()
    try:
        raw = tomllib.loads(read_input_text(path, CONFIG_MAX))
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: invalid TOML: {e}") from None
    except RecursionError:  # tomllib recurses per nesting level: bad input, not a bug
        raise UserError(f"{path}: invalid TOML: nested too deeply") from None
    unknown = set(raw) - {"profiles"}
    if unknown:
        raise UserError(f"{path}: unknown top-level key {sorted(unknown)[0]!r} (expected [profiles.NAME])")
    profiles = raw.get("profiles", {})
    if not isinstance(profiles, dict) or name not in profiles:
        known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) else ""
        raise UserError(f"{path}: no profile {name!r} (profiles: {known or 'none'})")
    merged = _resolve(profiles, name, path, (), catalogue.backends)
    merged.pop("extends", None)
    profile = _build(Profile, merged, f"profiles.{name}", path, catalogue)
    # The checks' option defaults travel with the settings, so CheckSettings.get answers without the catalogue; the
    # options reports always record are held at their defaults when unset.
    checks = dataclasses.replace(profile.checks, extra={**catalogue.recorded(), **profile.checks.extra},
                                 defaults=catalogue.defaults())
    profile = profile.replace(name=name, checks=checks)
    profile.validate(catalogue)
    # After the settings' own rules (which name the unit): `inf`, `nan` anywhere else, since TOML has them and
    # the report's JSON has not (a run with score_abs = inf completed and then could not write its report).
    if (bad := value_problem(raw)) is not None:
        raise UserError(f"{path}: {bad[0]}: {bad[1]}")
    return profile, path.parent


def _resolve(profiles: dict[str, Any], name: str, path: Path, chain: tuple[str, ...],
             backends: Mapping[str, BackendRules]) -> dict[str, Any]:
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
    base = _resolve(profiles, parent, path, (*chain, name), backends)
    engine = body.get("engine")
    if isinstance(engine, dict) and isinstance(base.get("engine"), dict) and "backend" in engine:
        base = {**base, "engine": _neutral_engine(base["engine"], engine["backend"], backends)}
    return _deep_merge(base, body)


def _neutral_engine(engine: dict[str, Any], backend: Any, backends: Mapping[str, BackendRules]) -> dict[str, Any]:
    """A parent's engine table as a profile that picks `backend` inherits it: the backend-neutral settings only
    (a paddle parent's cpu_threads says nothing about an onnxruntime child); the child's own keys still validate."""
    rules = backends.get(backend) if isinstance(backend, str) else None
    own = {*rules.flat_keys, rules.table} if rules is not None else set()
    owned = {k for r in backends.values() for k in (*r.flat_keys, *([r.table] if r.table else []))}
    return {k: v for k, v in engine.items() if k not in owned - own}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _build(cls: type, raw: dict[str, Any], where: str, path: Path, catalogue: Catalogue) -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name not in ("name", "extra", "defaults", "tables")}
    kwargs: dict[str, Any] = {}
    owned: dict[str, Any] = {key: opt.type for key, opt in catalogue.options.items()} if cls is CheckSettings else {}
    if cls is EngineSettings:  # each backend's own table, of the backend's own type (harness.model.catalogue)
        owned = {rules.name: rules.settings for rules in catalogue.backends.values() if rules.settings is not None}
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        if key in owned and key not in names:  # a check's own key, or a backend's own table
            extra[key] = _coerce(owned[key], value, f"{where}.{key}", path, catalogue)
            continue
        if key not in names:
            close = difflib.get_close_matches(key, sorted(names | set(owned)), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"{path}: {where}.{key}: unknown key{hint}")
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}", path, catalogue)
    if cls is EngineSettings:  # every backend's table, the unset ones at their defaults: reports record them all
        kwargs["tables"] = {**catalogue.default_tables(), **extra}
    elif extra:
        kwargs["extra"] = extra
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str, path: Path, catalogue: Catalogue) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):  # a settings class, not an instance
        if not isinstance(value, dict):
            raise UserError(f"{path}: {key}: expected a table")
        return _build(hint, value, key, path, catalogue)
    origin = get_origin(hint)
    if origin is dict:  # a table of strings (headers_env)
        if not isinstance(value, dict):
            raise UserError(f"{path}: {key}: expected a table, got {type(value).__name__}")
        for k, v in value.items():
            if not isinstance(v, str):
                raise UserError(f"{path}: {key}.{k}: expected str, got {type(v).__name__} {v!r}")
        return dict(value)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        return _coerce(options[0], value, key, path, catalogue)
    if origin is tuple:
        item = get_args(hint)[0]
        if not isinstance(value, list):
            raise UserError(f"{path}: {key}: expected a list, got {type(value).__name__}")
        return tuple(_coerce(item, v, f"{key}[{i}]", path, catalogue) for i, v in enumerate(value))
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
