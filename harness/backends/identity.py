"""What a model dir says it is: the model name, the rec input shape and the dictionary of its `inference.yml`.

PaddleX reads a dir's `inference.yml` for its pre- and post-processing and refuses a dir whose `Global.model_name`
differs from the name it is given, so the name belongs to the dir, not to the profile: a profile that names no
model takes the dir's; one that names another is a usage error naming both. The bundled packs go through the same
reader as a user's dirs (their yml is the carrier's, or generated from the pack's own declaration).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.model.modeldirs import ModelDirs
from harness.model.settings import EngineSettings
from harness.util.errors import UserError

YML = "inference.yml"
# The C loader reads an 18k-entry dictionary about 10x faster than the pure-Python one.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class ModelIdentity:
    """One model dir's own declaration."""

    kind: str  # det | rec
    name: str  # Global.model_name
    yml: Path
    image_shape: tuple[int, ...] | None = None  # rec: RecResizeImg.image_shape
    dictionary_size: int | None = None  # rec: entries of PostProcess.character_dict (the trailing space included)


def read_identity(model_dir: Path, kind: str) -> ModelIdentity:
    """The dir's identity; a missing or malformed `inference.yml` is a UserError naming the file."""
    path = model_dir / YML
    if not path.is_file():
        raise UserError(f"{path}: missing; a model dir says what it is in a PaddleX inference.yml "
                        "(Global.model_name)")
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        problem = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path}: not a readable YAML file ({problem})") from None
    glob = doc.get("Global") if isinstance(doc, dict) else None
    name = glob.get("model_name") if isinstance(glob, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{path}: malformed: no Global.model_name (a PaddleX inference.yml names its model)")
    if kind == "det":
        return ModelIdentity(kind, name, path)
    return ModelIdentity(kind, name, path, _image_shape(doc, path), _dictionary_size(doc, path))


def _image_shape(doc: dict[str, Any], path: Path) -> tuple[int, ...] | None:
    ops = (doc.get("PreProcess") or {}).get("transform_ops") if isinstance(doc.get("PreProcess"), dict) else None
    for op in ops if isinstance(ops, list) else ():
        if isinstance(op, dict) and isinstance(op.get("RecResizeImg"), dict):
            shape = op["RecResizeImg"].get("image_shape")
            if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)):
                raise UserError(f"{path}: malformed: RecResizeImg.image_shape must be three positive ints [C, H, W]")
            return tuple(shape)
    return None


def _dictionary_size(doc: dict[str, Any], path: Path) -> int | None:
    post = doc.get("PostProcess")
    chars = post.get("character_dict") if isinstance(post, dict) else None
    if chars is None:
        return None
    if not isinstance(chars, list) or not chars:
        raise UserError(f"{path}: malformed: PostProcess.character_dict must be a non-empty list")
    return len(chars)


def identities(dirs: ModelDirs) -> tuple[ModelIdentity, ModelIdentity] | None:
    """(det, rec) of local dirs; None for models that live in a service."""
    if not dirs.local:
        return None
    return read_identity(dirs.det, "det"), read_identity(dirs.rec, "rec")


def resolved(settings: EngineSettings, dirs: ModelDirs) -> EngineSettings:
    """`settings` with the model names and rec input shape the dirs declare; the profile may repeat them, but a
    different value is a UserError naming both. Idempotent; a service's models keep the profile's values."""
    found = identities(dirs)
    if found is None:
        return settings
    det, rec = found
    changes: dict[str, Any] = {}
    for key, declared in (("det_model_name", det.name), ("rec_model_name", rec.name)):
        ident = det if key.startswith("det") else rec
        _agree(key, getattr(settings, key), declared, ident.yml)
        changes[key] = declared
    if rec.image_shape is not None:
        _agree("rec_image_shape", settings.rec_image_shape, rec.image_shape, rec.yml)
        changes["rec_image_shape"] = rec.image_shape
    return dataclasses.replace(settings, **changes)


def named(settings: EngineSettings, dirs: ModelDirs) -> EngineSettings:
    """`settings` as given when they already name both models (a run plan resolved them), else resolved here:
    for an engine built outside a plan (a probe, a tool, a test)."""
    if settings.det_model_name is not None and settings.rec_model_name is not None:
        return settings
    return resolved(settings, dirs)


def _agree(key: str, profile_value: Any, declared: Any, yml: Path) -> None:
    if profile_value is not None and tuple_or(profile_value) != tuple_or(declared):
        raise UserError(f"engine.{key}: the profile names {_show(profile_value)} but {yml} declares "
                        f"{_show(declared)}; remove the setting or point the profile at that model's dir")


def tuple_or(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(list(value))
