"""The `speed` check (harness.checks.speed, harness.execution.normaliser, harness.golden.approval): latency and peak
memory against an approved baseline, normalised by a CPU yardstick timed in the same worker.

End to end, with real models: one baseline made in this module (a temp golden set, four smoke slips), then each
planted fault against it (oneDNN off, an engine that predicts twice, an engine that keeps 100 MB per call) and
two clean runs that must stay quiet (one with a CPU-bound process competing for a core). No time is asserted
here: only ratios the check itself measured in one run against the baseline; the false-alarm study over many
runs is a benchmark (benchmarks/test_bench_speed.py).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from builders import Value, image_outcome, ocr_result, profile_toml, write_profiles
from conftest import ROOT, CliRun, run_cli

from harness.checks.registry import catalogue
from harness.checks.speed import path_cost, speed_check
from harness.backends import resolve_engine, settings_rules
from harness.config import load_profile
from harness.corpus.loader import load_corpus
from harness.environment import settings_hash
from harness.golden.approval import ImageSpeed, SpeedBaseline, load_approval
from harness.model.inference import ImageOutcome

TESTS = Path(__file__).resolve().parents[1]
IDS = ("slip_0000", "slip_0001", "slip_0002", "slip_0004")


def write_config(root: Path, factory: str | None = None, **checks: Value) -> Path:
    engine: dict[str, Value] = {"cpu_threads": 1, **({"factory": factory} if factory else {})}
    return write_profiles(root, profile_toml(golden_dir=root / "golden", golden_set="default", top={"workers": 2},
                                             engine=engine, checks={"repeats": 2, "speed": True, **checks}))


def cli(root: Path, *args: str, out: str = "out") -> CliRun:
    ids = [a for i in IDS for a in ("--id", i)]
    return run_cli([*args, "--config", str(root / "harness.toml"), "--profile", "t", *ids, "--out", str(root / out)],
                   env={"PYTHONPATH": str(TESTS)}, out=root / out)


@pytest.fixture(scope="module")
def approved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A golden set copy whose _approval.json holds the speed baseline of profile t, made here, now."""
    root = tmp_path_factory.mktemp("speed")
    shutil.copytree(ROOT / "golden", root / "golden")
    (root / "golden" / "default" / "_approval.json").unlink(missing_ok=True)
    write_config(root)
    made = cli(root, "speed", "baseline")
    assert made.returncode == 0, made.stderr[-2000:]
    assert "speed baseline of profile t: 4 images" in made.stdout
    return root


def fresh(approved: Path, tmp_path: Path, factory: str | None = None, **checks: Value) -> Path:
    """A copy of the approved set with its own config, so tests do not share output folders."""
    shutil.copytree(approved / "golden", tmp_path / "golden")
    write_config(tmp_path, factory, **checks)
    return tmp_path


def speed_of(run: CliRun) -> dict[str, object]:
    return run.report["checks"]["speed"]


def others_pass(run: CliRun) -> None:
    failed = [n for n, c in run.report["checks"].items() if n != "speed" and not c["passed"]]
    assert failed == [], [run.report["checks"][n]["summary"] for n in failed]


@pytest.mark.slow
def test_the_baseline_records_every_image_its_yardstick_and_memory(approved: Path) -> None:
    approval = load_approval(approved / "golden" / "default")
    assert approval is not None
    (base,) = approval.speed["t"]  # one runner type: this machine's
    assert sorted(base.images) == sorted(IDS) and base.selection == len(IDS)
    assert all(s.cost_s > 0 and s.reference_s > 0 and s.latency_s > 0 for s in base.images.values())
    assert base.clock == "cpu"
    assert base.peak_rss_kib is not None and base.peak_rss_kib > 100 * 1024 and base.served_at_peak >= 1
    assert base.stack["onednn"] is True and base.stack["workers"] == 2 and "yardstick" in base.stack


@pytest.mark.slow
@pytest.mark.numerics
def test_a_clean_run_is_quiet(approved: Path, tmp_path: Path) -> None:
    run = cli(fresh(approved, tmp_path), "run")
    assert run.returncode == 0, speed_of(run)["summary"]
    check = speed_of(run)
    assert check["passed"] and check["judged"] == len(IDS) and not check["skipped"]
    assert check["details"]["stack_differences"] == []


