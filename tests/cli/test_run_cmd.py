"""End-to-end through the CLI: real models, real images, planted faults. Each run selects few images to stay fast."""

from __future__ import annotations

import json
import statistics
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import pytest

from conftest import plant_golden_digit, CORPUS, ROOT, CliRun, run_cli

from harness.checks.variations import ISA_PATHS, isa_paths
from harness.checks.registry import catalogue
from harness.config import load_profile
from harness.environment import cpu_info, isa_hold

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parents[1]


def fault_config(tmp_path: Path, factory: str | None = None, tolerances: dict[str, float] | None = None,
                 **checks: object) -> Path:
    lines = ["[profiles.t]", f'corpus = "{CORPUS.as_posix()}"', f'golden_dir = "{(ROOT / "golden").as_posix()}"',
             'golden_set = "default"', "[profiles.t.engine]"]
    if factory:
        lines.append(f'factory = "{factory}"')
    lines.append("[profiles.t.checks]")
    lines += [f"{k} = {json.dumps(v)}" for k, v in checks.items()]
    if tolerances:
        lines.append("[profiles.t.tolerances]")
        lines += [f"{k} = {v!r}" for k, v in tolerances.items()]
    path = tmp_path / "harness.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_t(tmp_path: Path, config: Path, *args: str, env: dict[str, str] | None = None) -> CliRun:
    out = tmp_path / "out"
    full_env = {"PYTHONPATH": str(TESTS), **(env or {})}
    return run_cli(["run", "--config", str(config), "--profile", "t", "--out", str(out), *args], env=full_env, out=out)


# --- the release run on the smoke subset (shared fixture), offline --------------------------------------------

def test_release_run_passes_offline_and_writes_every_report(smoke_run: CliRun, offline_env: dict[str, str]) -> None:
    assert smoke_run.returncode == 0, smoke_run.stderr[-2000:]
    attempts = Path(offline_env["OCR_HARNESS_TEST_NET_LOG"]).read_text()
    assert attempts == "", f"network was attempted during the run:\n{attempts}"
    report = smoke_run.report
    assert {"passed", "checks", "images", "environment"} <= report.keys()
    assert report["passed"] is True and report["schema"] == "ocr-harness/report/1"
    assert len(report["images"]) == 12
    for name in ("inference", "repeat", "mutation", "golden", "audit"):
        check = report["checks"][name]
        assert check["passed"] and not check["skipped"], (name, check["summary"])
    for name in ("junit.xml", "summary.md", "report.html", "results.jsonl", "report.json"):
        assert (smoke_run.out / name).stat().st_size > 0
    ET.parse(smoke_run.out / "junit.xml")
    assert smoke_run.stdout.startswith("PASS")


def test_known_image_reads_known_text(smoke_run: CliRun) -> None:
    results = {r["id"]: r for r in smoke_run.results()}
    texts = [line["text"] for line in results["slip_0000"]["result"]["lines"]]
    assert "长江联合银行" in texts
    assert "601743707102007566" in texts  # payee account, as the manifest says
    assert any("43921488.92" in t for t in texts)  # the amount


