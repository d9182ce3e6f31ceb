"""The ONNX model pack: PP-OCRv4 det/rec as ONNX (converted by RapidOCR, shipped in the `rapidocr-onnxruntime`
wheel), laid out as PaddleX model dirs (`inference.onnx` + the same generated `inference.yml` as the Paddle
pack) so that PaddleX's own pre- and post-processing runs them.

Made like the Paddle pack, by the shared materialiser (harness.backends.pack): pinned sha256 for every file,
materialised atomically in the cache, the carrier's code never imported, nothing downloaded. Users' own ONNX dirs
(`engine.det_model_dir` / `rec_model_dir` with an `inference.onnx`) are accepted too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from harness.backends.pack import (COMPLETE_MARKER, YML, PackFile, cache_root, carrier_path, det_yml, materialise,
                                   read_dictionary, rec_yml, resolve_dirs, user_dir_path, user_dir_yml, verified,
                                   write_yml)
from harness.backends.paddle import pack as paddle_pack
from harness.model.modeldirs import ModelDirs, sha256_file
from harness.model.settings import EngineSettings
from harness.util.errors import UserError

CARRIER = "rapidocr_onnxruntime"
CARRIER_VERSION = "1.4.4"
ONNX_FILES: tuple[PackFile, ...] = (
    PackFile("det", "models/ch_PP-OCRv4_det_infer.onnx",
             "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"),
    PackFile("rec", "models/ch_PP-OCRv4_rec_infer.onnx",
             "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"),
)
# The recognition dictionary is not in the ONNX wheel (RapidOCR embeds it in the model's metadata); the Paddle
# pack's pinned copy is the same 6623 characters.
DICT_FILE = next(pf for pf in paddle_pack.PACK_FILES if pf.kind == "dict")
ONNX_PACK_ID = "pp-ocrv4-onnx-" + hashlib.sha256(
    "".join(f.sha256 for f in (*ONNX_FILES, DICT_FILE)).encode()).hexdigest()[:12]
MODEL_FILE = "inference.onnx"


def carrier_dir() -> Path:
    return carrier_path(CARRIER, f"ONNX model carrier package {CARRIER!r} is not installed: "
                                 f"pip install rapidocr-onnxruntime=={CARRIER_VERSION}")


def verify_sources(source: Path | None = None) -> dict[str, Path]:
    """Every ONNX pack file (and the dictionary) present with its pinned hash."""
    root = source or carrier_dir()
    found = {pf.source: verified(root / pf.source, pf.sha256) for pf in ONNX_FILES}
    found[DICT_FILE.source] = verified(paddle_pack.carrier_dir() / DICT_FILE.source, DICT_FILE.sha256)
    return found


def prepare_onnx(settings: EngineSettings, cache: str | None = None) -> ModelDirs:
    files = verify_sources()
    chars = read_dictionary(files[DICT_FILE.source])
    # The same PP-OCRv4 weights as the Paddle pack: the same declaration (harness.backends.identity reads it).
    det_name, rec_name = paddle_pack.PP_OCRV4.generated_names or ("", "")
    shape = paddle_pack.PP_OCRV4.rec_image_shape
    contents = {"det": det_yml(det_name), "rec": rec_yml(rec_name, chars, shape)}
    key = hashlib.sha256(json.dumps([contents["det"]["Global"], contents["rec"]["Global"], list(shape)],
                                    sort_keys=True).encode()).hexdigest()[:8]
    target = cache_root(cache) / f"{ONNX_PACK_ID}-{key}"

    def build(tmp: Path) -> None:
        for kind, content in contents.items():
            (tmp / kind).mkdir()
            (pf,) = (pf for pf in ONNX_FILES if pf.kind == kind)
            shutil.copyfile(files[pf.source], tmp / kind / MODEL_FILE)
            write_yml(tmp / kind / YML, content)
        manifest = {pf.source: pf.sha256 for pf in ONNX_FILES}
        (tmp / COMPLETE_MARKER).write_text(json.dumps({"pack": ONNX_PACK_ID, "carrier": f"{CARRIER}=={CARRIER_VERSION}",
                                                       "files": manifest}, indent=2) + "\n")

    root = materialise(target, build)
    verify_prepared(root)
    return ModelDirs(det=root / "det", rec=root / "rec", source="bundled-onnx")


def verify_prepared(root: Path) -> None:
    """The cached copies still carry the pinned hashes."""
    for pf in ONNX_FILES:
        verified(root / pf.kind / MODEL_FILE, pf.sha256, paddle_pack.PREPARE_HINT)


def user_onnx_dir(path_text: str, base: Path, kind: str, settings: EngineSettings, cache: str | None) -> Path:
    """A user's ONNX model dir; without an `inference.yml` it is copied into the cache with a generated one."""
    path = user_dir_path(path_text, base, kind)
    if not (path / MODEL_FILE).is_file():
        raise UserError(f"engine.{kind}_model_dir: {path}: the onnxruntime backend needs {MODEL_FILE} "
                        "(export one with: ocr-harness models export DIR --to onnx)")
    if (path / YML).is_file():
        return path
    content = user_dir_yml(path, base, kind, settings)
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode())
    digest.update(sha256_file(path / MODEL_FILE).encode())
    target = cache_root(cache) / f"user-onnx-{kind}-{digest.hexdigest()[:12]}"

    def build(tmp: Path) -> None:
        shutil.copyfile(path / MODEL_FILE, tmp / MODEL_FILE)
        write_yml(tmp / YML, content)
        (tmp / COMPLETE_MARKER).write_text(json.dumps({"source": str(path)}) + "\n")

    return materialise(target, build)


def resolve_onnx_dirs(settings: EngineSettings, base: Path, cache: str | None = None) -> ModelDirs:
    """The bundled ONNX pack unless the profile points at the user's own ONNX dirs."""
    return resolve_dirs(settings, base, cache, prepare_onnx, user_onnx_dir)
