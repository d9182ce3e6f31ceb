"""The pytest entry (harness.pytest_plugin) driven as a user drives it: `pytest tests/run/goldens/test_regression.py`
in a subprocess, judged by exit code and JUnit XML. Few images per run to stay fast."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import plant_golden_digit, CORPUS, ROOT

from harness.checks.registry import catalogue
from harness.golden.approval import load_approval
from harness.golden.refresh import RefreshMode
from harness.golden.store import GoldenStore
from harness.model.inference import ImageOutcome
from harness.model.results import OcrResult
from harness.pytest_plugin import GoldenRegression, Options, Verdict

MODULE = "tests/run/goldens/test_regression.py"
PLANTED, CLEAN, THIRD = "slip_0002", "slip_0003", "slip_0006"
FOURTH = "slip_0007"


@dataclass(frozen=True)
class Case:
    passed: bool
    message: str
    properties: dict[str, str]


@dataclass(frozen=True)
class InnerRun:
    returncode: int
    output: str
    cases: dict[str, Case]  # by image id


def outer_free_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without this pytest's own variables (PYTEST_XDIST_WORKER, PYTEST_ADDOPTS, ...)."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}, **(extra or {})}


def inner_pytest(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> InnerRun:
    junit = tmp_path / f"junit-{len(list(tmp_path.glob('junit-*.xml')))}.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", MODULE, "-p", "no:cacheprovider", "-q",
                           f"--junitxml={junit}", f"--basetemp={tmp_path / 'bt'}", *args], check=False,
                          cwd=ROOT, env=outer_free_env(env), capture_output=True, text=True, timeout=600)
    cases = {}
    if junit.exists():
        for tc in ET.parse(junit).getroot().iter("testcase"):
            image_id = tc.get("name", "").partition("[")[2].rstrip("]")
            failure = tc.find("failure")
            cases[image_id] = Case(failure is None and tc.find("error") is None,
                                   "" if failure is None else f"{failure.get('message', '')}\n{failure.text or ''}",
                                   {p.get("name", ""): p.get("value", "") for p in tc.iter("property")})
    return InnerRun(proc.returncode, proc.stdout + proc.stderr, cases)


# --- collection and options: no model is loaded -----------------------------------------------------------------

def smoke_ids() -> list[str]:
    records = [json.loads(line) for line in (CORPUS / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    return [r["id"] for r in records if "smoke" in r["subsets"]]


def collected(*args: str) -> tuple[int, list[str], str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", MODULE, "--collect-only", "-q", "-p", "no:cacheprovider",
                           *args], check=False, cwd=ROOT, env=outer_free_env(), capture_output=True, text=True,
                          timeout=120)
    ids = [line.partition("[")[2].rstrip("]") for line in proc.stdout.splitlines() if "::test_matches_golden[" in line]
    return proc.returncode, ids, proc.stdout + proc.stderr


def test_collects_one_test_per_image_of_the_profile_selection() -> None:
    code, ids, _ = collected()
    assert code == 0 and ids == smoke_ids() and len(ids) == 12  # release = the smoke subset, in corpus order
    code, ids, _ = collected("--ocr-id", "slip_0005", "--ocr-id", "slip_0001")
    assert code == 0 and ids == ["slip_0001", "slip_0005"]
    code, ids, _ = collected("--ocr-profile", "nightly")
    assert code == 0 and len(ids) == 64


def test_bad_options_are_one_line_collection_errors() -> None:
    code, ids, out = collected("--ocr-id", "slip_9999")
    assert code == 2 and not ids
    assert "ocr-harness: error: unknown id 'slip_9999'" in out and "Traceback" not in out
    code, _, out = collected("--ocr-profile", "nope")
    assert code == 2 and "no profile 'nope'" in out
    code, _, out = collected("--ocr-regen", "some")
    assert code == 4 and "invalid choice" in out


def test_refresh_command_repeats_the_options() -> None:
    options = Options(profile="release", golden_dir=Path("/tmp/g x"))
    assert options.refresh_command("slip_0002", "failed") == (
        "ocr-harness golden refresh --profile release --golden-dir '/tmp/g x' --id slip_0002 --failed")
    assert not Verdict("a", False, "") and Verdict("a", True, "")


# --- judging and regenerating outcomes without a model (GoldenRegression.judge) ---------------------------------

def session(goldens: Path, regen: RefreshMode | None) -> GoldenRegression:
    options = Options(regen=regen, ids=(PLANTED, CLEAN), golden_dir=goldens)
    profile, base = options.resolve(ROOT, catalogue())
    return GoldenRegression(profile, base, options)  # the worker starts on first inference: never here


def committed(image_id: str) -> OcrResult:
    golden = GoldenStore(ROOT / "golden", "default").load(image_id)
    assert golden is not None
    return golden.result


def test_regen_writes_reproducible_output_and_refuses_the_rest(tmp_path: Path) -> None:
    goldens, original, edited = planted_goldens(tmp_path)
    planted = goldens / "default" / f"{PLANTED}.json"
    current = committed(PLANTED)
    wobbly = dataclasses.replace(current, lines=(dataclasses.replace(current.lines[0], score=0.5), *current.lines[1:]))

    verdict = session(goldens, None).judge(PLANTED, ImageOutcome(PLANTED, (current,)))
    assert not verdict and repr(edited) in verdict.message and repr(original) in verdict.message
    assert verdict.regen is None and edited in planted.read_text(encoding="utf-8")

    verdict = session(goldens, "failed").judge(PLANTED, ImageOutcome(PLANTED, (current, wobbly)))
    assert not verdict and "golden NOT regenerated (repeated runs gave different output)" in verdict.message
    assert edited in planted.read_text(encoding="utf-8")

    assert session(goldens, "new-only").judge(PLANTED, ImageOutcome(PLANTED, (current, current))).regen is None
    assert edited in planted.read_text(encoding="utf-8")  # new-only leaves an existing golden alone

    verdict = session(goldens, "failed").judge(PLANTED, ImageOutcome(PLANTED, (current, current)))
    assert not verdict and verdict.regen is not None and "regenerated (changed)" in verdict.regen
    assert edited not in planted.read_text(encoding="utf-8")
    assert session(goldens, None).judge(PLANTED, ImageOutcome(PLANTED, (current,)))

    (goldens / "default" / f"{CLEAN}.json").unlink()
    verdict = session(goldens, None).judge(CLEAN, ImageOutcome(CLEAN, (committed(CLEAN),)))
    assert not verdict and "no golden" in verdict.message and "--new-only --yes" in verdict.message
    verdict = session(goldens, "new-only").judge(CLEAN, ImageOutcome(CLEAN, (committed(CLEAN),) * 2))
    assert not verdict and "golden written (new)" in verdict.message  # fails in the run that writes it
    assert session(goldens, None).judge(CLEAN, ImageOutcome(CLEAN, (committed(CLEAN),)))


def test_only_a_full_regeneration_approves(tmp_path: Path) -> None:
    """Without a model: --ocr-regen failed, or all over part of the selection, keeps _approval.json and says so."""
    goldens, _, _ = planted_goldens(tmp_path)
    before = (goldens / "default" / "_approval.json").read_bytes()
    assert session(goldens, None).approve().lines == ()
    current = committed(PLANTED)
    failed = session(goldens, "failed")
    failed.judge(PLANTED, ImageOutcome(PLANTED, (current, current)))
    assert failed.approve().lines == (
        "_approval.json: speed baseline of profile release kept as it was (--ocr-regen failed is a partial "
        "regeneration; only --ocr-regen all rewrites it)",
        "_approval.json: BN reference kept as it was (--ocr-regen failed is a partial regeneration; only "
        "--ocr-regen all rewrites it)")
    assert failed.approve().incomplete() is None  # a partial regeneration is not an incomplete approval
    part = session(goldens, "all")
    part.judge(PLANTED, ImageOutcome(PLANTED, (current, current)))
    assert all("--ocr-regen all ran 1 of the 2 selected images in this process" in line
               for line in part.approve().lines)
    assert (goldens / "default" / "_approval.json").read_bytes() == before


# --- real models: a planted golden change, regeneration, xdist ----------------------------------------------------

def planted_goldens(tmp_path: Path) -> tuple[Path, str, str]:
    """A copy of the committed goldens with one digit changed in one line of PLANTED's golden."""
    goldens, _, original, edited = plant_golden_digit(tmp_path, PLANTED)
    return goldens, original, edited