def test_results_are_canonical_and_reproducible_across_processes(smoke_run: CliRun, tmp_path: Path) -> None:
    """Same input -> byte-identical canonical JSON, in a fresh process (plus the cross-process check)."""
    res = run_cli(["run", "--profile", "release", "--id", "slip_0003", "--id", "slip_0007", "--repeats", "2",
                   "--cross-process", "--out", str(tmp_path)], out=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.report["checks"]["cross_process"]["passed"]
    assert not res.report["checks"]["cross_process"]["skipped"]
    before = {r["id"]: json.dumps(r, sort_keys=True) for r in smoke_run.results()}
    for r in res.results():
        assert json.dumps(r, sort_keys=True) == before[r["id"]]


# --- goldens ---------------------------------------------------------------------------------------------------

@pytest.mark.numerics
def test_one_changed_golden_character_fails_and_names_line(tmp_path: Path) -> None:
    goldens, index, original, edited = plant_golden_digit(tmp_path, "slip_0002")
    path = goldens / "default" / "slip_0002.json"
    out = tmp_path / "out"
    args = ["run", "--profile", "release", "--id", "slip_0002", "--repeats", "1", "--golden-dir", str(goldens),
            "--out", str(out)]
    res = run_cli(args, out=out)
    assert res.returncode == 1, res.stderr[-2000:]
    golden = res.report["checks"]["golden"]
    assert not golden["passed"] and golden["failed_images"] == ["slip_0002"]
    image = next(i for i in res.report["images"] if i["id"] == "slip_0002")
    lines = image["checks"]["golden"]["details"]["lines"]
    changed = [d for d in lines if d["kind"] == "changed"]
    assert [(d["golden_index"], d["golden_text"], d["current_text"]) for d in changed] == [(index, edited, original)]
    summary = (out / "summary.md").read_text(encoding="utf-8").replace("<b>", "").replace("</b>", "")
    assert "slip_0002" in summary and edited in summary and original in summary
    assert "slip_0002" in (out / "junit.xml").read_text(encoding="utf-8")
    # Reverting the golden makes the same run pass.
    shutil.copyfile(ROOT / "golden" / "default" / "slip_0002.json", path)
    assert run_cli(args, out=out).returncode == 0


def test_corrupt_golden_is_a_usage_error_naming_file_and_position(tmp_path: Path) -> None:
    goldens = tmp_path / "golden"
    shutil.copytree(ROOT / "golden", goldens)
    path = goldens / "default" / "slip_0001.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"lines": [', '"lines": [,', 1), encoding="utf-8")
    res = run_cli(["run", "--profile", "release", "--id", "slip_0001", "--golden-dir", str(goldens),
                   "--out", str(tmp_path / "out")])
    assert res.returncode == 2
    assert "slip_0001.json" in res.stderr and "line" in res.stderr and "Traceback" not in res.stderr


def test_missing_goldens_under_warn_are_counted_never_all_clean(tmp_path: Path) -> None:
    goldens = tmp_path / "golden"
    shutil.copytree(ROOT / "golden", goldens)
    (goldens / "default" / "slip_0005.json").unlink()
    config = fault_config(tmp_path, None, repeats=1, audit=False, missing_golden="warn")
    config.write_text(config.read_text().replace(f'golden_dir = "{(ROOT / "golden").as_posix()}"',
                                                 f'golden_dir = "{goldens.as_posix()}"'))
    res = run_t(tmp_path, config, "--id", "slip_0004", "--id", "slip_0005")
    assert res.returncode == 0, res.stderr[-2000:]
    golden = res.report["checks"]["golden"]
    assert golden["passed"] and golden["judged"] == 1
    assert golden["summary"].startswith("1 of 2 images judged, all clean; 1 not judged (no golden"), golden["summary"]
    golden_row = next(line for line in (tmp_path / "out" / "summary.md").read_text(encoding="utf-8").splitlines()
                      if line.startswith("| `golden`"))
    assert "1 not judged" in golden_row and "all 2 images clean" not in golden_row
    # Nothing had a golden: the check judged nothing and fails.
    res = run_t(tmp_path, config, "--id", "slip_0005")
    assert res.returncode == 1
    assert res.report["checks"]["golden"]["summary"].startswith("judged nothing"), res.report["checks"]["golden"]


# --- planted engine faults (real engine underneath, loaded in the worker through engine.factory) ------------

def test_bs1_crash_fails_the_golden_check_when_goldens_use_bs1(tmp_path: Path) -> None:
    # The nightly's measured batch envelope, so the bs1 reading of slip_0004 stays within its profile golden.
    config = fault_config(tmp_path, "faults:Bs1AbortingEngine", tolerances={"text_max_cer": 0.35, "score_abs": 0.15},
                          repeats=1, audit=False, golden_path="bs1")
    res = run_t(tmp_path, config, "--id", "slip_0004", "--id", "slip_0005", env={"FAULT_IDS": "slip_0005"})
    assert res.returncode == 1, res.stderr[-2000:]
    assert res.report["checks"]["inference"]["passed"]  # the profile path ran every image
    golden = res.report["checks"]["golden"]
    assert golden["failed_images"] == ["slip_0005"] and golden["judged"] == 1
    images = {i["id"]: i for i in res.report["images"]}
    assert "the bs1 path failed to run: worker crashed with SIGABRT" in images["slip_0005"]["checks"]["golden"]["summary"]
    assert images["slip_0004"]["checks"]["golden"]["passed"]


def test_dropped_decimal_point_is_critical_under_a_relaxed_text_tolerance(tmp_path: Path) -> None:
    """'¥6.41' -> '¥641' is CER 0.2: inside text_max_cer 0.35, yet a lost amount fails whatever the tolerance."""
    config = fault_config(tmp_path, "faults:DecimalDroppingEngine", tolerances={"text_max_cer": 0.35}, repeats=1,
                          audit=False)
    ids = ["slip_0001", "slip_0003"]
    res = run_t(tmp_path, config, *(a for i in ids for a in ("--id", i)))
    assert res.returncode == 1, res.stderr[-2000:]
    golden = res.report["checks"]["golden"]
    assert golden["failed_images"] == ids
    images = {i["id"]: i for i in res.report["images"]}
    for image_id, before, after in (("slip_0001", "￥82775.49", "￥8277,549"), ("slip_0003", "￥6.41", "￥641")):
        detail = images[image_id]["checks"]["golden"]
        assert detail["summary"].startswith(f"{image_id}: FAIL CRITICAL amount"), detail["summary"]
        (line,) = [d for d in detail["details"]["lines"] if d["critical"]]
        assert (line["golden_text"], line["current_text"], line["key_fields"]) == (before, after, ["amount"])
        assert line["cer"] <= 0.35  # the text tolerance alone would have let it through
    summary = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert "CRITICAL" in summary and "￥641" in summary and "slip_0003" in summary
    # Clean engine, same relaxed tolerance: quiet.
    clean = fault_config(tmp_path, None, tolerances={"text_max_cer": 0.35}, repeats=1, audit=False)
    assert run_t(tmp_path, clean, *(a for i in ids for a in ("--id", i))).returncode == 0


def test_worker_abort_fails_that_image_and_the_run_goes_on(tmp_path: Path) -> None:
    config = fault_config(tmp_path, "faults:AbortingEngine", repeats=1)
    res = run_t(tmp_path, config, "--id", "slip_0004", "--id", "slip_0005", "--id", "slip_0006",
                env={"FAULT_IDS": "slip_0005"})
    assert res.returncode == 1, res.stderr[-2000:]
    images = {i["id"]: i for i in res.report["images"]}
    assert "SIGABRT" in images["slip_0005"]["error"] and "slip_0005" in images["slip_0005"]["error"]
    assert images["slip_0004"]["error"] is None and images["slip_0006"]["error"] is None
    assert res.report["checks"]["inference"]["failed_images"] == ["slip_0005"]
    # The others still match their goldens; the one that did not run cannot have met its golden.
    assert res.report["checks"]["golden"]["failed_images"] == ["slip_0005"]
    assert images["slip_0004"]["checks"]["golden"]["passed"] and images["slip_0006"]["checks"]["golden"]["passed"]


def test_model_load_failure_is_a_reported_failure_with_a_report(tmp_path: Path) -> None:
    config = fault_config(tmp_path, "faults:failing_engine", repeats=1)
    res = run_t(tmp_path, config, "--id", "slip_0004", "--id", "slip_0005")
    assert res.returncode == 1, res.stderr[-2000:]
    for image in res.report["images"]:
        assert "model load failed" in image["error"] and "ConvertPirAttribute2RuntimeAttribute" in image["error"]
    assert res.report["checks"]["inference"]["failed_images"] == ["slip_0004", "slip_0005"]


@pytest.mark.parametrize("field", ["score", "poly"])
def test_perturbed_repeat_is_caught_and_named(tmp_path: Path, field: str) -> None:
    config = fault_config(tmp_path, "faults:PerturbingEngine", repeats=3)
    res = run_t(tmp_path, config, "--id", "slip_0008", "--id", "slip_0009",
                env={"FAULT_IDS": "slip_0009", "FAULT_FIELD": field})
    assert res.returncode == 1
    repeat = res.report["checks"]["repeat"]
    assert repeat["failed_images"] == ["slip_0009"]
    image = next(i for i in res.report["images"] if i["id"] == "slip_0009")
    div = image["checks"]["repeat"]["details"]["first_divergence"]
    assert (div["repeat"], div["line"], div["field"]) == (2, 0, field)
    assert div["delta"] > 0


def test_state_that_outlives_the_process_is_caught_by_cross_process(tmp_path: Path) -> None:
    config = fault_config(tmp_path, "faults:ProcessStateEngine", repeats=2, cross_process=True, audit=False,
                          goldens=False)
    res = run_t(tmp_path, config, "--id", "slip_0008", env={"FAULT_STATE": str(tmp_path / "state")})
    assert res.returncode == 1, res.stderr[-2000:]
    checks = res.report["checks"]
    assert checks["repeat"]["passed"] and checks["repeat"]["judged"] == 1  # identical inside one process
    assert checks["cross_process"]["failed_images"] == ["slip_0008"]
    div = res.report["images"][0]["checks"]["cross_process"]["details"]["first_divergence"]
    assert (div["line"], div["field"]) == (0, "score") and 0 < div["delta"] < 1e-6


def test_input_mutation_is_caught(tmp_path: Path) -> None:
    config = fault_config(tmp_path, "faults:MutatingEngine", repeats=1)
    res = run_t(tmp_path, config, "--id", "slip_0010")
    assert res.returncode == 1
    assert res.report["checks"]["mutation"]["failed_images"] == ["slip_0010"]


def batch_paths_run(tmp_path: Path, profile: str, ids: list[str]) -> CliRun:
    out = tmp_path / profile
    # --no-speed: one repeat leaves at most one warm call per worker to judge; speed has its own tests.
    args = ["run", "--profile", profile, *(a for i in ids for a in ("--id", i)), "--repeats", "1", "--batch-paths",
            "--no-cross-process", "--no-variations", "--no-probe", "--no-bn-drift", "--no-speed", "--out", str(out)]
    return run_cli(args, out=out)


@pytest.mark.numerics
def test_batch_paths_verdict_is_what_the_data_gives(tmp_path: Path) -> None:
    """Measured (harness.toml, nightly): recognition batch 1 reads some lines differently from batch 6 on every
    slip (spacing inside numbers, scores up to 0.12), within the nightly batch tolerances; several images per
    call give the profile path's bits. The same data under the golden tolerances (release) fails."""
    res = batch_paths_run(tmp_path, "nightly", ["slip_0000", "slip_0001", "slip_0002"])
    check = res.report["checks"]["batch_paths"]
    assert not check["skipped"] and check["passed"], check["summary"]
    assert res.returncode == 0, res.stderr[-2000:]
    paths = check["details"]["paths"]
    assert set(paths) == {"bs1", "3-per-call"}  # compared with the profile path (the goldens' path)
    bs1, multi = paths["bs1"], paths["3-per-call"]
    assert (bs1["identical"], bs1["within"], bs1["beyond"], bs1["failed_to_run"]) == (0, 3, 0, 0)
    assert 0 < bs1["required_tolerances"]["text_max_cer"] <= 0.35 and bs1["required_tolerances"]["score_abs"] > 1e-3
    assert (multi["identical"], multi["within"], multi["beyond"], multi["failed_to_run"]) == (3, 0, 0, 0)

    # Planted: the golden tolerances (exact text) as batch tolerances. The same difference now fails that image.
    strict = batch_paths_run(tmp_path, "release", ["slip_0000"])
    check = strict.report["checks"]["batch_paths"]
    assert not check["passed"] and check["failed_images"] == ["slip_0000"], check["summary"]
    assert strict.returncode == 1, strict.stderr[-2000:]
    paths = check["details"]["paths"]
    assert (paths["bs1"]["beyond"], paths["3-per-call"]["identical"]) == (1, 1)
    assert strict.report["checks"]["golden"]["passed"]  # only the batch-path check failed


# --- bad input -------------------------------------------------------------------------------------------------

def test_bad_image_fails_that_image_only(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copyfile(CORPUS / "images" / "slip_0000.png", corpus / "good.png")
    (corpus / "empty.png").write_bytes(b"")
    (corpus / "text.jpg").write_text("not an image")
    ok = cv2.imread(str(CORPUS / "images" / "slip_0001.png"))
    cv2.imwrite(str(corpus / "gray.png"), cv2.cvtColor(ok, cv2.COLOR_BGR2GRAY))
    out = tmp_path / "out"
    res = run_cli(["run", "--corpus", str(corpus), "--no-goldens", "--repeats", "1",
                   "--out", str(out)], out=out)
    assert res.returncode == 1, res.stderr[-2000:]
    images = {i["id"]: i for i in res.report["images"]}
    assert images["good"]["error"] is None and images["gray"]["error"] is None
    assert "empty.png" in images["empty"]["error"]
    assert "text.jpg" in images["text"]["error"]
    assert len(res.results()) == 4


def test_empty_corpus_and_bad_config_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    res = run_cli(["run", "--corpus", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    bad = tmp_path / "harness.toml"
    bad.write_text("[profiles.t.engine]\ncpu_threads = -3\n")
    res = run_cli(["run", "--config", str(bad), "--profile", "t"])
    assert res.returncode == 2
    assert "profiles.t.engine.cpu_threads: must be >= 1" in res.stderr and "Traceback" not in res.stderr
    res = run_cli(["run", "--no-such-flag"])
    assert res.returncode == 2


def test_doctor_reports_what_decides_reproducibility() -> None:
    res = run_cli(["doctor", "--json"])
    assert res.returncode == 0
    facts = json.loads(res.stdout)
    assert facts["paddle"] == "3.2.2" and facts["paddle_runtime"]["onednn_compiled"] is True
    assert isinstance(facts["isa"], list) and facts["cores"] >= 1
    assert facts["engine"]["cpu_threads"] >= 1


def test_bn_unfused_cost_is_measured_image_by_image_in_the_same_run(tmp_path: Path) -> None:
    """What BN fusion buys: the bn-unfused path's engine cost per yardstick over the main path's, on the same
    images of the same run (one worker: its first image is cold on each path and left out)."""
    ids = ("slip_0000", "slip_0001", "slip_0002")
    config = fault_config(tmp_path, repeats=2, variations=True, variation_threads=[])
    res = run_t(tmp_path, config, *(a for i in ids for a in ("--id", i)), "--no-goldens", "--no-speed")
    check = res.report["checks"]["variations"]
    assert check["passed"] and res.returncode == 0, check["summary"]
    cost = check["details"]["bn_unfused_cost"]
    assert cost["images"] == 2 and set(cost["per_image"]) < set(ids), cost
    assert cost["median"] == statistics.median(cost["per_image"].values()) and cost["median"] > 0
    assert (f"unfused/fused engine cost (det + rec, cost/yardstick) median {cost['median']:.2f}x "
            f"(p90 {cost['p90']:.2f}x, 2 images)") in check["summary"]


def test_variations_verdict_is_what_the_data_gives(tmp_path: Path) -> None:
    """Measured: oneDNN off moves scores by ~3e-6 (up to 2.6e-4 over the 64 slips), inside the golden tolerance
    score_abs = 1e-3; one thread instead of two gives the same bits. Same on AVX-512 and on AVX2
    (ONEDNN_MAX_CPU_ISA=AVX2)."""
    res = run_cli(["run", "--profile", "release", "--id", "slip_0011", "--repeats", "1", "--threads", "2",
                   "--variations", "--no-speed", "--out", str(tmp_path / "clean")], out=tmp_path / "clean")
    check = res.report["checks"]["variations"]
    assert not check["skipped"] and check["passed"], check["summary"]
    assert res.returncode == 0, res.stderr[-2000:]
    paths = check["details"]["paths"]
    release, _ = load_profile(ROOT / "harness.toml", "release", catalogue())
    held, not_held = isa_paths(release.engine, cpu_info()["isa"], isa_hold())
    assert set(paths) == {"onednn-off", "threads-1", "bn-unfused", *held}  # isa-avx2 on a CPU newer than AVX2
    assert check["details"].get("not_judged", {}) == not_held and set(held) | set(not_held) == set(ISA_PATHS)
    for label in held:  # another runner type's numerics, in a fresh worker of this one: within the tolerances
        assert paths[label]["beyond"] == 0 and paths[label]["failed_to_run"] == 0, paths[label]
    assert all(f"{label} not judged: " in check["summary"] for label in not_held)
    off, one = paths["onednn-off"], paths["threads-1"]
    # BN fusion removed (issue 19 Must 6): measured, the fusion passes rewrote det 3 / rec 6 subgraphs on the
    # profile's engine and none without them; the outputs stay within the tolerances.
    assert paths["bn-unfused"]["beyond"] == 0 and paths["bn-unfused"]["failed_to_run"] == 0
    assert check["details"]["bn_fusions"] == {"profile": {"det": 3, "rec": 6}, "bn-unfused": {"det": 0, "rec": 0}}
    # One image in one worker is its first (cold) call: the fusion's cost is said to be unmeasured, not made up.
    assert check["details"]["bn_unfused_cost"]["images"] == 0
    assert "unfused/fused engine cost not measured (no image ran warm on both paths)" in check["summary"]
    assert (off["identical"], off["within"], off["beyond"], off["failed_to_run"]) == (0, 1, 0, 0)
    assert 0 < off["required_tolerances"]["score_abs"] < 1e-3  # same weights: only last-bit movement
    assert off["required_tolerances"]["text_max_cer"] == 0 and off["required_tolerances"]["poly_max_shift_px"] <= 1
    assert (one["identical"], one["within"], one["beyond"], one["failed_to_run"]) == (1, 0, 0, 0)

    # Planted: tolerances that admit no score movement at all. oneDNN off now fails; one thread still passes.
    config = fault_config(tmp_path, tolerances={"score_abs": 0.0}, repeats=1, variations=True)
    strict = run_t(tmp_path, config, "--id", "slip_0011", "--threads", "2", "--no-goldens")
    check = strict.report["checks"]["variations"]
    assert not check["passed"] and check["failed_images"] == ["slip_0011"], check["summary"]
    assert strict.returncode == 1, strict.stderr[-2000:]
    paths = check["details"]["paths"]
    assert (paths["onednn-off"]["beyond"], paths["threads-1"]["identical"]) == (1, 1)
