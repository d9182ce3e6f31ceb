from __future__ import annotations

from pathlib import Path

import pytest

from harness.checks.registry import catalogue
from harness.config import load_profile
from harness.model.settings import CheckSettings, EngineSettings, Profile
from harness.util.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "harness.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_repo_profiles_load() -> None:
    for name in ("default", "release", "nightly"):
        profile, base = load_profile(ROOT / "harness.toml", name, catalogue())
        assert profile.name == name
        assert base == ROOT
    nightly, _ = load_profile(ROOT / "harness.toml", "nightly", catalogue())
    assert nightly.checks.repeats == 5 and nightly.checks.get("cross_process")
    assert nightly.engine.rec_batch_size == 6  # inherited from default
    assert nightly.golden_name == "default"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[profiles.p]\ncorpuss = 'x'\n", "profiles.p.corpuss: unknown key (did you mean 'corpus'?)"),
        ("[profiles.p.engine]\ncpu_threads = 'two'\n", "profiles.p.engine.cpu_threads: expected int, got str"),
        ("[profiles.p.engine]\ncpu_threads = 0\n", "profiles.p.engine.cpu_threads: must be >= 1"),
        ("[profiles.p.engine]\nenable_mkldnn = 1\n", "profiles.p.engine.enable_mkldnn: expected bool"),
        ("[profiles.p.checks]\nrepeats = 0\n", "profiles.p.checks.repeats: must be in 1..100"),
        ("[profiles.p.tolerances]\nscore_abs = -1\n", "profiles.p.tolerances.score_abs: must be >= 0"),
        ("[profiles.p.engine]\nuse_textline_orientation = true\n", "would be downloaded"),
        ("[profiles.p]\nextends = 'q'\n[profiles.q]\nextends = 'p'\n", "cycle"),
        ("[profiles.p]\nengine = 3\n", "profiles.p.engine: expected a table"),
        ("[profile.p]\n", "unknown top-level key 'profile'"),
        ("[profiles.p\n", "invalid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError, match=None) as err:
        load_profile(write(tmp_path, text), "p", catalogue())
    assert message in str(err.value)


def test_unknown_profile_lists_known(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no profile 'x' \\(profiles: a, b\\)"):
        load_profile(write(tmp_path, "[profiles.a]\n[profiles.b]\n"), "x", catalogue())


def test_defaults_when_no_config() -> None:
    profile, _ = load_profile(None, "default", catalogue())
    # Every backend's own table at its defaults (reports record them all), the rest Profile's own defaults.
    assert {name: type(t)() for name, t in profile.engine.tables.items()} == profile.engine.tables
    assert set(profile.engine.tables) == {"onnxruntime", "http"}
    # The checks' own keys reports have always recorded, at their defaults; the rest Profile's own defaults.
    recorded = catalogue().recorded()
    assert profile == Profile(engine=EngineSettings(tables=dict(profile.engine.tables)),
                              checks=CheckSettings(extra=recorded))
    assert set(profile.settings_dict()["checks"]) == {
        "repeats", "golden_path", "stack_sample", "accuracy", "cross_process", "mutation", "goldens",
        "missing_golden", "batch_paths", "batch_path_images", "variations", "variation_threads", "audit",
        "audit_min_variance", "probe", "bn_drift", "bn_drift_images", "bn_drift_threshold", "parity",
        "parity_reference"}
    assert profile.engine.resolved_threads() >= 1


def test_a_profile_that_picks_another_backend_inherits_only_neutral_engine_settings(tmp_path: Path) -> None:
    """A paddle parent's cpu_threads and oneDNN say nothing about an onnxruntime child: not inherited. Set in the
    child itself, they are still an error naming the key."""
    parent = "[profiles.p]\nworkers = 2\n[profiles.p.engine]\ncpu_threads = 1\nenable_mkldnn = false\nrec_batch_size = 1\n"
    child = "[profiles.c]\nextends = 'p'\n[profiles.c.engine]\nbackend = 'onnxruntime'\n"
    profile, _ = load_profile(write(tmp_path, parent + child), "c", catalogue())
    assert profile.engine.backend == "onnxruntime" and profile.engine.rec_batch_size == 1 and profile.workers == 2
    assert profile.engine.cpu_threads is None and profile.engine.enable_mkldnn is True  # the defaults
    paddle_child = "[profiles.k]\nextends = 'p'\n[profiles.k.engine]\nbackend = 'paddle'\n"
    assert load_profile(write(tmp_path, parent + paddle_child), "k", catalogue())[0].engine.cpu_threads == 1
    planted = child + "cpu_threads = 1\n"
    with pytest.raises(UserError, match="profiles.c.engine.cpu_threads: belongs to the paddle backend"):
        load_profile(write(tmp_path, parent + planted), "c", catalogue())