def next_to_hogs(hogs: int, *args: str, root: Path) -> CliRun:
    """`cli(root, *args)` while `hogs` CPU-bound processes compete for the machine's cores."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
    try:
        return cli(root, *args)
    finally:
        for hog in procs:
            hog.kill()
            hog.wait()


@pytest.mark.slow
def test_a_clean_run_next_to_two_cpu_hogs_is_quiet(approved: Path, tmp_path: Path) -> None:
    run = next_to_hogs(2, "run", root=fresh(approved, tmp_path))
    assert run.returncode == 0, speed_of(run)["summary"]
    assert speed_of(run)["judged"] == len(IDS) and speed_of(run)["passed"]


@pytest.mark.slow
def test_an_engine_that_costs_2x_fails_next_to_two_cpu_hogs(approved: Path, tmp_path: Path) -> None:
    """The same answers at twice the cost, on a machine as busy as the clean run above: the yardstick, timed in
    the same worker, takes the load out and leaves the engine's 2x."""
    run = next_to_hogs(2, "run", root=fresh(approved, tmp_path, "faults:DoublePredictEngine"))
    assert run.returncode == 1, run.stderr[-2000:]
    check = speed_of(run)
    assert not check["passed"] and check["summary"].startswith("SLOWER"), check["summary"]
    assert check["details"]["ratio"]["median"] > 1.5
    others_pass(run)


@pytest.mark.slow
def test_a_baseline_stamped_with_another_cpu_is_not_judged(approved: Path, tmp_path: Path) -> None:
    root = fresh(approved, tmp_path, "faults:DoublePredictEngine")  # 2x: it would fail if it were judged
    path = root / "golden" / "default" / "_approval.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    for baseline in raw["speed"]["t"]:
        baseline["stack"] = {**baseline["stack"], "cpu_model": "Other CPU", "isa": ["avx2", "amx_tile"]}
    path.write_text(json.dumps(raw), encoding="utf-8")
    run = cli(root, "run")
    check = speed_of(run)
    assert run.returncode == 0 and check["skipped"] and check["judged"] == 0, check["summary"]
    assert check["summary"].startswith("not judged: baseline made on Other CPU [avx2 amx_tile]; this runner is ")
    assert check["summary"].endswith("approve one on this runner type with `ocr-harness speed baseline --profile t`")
    write_config(root, "faults:DoublePredictEngine", speed_require_baseline=True)
    required = cli(root, "run", out="out2")
    assert required.returncode == 1 and not speed_of(required)["passed"]


@pytest.mark.slow
def test_onednn_off_fails_naming_the_ratio_and_the_stack_key(approved: Path, tmp_path: Path) -> None:
    run = cli(fresh(approved, tmp_path), "run", "--no-onednn")
    assert run.returncode == 1, run.stderr[-2000:]
    check = speed_of(run)
    assert not check["passed"] and check["summary"].startswith("SLOWER: median image ")
    assert check["details"]["ratio"]["median"] > 1.5
    assert "onednn: True -> False" in check["summary"]
    assert any(d["key"] == "onednn" and (d["golden"], d["current"]) == (True, False)
               for d in check["details"]["stack_differences"])
    others_pass(run)  # it reads the same: only speed sees it


@pytest.mark.slow
@pytest.mark.numerics
def test_an_engine_that_predicts_twice_fails(approved: Path, tmp_path: Path) -> None:
    run = cli(fresh(approved, tmp_path, "faults:DoublePredictEngine"), "run")
    assert run.returncode == 1, run.stderr[-2000:]
    check = speed_of(run)
    assert not check["passed"] and "SLOWER" in check["summary"], check["summary"]
    assert check["details"]["ratio"]["median"] > 1.5
    others_pass(run)


@pytest.mark.slow
def test_an_engine_that_keeps_100_mb_per_call_fails_memory(approved: Path, tmp_path: Path) -> None:
    # Three predict calls per image: 600 MB kept by the time a worker has served the baseline's two images.
    run = cli(fresh(approved, tmp_path, "faults:HoardingEngine"), "run", "--repeats", "3")
    assert run.returncode == 1, run.stderr[-2000:]
    check = speed_of(run)
    assert not check["passed"] and "MORE MEMORY" in check["summary"], check["summary"]
    assert check["details"]["memory"]["ratio"] > 1.3
    others_pass(run)


