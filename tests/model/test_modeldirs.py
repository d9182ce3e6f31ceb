"""The model dir says what it is: names and rec input shape come from its inference.yml (harness.backends.identity)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from builders import Table, profile_toml, write_profiles
from conftest import run_cli

from harness.backends import identity
from harness.backends.paddle import pack as modelpack
from harness.model.modeldirs import ModelDirs
from harness.model.settings import EngineSettings
from harness.util.errors import UserError

V5_NAMES = ("PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec")


def user_v5_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A team's own dirs: copies of the official PP-OCRv5_mobile exports (inference.json/.pdiparams/.yml)."""
    root = modelpack.PP_OCRV5.carrier_dir()
    out = []
    for kind in ("det", "rec"):
        src = root / f"models/PP-OCRv5_mobile_{kind}"
        dst = tmp_path / f"my_{kind}"
        dst.mkdir()
        for f in src.glob("inference.*"):
            shutil.copyfile(f, dst / f.name)
        out.append(dst)
    return out[0], out[1]


def write_profile(tmp_path: Path, det: Path, rec: Path, *, engine: Table | None = None,
                  checks: Table | None = None) -> Path:
    """Profile `mine` on the smoke subset with these model dirs; `engine`, `checks`: more of those tables' keys."""
    return write_profiles(tmp_path, profile_toml("mine", golden_dir=tmp_path / "g", top={"subset": "smoke"},
                                                 engine={"det_model_dir": det, "rec_model_dir": rec, **(engine or {})},
                                                 checks={"repeats": 2, **(checks or {})}))


def test_names_and_shape_come_from_the_dirs(tmp_path: Path) -> None:
    det, rec = user_v5_dirs(tmp_path)
    resolved = identity.resolved(EngineSettings(), ModelDirs(det=det, rec=rec, source="user"))
    assert (resolved.det_model_name, resolved.rec_model_name) == V5_NAMES
    assert resolved.rec_image_shape == (3, 48, 320)
    assert identity.read_identity(rec, "rec").dictionary_size == 18383
    # Repeating what the dir says is fine (a plan's settings resolve again in a Ray actor): idempotent.
    assert identity.resolved(resolved, ModelDirs(det=det, rec=rec, source="user")) == resolved


def test_profile_naming_another_model_is_one_line_naming_both(tmp_path: Path) -> None:
    det, rec = user_v5_dirs(tmp_path)
    with pytest.raises(UserError) as err:
        identity.resolved(EngineSettings(det_model_name="PP-OCRv4_mobile_det"),
                          ModelDirs(det=det, rec=rec, source="user"))
    assert "'PP-OCRv4_mobile_det'" in str(err.value) and "'PP-OCRv5_mobile_det'" in str(err.value)
    assert str(det / "inference.yml") in str(err.value)
    config = write_profile(tmp_path, det, rec, engine={"rec_model_name": "PP-OCRv4_mobile_rec"})
    for args in (["models", "list"], ["run", "--out", str(tmp_path / "out")]):  # refused before any model loads
        res = run_cli([*args, "--config", str(config), "--profile", "mine"])
        assert res.returncode == 2, res.stderr[-2000:]
        (line,) = res.stderr.strip().splitlines()
        assert line.endswith(f"engine.rec_model_name: the profile names 'PP-OCRv4_mobile_rec' but "
                             f"{rec / 'inference.yml'} declares 'PP-OCRv5_mobile_rec'; remove the setting or point "
                             "the profile at that model's dir"), line
    # Clean: the same profile without the name lists the dir's names.
    listed = run_cli(["models", "list", "--config", str(write_profile(tmp_path, det, rec)), "--profile", "mine"])
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "det  PP-OCRv5_mobile_det" in listed.stdout and "rec  PP-OCRv5_mobile_rec" in listed.stdout
    assert "dictionary 18383 entries" in listed.stdout


@pytest.mark.parametrize("content, problem", [
    (None, "missing; a model dir says what it is"),
    ("Global: [model_name: x\n", "not a readable YAML file"),
    ("Global:\n  other: 1\nPostProcess: {}\n", "malformed: no Global.model_name"),
    ("- just\n- a list\n", "malformed: no Global.model_name"),
])
def test_dir_without_a_readable_yml_is_exit_2_naming_the_file(tmp_path: Path, content: str | None,
                                                              problem: str) -> None:
    det, rec = user_v5_dirs(tmp_path)
    yml = det / "inference.yml"
    if content is None:
        yml.unlink()
    else:
        yml.write_text(content, encoding="utf-8")
    res = run_cli(["models", "list", "--config", str(write_profile(tmp_path, det, rec)), "--profile", "mine"])
    assert res.returncode == 2, res.stderr[-2000:]
    (line,) = res.stderr.strip().splitlines()
    assert str(yml) in line and problem in line, line


@pytest.mark.slow
def test_user_v5_dirs_run_with_no_model_name_set(tmp_path: Path) -> None:
    """A team's PP-OCRv5 export, pointed at and nothing else: goldens, the release checks, the names recorded."""
    det, rec = user_v5_dirs(tmp_path)
    config = write_profile(tmp_path, det, rec, checks={"speed": False})
    common = ["--config", str(config), "--profile", "mine", "--id", "slip_0004"]
    made = run_cli(["golden", "refresh", *common, "--all", "--yes", "--out", str(tmp_path / "r")])
    assert made.returncode == 0, made.stderr[-2000:]
    meta = json.loads((tmp_path / "g" / "mine" / "_meta.json").read_text(encoding="utf-8"))
    assert meta["stack"]["model_names"] == {"det": V5_NAMES[0], "rec": V5_NAMES[1]}
    out = tmp_path / "out"
    res = run_cli(["run", *common, "--out", str(out)], out=out)
    assert res.returncode == 0, res.stderr[-2000:]
    report = res.report
    assert report["stack"]["model_names"] == {"det": V5_NAMES[0], "rec": V5_NAMES[1]}
    engine = report["profile"]["settings"]["engine"]
    assert (engine["det_model_name"], engine["rec_model_name"]) == V5_NAMES
    assert report["passed"] and report["checks"]["inference"]["passed"] and report["checks"]["golden"]["passed"]
    assert report["checks"]["golden"]["judged"] == 1
    assert report["checks"]["golden"]["details"]["status"]["stack_differences"] == []


def test_an_engine_built_outside_a_plan_loads_the_dirs_own_names(tmp_path: Path) -> None:
    """A probe, tool or test building the engine from unresolved settings still hands PaddleX the dir's names."""
    from harness.backends.paddle.engine import pipeline_kwargs

    det, rec = user_v5_dirs(tmp_path)
    kwargs = pipeline_kwargs(EngineSettings(), ModelDirs(det=det, rec=rec, source="user"))
    assert (kwargs["text_detection_model_name"], kwargs["text_recognition_model_name"]) == V5_NAMES
