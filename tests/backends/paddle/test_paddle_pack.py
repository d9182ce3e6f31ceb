from __future__ import annotations

import multiprocessing as mp
import shutil
from pathlib import Path

import pytest
import yaml

from harness.backends.paddle import pack as modelpack
from harness.model.settings import EngineSettings
from harness.util.errors import UserError

from conftest import run_cli


def copy_sources(dst: Path) -> Path:
    src = modelpack.carrier_dir()
    for pf in modelpack.PACK_FILES:
        (dst / pf.source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / pf.source, dst / pf.source)
    return dst


def test_bundled_files_carry_pinned_hashes() -> None:
    found = modelpack.verify_sources()
    assert len(found) == len(modelpack.PACK_FILES)


def test_tampered_source_names_file_and_expected_hash(tmp_path: Path) -> None:
    src = copy_sources(tmp_path)
    params = src / "models/ch_PP-OCRv4_rec_infer/inference.pdiparams"
    data = bytearray(params.read_bytes())
    data[1000] ^= 0xFF
    params.write_bytes(bytes(data))
    with pytest.raises(UserError) as err:
        modelpack.verify_sources(src)
    assert str(params) in str(err.value)
    assert "a6dbfa63e7ee161688523c954e9e293f77dc24044db81e836ff9c7f103fd191a" in str(err.value)


def test_missing_source_file(tmp_path: Path) -> None:
    src = copy_sources(tmp_path)
    (src / "ch_ppocr_rec/ppocr_keys_v1.txt").unlink()
    with pytest.raises(UserError, match="ppocr_keys_v1.txt: model file missing"):
        modelpack.verify_sources(src)


def test_prepare_materialises_paddlex_dirs_once(tmp_path: Path) -> None:
    dirs = modelpack.prepare_bundled(EngineSettings(), str(tmp_path))
    det = yaml.safe_load((dirs.det / "inference.yml").read_text(encoding="utf-8"))
    rec = yaml.safe_load((dirs.rec / "inference.yml").read_text(encoding="utf-8"))
    assert det["Global"]["model_name"] == "PP-OCRv4_mobile_det"
    assert rec["PostProcess"]["character_dict"][-1] == " "
    assert len(rec["PostProcess"]["character_dict"]) == 6624
    mtime = (dirs.rec / "inference.pdiparams").stat().st_mtime_ns
    again = modelpack.prepare_bundled(EngineSettings(), str(tmp_path))
    assert again == dirs and (dirs.rec / "inference.pdiparams").stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [dirs.det.parent.name]  # no temp dirs left behind


def _prepare(cache: str) -> None:
    modelpack.prepare_bundled(EngineSettings(), cache)


def test_concurrent_prepare_leaves_one_complete_pack(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_prepare, args=(str(tmp_path),)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    (pack,) = tmp_path.iterdir()
    modelpack.verify_prepared(pack)


def test_tampered_cache_is_detected_by_cli(tmp_path: Path) -> None:
    dirs = modelpack.prepare_bundled(EngineSettings(), str(tmp_path))
    (dirs.det / "inference.pdiparams").write_bytes(b"not a model")
    res = run_cli(["models", "verify"], env={"OCR_HARNESS_CACHE": str(tmp_path)})
    assert res.returncode == 2
    assert "det/inference.pdiparams: sha256 mismatch: expected 49ee815e" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_old_format_user_dir_gets_generated_yml(tmp_path: Path) -> None:
    src = modelpack.carrier_dir() / "models/ch_PP-OCRv4_rec_infer"
    mine = tmp_path / "my_rec"
    shutil.copytree(src, mine)
    settings = EngineSettings(rec_model_dir=str(mine))
    # The dir does not say what it is: the profile must, or it is the missing file that is named.
    with pytest.raises(UserError, match=f"{mine / 'inference.yml'}: missing; .* or set engine.rec_model_name"):
        modelpack.resolve_model_dirs(settings, tmp_path, str(tmp_path / "cache"))
    settings = EngineSettings(rec_model_dir=str(mine), rec_model_name="PP-OCRv4_mobile_rec")
    with pytest.raises(UserError, match="set engine.rec_char_dict"):
        modelpack.resolve_model_dirs(settings, tmp_path, str(tmp_path / "cache"))
    keys = modelpack.carrier_dir() / "ch_ppocr_rec/ppocr_keys_v1.txt"
    settings = EngineSettings(rec_model_dir=str(mine), rec_char_dict=str(keys), rec_model_name="PP-OCRv4_mobile_rec")
    dirs = modelpack.resolve_model_dirs(settings, tmp_path, str(tmp_path / "cache"))
    assert (dirs.rec / "inference.yml").is_file() and dirs.source == "user"
    assert not (mine / "inference.yml").exists()  # the user's dir is never written to