@pytest.mark.slow
def test_no_baseline_is_not_judged_and_never_a_pass(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "golden", tmp_path / "golden")
    (tmp_path / "golden" / "default" / "_approval.json").unlink(missing_ok=True)
    write_config(tmp_path)
    run = cli(tmp_path, "run")
    check = speed_of(run)
    assert run.returncode == 0 and check["skipped"] and check["judged"] == 0
    assert check["summary"].startswith("not judged: no baseline (golden set 'default' has no _approval.json")
    write_config(tmp_path, speed_require_baseline=True)
    required = cli(tmp_path, "run", out="out2")
    assert required.returncode == 1 and not speed_of(required)["passed"]


# --- the verdict itself, on measured numbers (fast) ------------------------------------------------------------

def outcome(image_id: str, cost: float, reference: float, peak_kib: int = 800_000, served: int = 1) -> ImageOutcome:
    """A warm image's measurements: two repeats at `cost` (the second 1% dearer), the yardstick at `reference`, the
    worker's peak RSS after `served` images; what it read does not matter here (no lines)."""
    read = image_outcome(ocr_result(image_id=image_id, size=(10, 10)), predict_s=(cost, cost))
    return dataclasses.replace(read, cost_s=(cost, cost * 1.01), reference_s=reference, peak_rss_kib=peak_kib,
                               worker_pid=1, served=served)


BASE = SpeedBaseline("2026-01-01T00:00:00Z", {"onednn": True}, 3, "cpu",
                     {i: ImageSpeed(1.0 + n, 0.01, 1.0 + n) for n, i in enumerate(("a", "b", "c"))}, 800_000, 3)


def judge(outcomes: list[ImageOutcome], baseline: SpeedBaseline | None = BASE) -> tuple[bool, dict[str, object], str]:
    r = speed_check({o.image_id: o for o in outcomes}, () if baseline is None else (baseline,), {"onednn": True},
                    max_ratio=1.5,
                    memory_max_ratio=1.3, require_baseline=False, no_baseline_why="none here")
    return r.passed, r.details, r.summary


@pytest.mark.parametrize(("machine_speed", "engine_slowdown", "passes"), [
    (1.0, 1.0, True), (2.5, 1.0, True), (0.5, 1.0, True),  # a slower or faster machine moves both: quiet
    (1.0, 1.4, True), (1.0, 1.6, False), (2.0, 2.0, False),  # only the engine got slower: caught
])
def test_the_ratio_cancels_the_machine_and_keeps_the_engine(machine_speed: float, engine_slowdown: float,
                                                           passes: bool) -> None:
    ok, details, _ = judge([outcome(i, (1.0 + n) * machine_speed * engine_slowdown, 0.01 * machine_speed)
                            for n, i in enumerate(("a", "b", "c"))])
    assert ok is passes
    assert details["ratio"]["median"] == pytest.approx(engine_slowdown * 1.005)


def test_only_images_both_runs_measured_are_judged() -> None:
    ok, details, _ = judge([outcome("a", 1.0, 0.01), outcome("zz", 100.0, 0.01)])
    assert ok and details["judged_images"] == 1
    ok, _, summary = judge([outcome("zz", 1.0, 0.01)])
    assert not ok and summary.startswith("judged nothing")


def test_a_larger_selection_is_judged_at_the_baselines_load() -> None:
    """The baseline's busiest worker had served 3 images; peaks read after more are not held against it."""
    grown = [outcome("a", 1.0, 0.01, 820_000, 1), outcome("b", 2.0, 0.01, 830_000, 3),
             outcome("c", 3.0, 0.01, 1_200_000, 40)]  # the allocator grew on 40 images
    ok, details, _ = judge(grown)
    assert ok and details["memory"]["served"] == 3 and details["memory"]["ratio"] == pytest.approx(830 / 800)
    leaking = [outcome("a", 1.0, 0.01, 820_000, 1), outcome("b", 2.0, 0.01, 1_100_000, 3)]
    ok, _, summary = judge(leaking)
    assert not ok and summary.startswith("MORE MEMORY")


