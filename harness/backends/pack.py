"""The shared model-pack materialiser: pinned files from a carrier wheel laid out as PaddleX model dirs in a cache.

Every pack (the Paddle pack, the ONNX pack, a user's old-format model dirs) is made the same way: each source file
verified against its pinned sha256, the dir built under a temporary name and renamed into place (two processes
preparing at once never leave a half-written pack), and PaddleX's `inference.yml` generated where a dir has none.
Nothing here imports a carrier's code or touches the network.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.model.modeldirs import ModelDirs, sha256_file
from harness.model.settings import EngineSettings
from harness.util.errors import UserError

CACHE_ENV = "OCR_HARNESS_CACHE"
COMPLETE_MARKER = "pack.json"
YML = "inference.yml"
# The rec input shape of a yml generated for an old-format dir whose profile names none (PP-OCRv4's).
DEFAULT_REC_IMAGE_SHAPE = (3, 48, 320)


@dataclass(frozen=True)
class PackFile:
    kind: str  # det | rec | dict
    source: str  # path inside the carrier package
    sha256: str


def cache_root(configured: str | None = None) -> Path:
    if configured:
        return Path(configured).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ocr-harness"


def carrier_path(package: str, missing: str) -> Path:
    """Where the carrier wheel `package` is installed; `missing` is the UserError when it is not."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(missing)
    return Path(next(iter(spec.submodule_search_locations)))


def verified(path: Path, expected: str, hint: str = "") -> Path:
    """`path`, present with its pinned hash; a missing or tampered file is a UserError naming it."""
    if not path.is_file():
        raise UserError(f"{path}: model file missing (expected sha256 {expected}){hint}")
    actual = sha256_file(path)
    if actual != expected:
        raise UserError(f"{path}: sha256 mismatch: expected {expected}, got {actual}")
    return path


def det_yml(model_name: str) -> dict[str, Any]:
    return {
        "Global": {"model_name": model_name},
        "PreProcess": {"transform_ops": [
            {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
            {"DetLabelEncode": None},
            {"DetResizeForTest": None},
            {"NormalizeImage": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                "scale": "1./255.", "order": "hwc"}},
            {"ToCHWImage": None},
            {"KeepKeys": {"keep_keys": ["image", "shape", "polys", "ignore_tags"]}},
        ]},
        "PostProcess": {"name": "DBPostProcess", "thresh": 0.3, "box_thresh": 0.6, "max_candidates": 1000,
                        "unclip_ratio": 1.5},
    }


def rec_yml(model_name: str, characters: list[str], image_shape: tuple[int, ...]) -> dict[str, Any]:
    return {
        "Global": {"model_name": model_name},
        "PreProcess": {"transform_ops": [
            {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
            {"MultiLabelEncode": {"gtc_encode": "NRTRLabelEncode"}},
            {"RecResizeImg": {"image_shape": list(image_shape)}},
            {"KeepKeys": {"keep_keys": ["image", "label_ctc", "label_gtc", "length", "valid_ratio"]}},
        ]},
        # CTC's blank is index 0 inside the decoder; the dictionary ends with the space character.
        "PostProcess": {"name": "CTCLabelDecode", "character_dict": [*characters, " "]},
    }


def read_dictionary(path: Path) -> list[str]:
    try:
        chars = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read character dictionary: {e}") from None
    if not chars:
        raise UserError(f"{path}: character dictionary is empty")
    return chars


def user_dir_yml(path: Path, base: Path, kind: str, settings: EngineSettings) -> dict[str, Any]:
    """The `inference.yml` for a user's old-format model dir that has none, from the profile's declared settings:
    a dir that does not say what it is needs the profile to say it."""
    name = settings.det_model_name if kind == "det" else settings.rec_model_name
    if not name:
        raise UserError(f"engine.{kind}_model_dir: {path / YML}: missing; a model dir says what it is in a PaddleX "
                        f"inference.yml, or set engine.{kind}_model_name"
                        + (" and engine.rec_char_dict" if kind == "rec" else "")
                        + " so the harness can generate one")
    if kind == "det":
        return det_yml(name)
    if not settings.rec_char_dict:
        raise UserError(f"engine.rec_model_dir: {path}: has no inference.yml; set engine.rec_char_dict "
                        "so the harness can generate one")
    chars = read_dictionary((base / settings.rec_char_dict).expanduser())
    return rec_yml(name, chars, settings.rec_image_shape or DEFAULT_REC_IMAGE_SHAPE)


def user_dir_path(path_text: str, base: Path, kind: str) -> Path:
    path = (base / path_text).expanduser().resolve()
    if not path.is_dir():
        raise UserError(f"engine.{kind}_model_dir: {path}: not a directory")
    return path


def write_yml(path: Path, content: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(content, allow_unicode=True, sort_keys=False), encoding="utf-8")


def materialise(target: Path, build: Callable[[Path], None]) -> Path:
    """Build a dir under a temp name in the same parent, then rename it into place; the first rename wins."""
    if (target / COMPLETE_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / COMPLETE_MARKER).is_file():  # a torn dir left by a crash before the marker: replace it
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_dirs(settings: EngineSettings, base: Path, cache: str | None,
                 bundled: Callable[[EngineSettings, str | None], ModelDirs],
                 user_dir: Callable[[str, Path, str, EngineSettings, str | None], Path]) -> ModelDirs:
    """A pack's bundled dirs unless the profile points at the user's own dirs (either or both of det and rec)."""
    if settings.det_model_dir is None and settings.rec_model_dir is None:
        return bundled(settings, cache)
    pack = bundled(settings, cache) if None in (settings.det_model_dir, settings.rec_model_dir) else None
    det = (user_dir(settings.det_model_dir, base, "det", settings, cache) if settings.det_model_dir
           else _bundled(pack).det)
    rec = (user_dir(settings.rec_model_dir, base, "rec", settings, cache) if settings.rec_model_dir
           else _bundled(pack).rec)
    return ModelDirs(det=det, rec=rec, source="user")


def _bundled(pack: ModelDirs | None) -> ModelDirs:
    """The pack, loaded above whenever one of det and rec is not the user's."""
    if pack is None:
        raise AssertionError("a model the profile does not name, with no pack loaded for it")
    return pack
