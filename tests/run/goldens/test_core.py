"""harness.run.goldens.core: how goldens are made, written once for `golden refresh` and the pytest plugin."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from harness.backends import check_may_write_goldens
from harness.checks.golden_check import refresh_hint
from harness.checks.registry import catalogue
from harness.config import load_profile
from harness.corpus.loader import load_corpus
from harness.run.goldens.core import MIN_REPEATS, golden_repeats, plan_golden_refresh, reproducible
from harness.golden.store import GoldenStore
from harness.model.inference import ImageOutcome
from harness.model.results import OcrResult
from harness.model.settings import CheckSettings, Profile
from harness.util.errors import UserError

ROOT = Path(__file__).resolve().parents[3]
IMAGE = "slip_0003"


def committed(image_id: str) -> OcrResult:
    golden = GoldenStore(ROOT / "golden", "default").load(image_id)
    assert golden is not None
    return golden.result


def test_repeat_floor() -> None:
    assert MIN_REPEATS == 2
    assert golden_repeats(Profile(checks=CheckSettings(repeats=1))) == 2
    assert golden_repeats(Profile(checks=CheckSettings(repeats=5))) == 5


def test_reproducible_sees_one_score_in_the_last_bit() -> None:
    current = committed(IMAGE)
    line = current.lines[3]
    nudged = dataclasses.replace(
        current, lines=(*current.lines[:3], dataclasses.replace(line, score=line.score + 1e-12), *current.lines[4:]))
    assert reproducible(ImageOutcome(IMAGE, (current, current, current)))
    assert not reproducible(ImageOutcome(IMAGE, (current, current, nudged)))
    assert reproducible(ImageOutcome(IMAGE, (current,)))  # nothing to compare: the floor is golden_repeats' job


def test_plan_refuses_output_that_differs_across_repeats(tmp_path: Path) -> None:
    corpus = load_corpus(ROOT / "datasets" / "bank_slips", ids=(IMAGE,))
    items = {it.id: it for it in corpus.items}
    store = GoldenStore(tmp_path, "default")  # empty: every image is new
    current = committed(IMAGE)
    wobbly = dataclasses.replace(current, lines=(dataclasses.replace(current.lines[0], score=0.5), *current.lines[1:]))
    profile = Profile()
    (entry,) = plan_golden_refresh(store, {IMAGE: ImageOutcome(IMAGE, (current, wobbly))}, items, "all",
                                   profile).items
    assert entry.action == "refused" and not entry.writes
    (entry,) = plan_golden_refresh(store, {IMAGE: ImageOutcome(IMAGE, (current, current))}, items, "all",
                                   profile).items
    assert entry.action == "new" and entry.writes


def test_refresh_and_plugin_share_the_rules() -> None:
    """No second copy of a rule: neither the CLI nor the plugin computes repeats, reproducibility or the stack."""
    for path in (ROOT / "harness" / "cli" / "golden_cmd.py", ROOT / "harness" / "pytest_plugin.py",
                 ROOT / "harness" / "run" / "goldens" / "regression.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert not called & {"max", "first_divergence", "plan_refresh"}, path
        if path.name == "pytest_plugin.py":  # a thin shell: options, a fixture, a parametrising hook
            assert not [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
        else:
            assert {"golden_repeats", "plan_golden_refresh", "golden_stack"} <= called, path


def test_the_refresh_hint_names_a_profile_that_may_write_the_goldens() -> None:
    """A failing run of a profile that shares another backend's goldens used to suggest refreshing with itself,
    which refuses by design; the hint names the profile that owns the set, and that profile may write it."""
    root = Path(__file__).resolve().parents[3]
    for name in ("onnx", "service"):
        sharing, _ = load_profile(root / "harness.toml", name, catalogue())
        hint = refresh_hint(sharing)
        assert hint.startswith("ocr-harness golden refresh --profile default --failed"), hint
        try:
            check_may_write_goldens(sharing)
        except UserError:
            pass
        else:
            raise AssertionError(f"{name} may write goldens it shares")
        owner, _ = load_profile(root / "harness.toml", hint.split()[4], catalogue())
        check_may_write_goldens(owner)  # the named profile may write them
        assert owner.golden_name == sharing.golden_name
    release, _ = load_profile(root / "harness.toml", "release", catalogue())
    assert refresh_hint(release) == "ocr-harness golden refresh --profile release --failed"