def test_a_baseline_from_another_cpu_is_not_judged_and_says_how_to_approve_one_here() -> None:
    """A 2x regression on an AVX2 runner read 1.2-1.3x against a baseline made on an AMX CPU (oneDNN and the
    yardstick gain differently from the ISA): a baseline holds only for the runner type that made it."""
    flags = ["avx2", "avx512f", "avx512_bf16"]
    amx = {"onednn": True, "cpu_model": "Intel Xeon", "isa": [*flags, "amx_tile"]}
    base = dataclasses.replace(BASE, stack=amx)
    here = {"onednn": True, "cpu_model": "AMD EPYC", "isa": ["avx2"]}
    slow = [outcome(i, (1.0 + n) * 2, 0.01) for n, i in enumerate(("a", "b", "c"))]  # 2x: would fail if judged
    r = speed_check({o.image_id: o for o in slow}, (base,), here, max_ratio=1.5, memory_max_ratio=1.3,
                    require_baseline=False, no_baseline_why="", approve_hint="`ocr-harness speed baseline --profile t`")
    assert r.skipped and r.judged == 0
    assert r.summary == ("not judged: baseline made on Intel Xeon [avx2 avx512f avx512_bf16 amx_tile]; this runner "
                         "is AMD EPYC [avx2]: approve one on this runner type with `ocr-harness speed baseline "
                         "--profile t`")
    required = speed_check({o.image_id: o for o in slow}, (base,), here, max_ratio=1.5, memory_max_ratio=1.3,
                           require_baseline=True, no_baseline_why="")
    assert not required.passed and not required.skipped  # never a pass
    # With this runner's baseline next to it, that one judges: the 2x engine fails, the other CPU's is ignored.
    mine = dataclasses.replace(BASE, stack=here)
    judged = speed_check({o.image_id: o for o in slow}, (base, mine), here, max_ratio=1.5, memory_max_ratio=1.3,
                         require_baseline=False, no_baseline_why="")
    assert not judged.passed and judged.summary.startswith("SLOWER") and judged.judged == 3
    # Same CPU model name, other ISA flags (an AVX-512 EPYC and an AVX2-only one): another runner type.
    assert speed_check({o.image_id: o for o in slow}, (dataclasses.replace(BASE, stack={**here, "isa": flags}),),
                       here, max_ratio=1.5, memory_max_ratio=1.3, require_baseline=False, no_baseline_why="").skipped