@pytest.mark.slow
def test_planted_golden_fails_that_image_then_regen_rewrites_it_and_xdist_passes(
        tmp_path: Path, offline_env: dict[str, str]) -> None:
    goldens, original, edited = planted_goldens(tmp_path)
    planted = goldens / "default" / f"{PLANTED}.json"
    clean_before = (goldens / "default" / f"{CLEAN}.json").read_bytes()
    approval_before = (goldens / "default" / "_approval.json").read_bytes()
    ids = ["--ocr-id", PLANTED, "--ocr-id", CLEAN]
    common = ["--ocr-golden-dir", str(goldens), "-p", "no:xdist"]

    # 1. Exactly the planted image fails; the message has both texts, the changed line and the refresh command.
    run = inner_pytest(tmp_path, *common, *ids, env=offline_env)
    assert run.returncode == 1, run.output[-3000:]
    assert {i: c.passed for i, c in run.cases.items()} == {PLANTED: False, CLEAN: True}
    message = run.cases[PLANTED].message
    assert f"{PLANTED}: FAIL" in message and repr(edited) in message and repr(original) in message
    assert f"ocr-harness golden refresh --profile release --golden-dir {goldens} --id {PLANTED} --failed" in message
    assert "-> " in message and "line " in message  # a LineDiff.describe() line
    assert edited in planted.read_text(encoding="utf-8")  # nothing written without --ocr-regen

    # 2. --ocr-regen failed: the failing test still fails in this run; its golden is rewritten, the other kept.
    run = inner_pytest(tmp_path, *common, *ids, "--ocr-regen", "failed", env=offline_env)
    assert run.returncode == 1, run.output[-3000:]
    assert {i: c.passed for i, c in run.cases.items()} == {PLANTED: False, CLEAN: True}
    assert "golden regenerated (changed)" in run.cases[PLANTED].message
    text = planted.read_text(encoding="utf-8")
    assert edited not in text and json.dumps(original, ensure_ascii=False) in text
    assert (goldens / "default" / f"{CLEAN}.json").read_bytes() == clean_before
    assert (goldens / "default" / "_approval.json").read_bytes() == approval_before  # a partial regeneration
    assert "_approval.json: BN reference kept as it was (--ocr-regen failed is a partial" in run.output

    # 3. The regenerated copy passes, under `-n 2`: one persistent worker per xdist process, one model load each.
    run = inner_pytest(tmp_path, "--ocr-golden-dir", str(goldens), "-p", "xdist", "-n", "2", *ids,
                       "--ocr-id", THIRD, env=offline_env)
    assert run.returncode == 0, run.output[-3000:]
    assert sorted(run.cases) == sorted([PLANTED, CLEAN, THIRD]) and all(c.passed for c in run.cases.values())
    assert {c.properties["ocr_model_loads"] for c in run.cases.values()} == {"1"}
    assert len({c.properties["ocr_worker_pid"] for c in run.cases.values()}) == 2

    # 4. --ocr-regen all over the whole selection is a full approval: the approval record is rewritten through the
    # CLI's code (speed baseline of the profile, BN reference on the selection's slips); other sections are kept.
    # A BN reference needs at least 4 slips: the selection here is four.
    four = (PLANTED, CLEAN, THIRD, FOURTH)
    before = load_approval(goldens / "default")
    assert before is not None
    run = inner_pytest(tmp_path, *common, *[a for i in four for a in ("--ocr-id", i)], "--ocr-regen", "all",
                       env=offline_env)
    assert run.returncode == 0, run.output[-3000:]
    assert "ocr-harness: _approval.json: speed baseline of profile release: 4 images" in run.output, run.output[-3000:]
    assert "ocr-harness: _approval.json: BN reference: det 3 layers / 4 batches, rec 6 layers" in run.output, \
        run.output[-3000:]
    approval = load_approval(goldens / "default")
    assert approval is not None and approval.bn is not None and approval.bn.images == four
    # The release baseline of this runner type is the new one (on the four slips); other runner types' are kept.
    made = {b.runner: b for b in approval.speed["release"]}
    kept = {b.runner: b for b in before.speed["release"]}
    new = [r for r, b in made.items() if set(b.images) == set(four)]
    assert len(new) == 1 and all(made[r] == kept[r] for r in made if r not in new), sorted(made)
    assert approval.speed["default"] == before.speed["default"]
