"""The backend registry (harness.backends.registry): a backend is one package, or one module out of tree. The
`inkbands` backend (tests/dummy_backend.py), registered through $OCR_HARNESS_BACKENDS or the `ocr_harness.backends`
entry point group with no file of the harness touched, passes config validation, runs end to end through the CLI
in spawned workers, and its facts are in report.json's stack record. Its own `[engine.inkbands]` table is read and
validated by its own type, refused on another backend's profile, recorded, hashed and read by its engine."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from conftest import CORPUS, ROOT, run_cli
from harness.backends import builtin, registry
from harness.backends.spec import BackendSpec
from harness.checks import registry as check_registry
from harness.checks.registry import catalogue
from harness.config import load_profile
from harness.corpus.images import read_image
from harness.environment import settings_hash
from harness.util.errors import UserError

TESTS = Path(__file__).resolve().parents[1]
PLUGIN_ENV = {registry.PLUGINS_ENV: "dummy_backend", "PYTHONPATH": str(TESTS)}
IDS = ("slip_0003", "slip_0007")


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The built-in backends only, in a registry not yet loaded; the real one is back after the test."""
    monkeypatch.setattr(registry, "_SPECS", {s.name: s for s in registry.specs()[:3]})
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.delenv(registry.PLUGINS_ENV, raising=False)
    monkeypatch.delitem(sys.modules, "dummy_backend", raising=False)  # importing it again registers it again
    yield


def config(tmp_path: Path, backend: str, *engine: str) -> Path:
    path = tmp_path / "harness.toml"
    path.write_text("\n".join([
        "[profiles.t]", f'corpus = "{CORPUS.as_posix()}"', f'golden_dir = "{(tmp_path / "golden").as_posix()}"',
        "[profiles.t.engine]", f'backend = "{backend}"', *engine,
        "[profiles.t.checks]", "repeats = 2", "goldens = false", "accuracy = false"]) + "\n", encoding="utf-8")
    return path


def test_the_builtin_backends_in_registration_order() -> None:
    assert registry.names()[:3] == ("paddle", "onnxruntime", "http")
    assert all(isinstance(s, BackendSpec) for s in registry.specs())


def test_unregistered_the_backend_is_refused_by_config(tmp_path: Path, fresh_registry: None) -> None:
    registry.load(builtin)
    with pytest.raises(UserError, match="profiles.t.engine.backend: must be one of paddle, onnxruntime, http$"):
        load_profile(config(tmp_path, "inkbands"), "t", catalogue())