def test_baselines_per_runner_type_round_trip_and_an_old_single_baseline_reads(tmp_path: Path) -> None:
    from harness.golden.approval import Approval, write_approval
    from harness.util.errors import UserError

    a = dataclasses.replace(BASE, stack={"cpu_model": "A", "isa": ["avx2"]})
    b = dataclasses.replace(BASE, stack={"cpu_model": "B", "isa": ["avx2", "amx_tile"]})
    a2 = dataclasses.replace(a, approved_at="2026-02-02T00:00:00Z")
    approval = Approval("default").with_speed("t", a).with_speed("t", b).with_speed("t", a2)
    assert [x.approved_at for x in approval.speed["t"]] == [a2.approved_at, b.approved_at]  # A replaced, B kept
    write_approval(tmp_path, approval)
    loaded = load_approval(tmp_path)
    assert loaded is not None and loaded.speed == approval.speed
    assert loaded.speed_for("t", {"cpu_model": "B", "isa": ["avx2", "amx_tile"]}) == b
    assert loaded.speed_for("t", {"cpu_model": "C", "isa": ["avx2"]}) is None
    raw = json.loads((tmp_path / "_approval.json").read_text(encoding="utf-8"))
    raw["speed"]["t"] = raw["speed"]["t"][0]  # a record written before baselines were kept per runner type
    (tmp_path / "_approval.json").write_text(json.dumps(raw), encoding="utf-8")
    old = load_approval(tmp_path)
    assert old is not None and old.speed["t"] == (a2,)
    raw["speed"]["t"] = [raw["speed"]["t"], raw["speed"]["t"]]
    (tmp_path / "_approval.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(UserError, match=r"speed\.t: two baselines for one runner type \(A \[avx2\]\)"):
        load_approval(tmp_path)


def test_a_baseline_of_another_clock_is_not_compared() -> None:
    wall = SpeedBaseline(BASE.approved_at, BASE.stack, 3, "wall", BASE.images, 800_000, 3)
    ok, _, summary = judge([outcome("a", 1.0, 0.01)], baseline=wall)
    assert not ok and summary.startswith("not comparable: this run measured cpu seconds, the baseline wall")


def test_a_workers_first_cold_call_is_left_out() -> None:
    cold = dataclasses.replace(outcome("a", 1.0, 0.01), cost_s=(3.0, 1.0, 1.0), first_call=True)
    ok, details, _ = judge([cold, outcome("b", 2.0, 0.01)])
    assert ok and details["judged_images"] == 2 and details["ratio"]["median"] == pytest.approx(1.0, abs=0.01)
    once = dataclasses.replace(outcome("a", 1.0, 0.01), cost_s=(3.0,), predict_s=(3.0,), first_call=True)
    ok, details, summary = judge([once])
    assert summary.startswith("not judged: every image ran once, as its worker's first (cold) call")


def test_without_a_baseline_nothing_passes_by_accident() -> None:
    ok, details, summary = judge([outcome("a", 1.0, 0.01)], baseline=None)
    assert ok and summary == "not judged: no baseline (none here)" and details["baseline"] is None


def test_the_bundled_profiles_carry_baselines_of_their_own_selection() -> None:
    """docs/speed.md: each bundled golden set approves every bundled profile of it that runs the engine (default,
    release, nightly, onnx on the PP-OCRv4 pack; release-v5, nightly-v5 on PP-OCRv5), each over its own selection
    and with its current engine settings, on every runner type that approved it; the bundled sets have none for the
    service profile (a service's wall seconds mean something on its own machine only: approve it in your own
    golden set there)."""
    config = ROOT / "harness.toml"
    judged = []
    for name in tomllib.loads(config.read_text(encoding="utf-8"))["profiles"]:
        profile, base = load_profile(config, name, catalogue())
        approval = load_approval(ROOT / "golden" / profile.golden_name)
        assert approval is not None, f"profile {name}: golden/{profile.golden_name} has no _approval.json"
        baselines = approval.speed.get(name, ())
        if profile.engine.backend == "http":  # a service: its cost is wall seconds on its own machine
            assert baselines == (), name
            continue
        assert baselines, f"profile {name}: no speed baseline in golden/{profile.golden_name}/_approval.json"
        selected = {it.id for it in load_corpus(base / profile.corpus, subset=profile.subset).items}
        # Made with the profile's engine as it is now (a settings change makes it stale: re-approve); the names and
        # rec input shape are the model dirs' own, as every run resolves them.
        engine, _ = resolve_engine(profile.engine, base, profile.model_cache)
        for baseline in baselines:  # one per runner type that approved it
            where = f"{name} on {baseline.runner}"
            assert set(baseline.images) == selected and baseline.selection == len(selected), where
            assert baseline.clock == "cpu" and baseline.peak_rss_kib and baseline.served_at_peak > 0, where
            assert baseline.stack["engine_settings_hash"] == settings_hash(engine.hash_dict(settings_rules())), where
            assert baseline.stack["workers"] == profile.workers, where
        judged.append(name)
    assert sorted(judged) == ["default", "nightly", "nightly-v5", "onnx", "release", "release-v5"]


def test_path_cost_is_the_other_paths_normalised_cost_over_the_reference_image_by_image() -> None:
    """The bn-unfused variation's cost: per image (cost / yardstick) of the other path over the reference's, so
    a machine that slowed down between the two passes (yardstick x2) does not show; only images both timed warm."""
    fused = {i: outcome(i, 1.0 + n, 0.01) for n, i in enumerate(("a", "b", "c"))}
    unfused = {i: outcome(i, (1.0 + n) * 1.2 * 2, 0.02) for n, i in enumerate(("a", "b"))}  # c: not on this path
    unfused["cold"] = dataclasses.replace(outcome("cold", 9.0, 0.01), cost_s=(9.0,), first_call=True)
    cost = path_cost({**fused, "cold": outcome("cold", 1.0, 0.01)}, unfused)
    assert cost["images"] == 2 and set(cost["per_image"]) == {"a", "b"}
    assert cost["median"] == pytest.approx(1.2) and cost["p90"] == pytest.approx(1.2)
    empty = path_cost(fused, {"cold": unfused["cold"]})
    assert (empty["images"], empty["median"], empty["p90"]) == (0, None, None)