def test_from_the_entry_point_group_config_accepts_it(tmp_path: Path, fresh_registry: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS))
    found = [EntryPoint("inkbands", "dummy_backend", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(registry, "entry_points", lambda group: found if group == registry.ENTRY_POINT_GROUP else [])
    registry.load(builtin)
    assert registry.names() == ("paddle", "onnxruntime", "http", "inkbands")
    profile, _ = load_profile(config(tmp_path, "inkbands"), "t", catalogue())
    assert profile.engine.backend == "inkbands"
    # The checks that need a capability it lacks (Paddle programs, paddle's flat keys) rule themselves out.
    skipped = {s.name: s.skip(profile) for s in check_registry.specs() if s.skip is not None and s.skip(profile)}
    assert skipped == {"audit": "reads Paddle programs; the inkbands backend runs none",
                       "probe": "reads Paddle programs; the inkbands backend runs none",
                       "bn_drift": "reads Paddle programs; the inkbands backend runs none",
                       "variations": "oneDNN and thread variations are paddle settings; the backend is inkbands"}
    # Its rules are the built-ins' too: paddle's flat keys and the other backends' tables are refused.
    with pytest.raises(UserError, match="cpu_threads: belongs to the paddle backend; this profile's backend is "
                                        "inkbands"):
        load_profile(config(tmp_path, "inkbands", "cpu_threads = 2"), "t", catalogue())


@pytest.fixture
def with_inkbands(fresh_registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in backends and inkbands, loaded from $OCR_HARNESS_BACKENDS as a user would."""
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv(registry.PLUGINS_ENV, "dummy_backend")
    registry.load(builtin)


@pytest.mark.parametrize(("lines", "message"), [
    # A key of no field: one line naming the file and the key, with the closest key of the backend's own type.
    (["min_rows = 2"], "{path}: profiles.t.engine.inkbands.min_rows: unknown key (did you mean 'min_band_rows'?)"),
    (['ink_below = "dark"'], "{path}: profiles.t.engine.inkbands.ink_below: expected int, got str 'dark'"),
    (["ink_below = 0"], "profiles.t.engine.inkbands.ink_below: must be in 1..255"),  # the type's own rule
])
def test_an_out_of_tree_backends_table_is_validated_by_its_own_type(tmp_path: Path, with_inkbands: None,
                                                                    lines: list[str], message: str) -> None:
    path = config(tmp_path, "inkbands", "[profiles.t.engine.inkbands]", *lines)
    with pytest.raises(UserError) as err:
        load_profile(path, "t", catalogue())
    assert str(err.value) == message.format(path=path)


def test_an_out_of_tree_backends_table_is_its_own(tmp_path: Path, with_inkbands: None) -> None:
    from dummy_backend import InkBandsSettings

    profile, _ = load_profile(config(tmp_path, "inkbands", "[profiles.t.engine.inkbands]", "ink_below = 200"), "t",
                              catalogue())
    own = profile.engine.table("inkbands", InkBandsSettings)
    assert own == InkBandsSettings(ink_below=200)
    assert profile.settings_dict()["engine"]["inkbands"] == {"min_band_rows": None, "ink_below": 200}
    # It decides what is read, so it is in the engine settings hash; the built-in tables are not (not its own).
    plain, _ = load_profile(config(tmp_path, "inkbands"), "t", catalogue())
    rules = registry.rules()
    assert profile.engine.hash_dict(rules)["inkbands"] == {"min_band_rows": None, "ink_below": 200}
    assert settings_hash(profile.engine.hash_dict(rules)) != settings_hash(plain.engine.hash_dict(rules))
    assert "http" not in profile.engine.hash_dict(rules)
    # Another backend's profile may not set it, and it may not set theirs.
    with pytest.raises(UserError, match=r"^profiles.t.engine.inkbands: settings for the inkbands backend; this "
                                        r"profile's backend is paddle$"):
        load_profile(config(tmp_path, "paddle", "[profiles.t.engine.inkbands]", "ink_below = 200"), "t", catalogue())
    with pytest.raises(UserError, match=r"^profiles.t.engine.onnxruntime: settings for the onnxruntime backend"):
        load_profile(config(tmp_path, "inkbands", "[profiles.t.engine.onnxruntime]", "intra_op_threads = 2"), "t",
                     catalogue())


def test_a_backend_module_that_cannot_be_imported_is_one_clear_error(tmp_path: Path) -> None:
    res = run_cli(["run", "--config", str(config(tmp_path, "inkbands")), "--profile", "t"],
                  env={registry.PLUGINS_ENV: "no_such_backend_module"})
    assert res.returncode == 2
    assert res.stderr.startswith("ocr-harness: error: $OCR_HARNESS_BACKENDS: cannot import backend module "
                                 "'no_such_backend_module'") and "Traceback" not in res.stderr


def test_a_run_with_an_out_of_tree_backend_end_to_end(tmp_path: Path) -> None:
    tree = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    out = tmp_path / "out"
    table = ("[profiles.t.engine.inkbands]", "ink_below = 200")  # its own table, read by its engine in the workers
    res = run_cli(["run", "--config", str(config(tmp_path, "inkbands", *table)), "--profile", "t", "--id", IDS[0],
                   "--id", IDS[1], "--out", str(out)], env=PLUGIN_ENV, out=out)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    report = res.report
    stack = report["stack"]
    model = json.loads((TESTS / "dummy_backend_model" / "inference.json").read_text(encoding="utf-8"))
    assert stack["backend"] == "inkbands" and stack["inkbands"]["ink_below"] == model["ink_below"]
    assert set(stack["models"]) == {"det/inference.json", "rec/inference.json"}
    assert "paddle" not in stack and "onednn" not in stack
    assert report["profile"]["settings"]["engine"]["backend"] == "inkbands"
    assert report["profile"]["settings"]["engine"]["inkbands"] == {"min_band_rows": None, "ink_below": 200}
    checks = report["checks"]
    assert checks["inference"]["passed"] and checks["repeat"]["passed"] and checks["mutation"]["passed"]
    assert checks["audit"]["skipped"] and checks["audit"]["summary"] == ("skipped: reads Paddle programs; the inkbands "
                                                                         "backend runs none")
    # Real results of real images, computed in the spawned workers by the plug-in's own engine.
    results = {r["id"]: r for r in res.results()}
    assert set(results) == set(IDS)
    for r in results.values():
        assert r["error"] is None and r["result"]["lines"]
        assert all(line["text"].isdigit() for line in r["result"]["lines"])
    # The workers read the table: the texts (ink pixel counts) are the engine's with ink_below = 200, not with the
    # model's own 128.
    from dummy_backend import MODEL_DIR, InkBands, InkBandsSettings
    from harness.model.modeldirs import ModelDirs
    from harness.model.settings import EngineSettings

    dirs = ModelDirs(det=MODEL_DIR, rec=MODEL_DIR, source="inkbands")
    image = read_image(CORPUS / "images" / f"{IDS[0]}.jpg")  # decoded as the run decodes it
    read = {label: [line.text for line in InkBands(EngineSettings(backend="inkbands", tables=tables), dirs)
                    .predict([image], [IDS[0]])[0].lines]
            for label, tables in (("table", {"inkbands": InkBandsSettings(ink_below=200)}), ("model", {}))}
    assert [line["text"] for line in results[IDS[0]]["result"]["lines"]] == read["table"] != read["model"]
    assert subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                          text=True).stdout == tree  # nothing of the tree was touched
