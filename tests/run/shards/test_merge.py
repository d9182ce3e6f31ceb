"""`report merge`: shard runs combined equal an unsharded run (after the documented volatile fields), and
everything that is not the shards of one run is refused with one line."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import platform
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, plant_golden_digit, CliRun, run_cli

from harness.checks import registry
from harness.checks.determinism import cross_process_check, mutation_check, repeat_check
from harness.checks.golden_check import golden_check
from harness.checks.speed import cost_of_ratios
from harness.checks.batch_paths import compare_paths
from harness.checks.inference_check import inference_check
from harness.cli import main
from harness.config import find_config
from harness.corpus.loader import load_corpus
from harness.environment import node_id
from harness.execution.state import RunPlan, RunState
from harness.model.report import RunReport
from harness.golden.status import golden_status
from harness.golden.store import Golden, GoldenMeta, GoldenStore
from harness.model.corpus import Corpus, CorpusItem, TruthLine
from harness.model.inference import ImageOutcome
from harness.model.modeldirs import ModelDirs
from harness.model.outcome import CheckResult, left_to_first_shard, skipped
from harness.model.results import Line, OcrResult, canonical_json, canonical_line
from harness.model.settings import Profile
from harness.run.shards.merge import MergedRun, ShardRun, merge_shards
from harness.run.pipeline.build_report import build_report
from harness.run.pipeline.job import accuracy_hook
from harness.run.pipeline.plan import shard_items
from harness.util.errors import UserError


def strip_volatile(report: Mapping[str, Any], *, measured: bool = False) -> dict[str, Any]:
    """Drop what harness.run.shards.merge documents as volatile: start, durations, load time, environment, the
    corpus root, and each image's own timings; `measured`: also the latency figures, which two real runs never
    share (the synthetic runs below have fixed times, so there they must be equal)."""
    r = copy.deepcopy(dict(report))
    for key in ("started_at", "duration_s", "environment"):
        r.pop(key)
    r["corpus"].pop("root")
    for key in ("model_load_s", "wall_s", *(("predict_median_s", "predict_p90_s") if measured else ())):
        r["timing"].pop(key)
    if measured:  # phase wall times are measured too; which phases ran, and on how many images, is not
        r["timing"]["phases"] = {k: {**v, "wall_s": None} for k, v in r["timing"]["phases"].items()}
    for image in r["images"]:
        image.pop("timings")
        image.pop("judged_on", None)  # the node and worker process it ran on
    if measured:  # the speed check judges each shard against its own yardstick: measured, never shared
        r["checks"].pop("speed", None)
    return r


def as_written(report: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(canonical_json(report))


# --- the whole path on real slips, through the CLI ----------------------------------------------------------------

SHARD_ENGINE_VARIABLES = ("OCR_HARNESS_SHARD", "CI_NODE_INDEX", "CI_NODE_TOTAL", "JOB_COMPLETION_INDEX",
                          "OCR_HARNESS_SHARD_TOTAL", "SLURM_ARRAY_TASK_ID")
# Each shard of 3 finds its index under another engine's variables, as its job would set them.
THREE_SHARDS = {1: {"JOB_COMPLETION_INDEX": "0", "OCR_HARNESS_SHARD_TOTAL": "3"},  # a Kubernetes Indexed Job's pod
                2: {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"},  # a GitLab `parallel: 3` job
                3: {"OCR_HARNESS_SHARD": "3/3"}}  # the generated GitHub workflow's matrix job
MERGE_IDS = ["slip_0002", "slip_0003", "slip_0006", "slip_0007"]


@pytest.mark.slow
def test_three_shards_merge_to_the_unsharded_report(tmp_path: Path, offline_env: dict[str, str]) -> None:
    # One golden is planted wrong so that a failing check's summary, details and exit code are merged too.
    goldens, _, _, _ = plant_golden_digit(tmp_path, "slip_0003")
    # crc32 of the id: slip_0002 falls in shard 1 of 3, slip_0003/0007 in shard 2, slip_0006 in shard 3.
    args = ["run", "--profile", "release", "--repeats", "1", "--golden-dir", str(goldens),
            *(a for i in MERGE_IDS for a in ("--id", i))]

    def run(name: str, k: int | None = None) -> CliRun:
        out = tmp_path / name
        # Every engine's variables are blanked (a CI job running this test cannot add its own), then the shard's set.
        engine = {**dict.fromkeys(SHARD_ENGINE_VARIABLES, ""), **THREE_SHARDS[k]} if k is not None else {}
        shard = ["--shard", "auto"] if k is not None else []
        return run_cli([*args, *shard, "--out", str(out)], env={**offline_env, **engine}, out=out)

    with ThreadPoolExecutor(4) as pool:  # four independent runs; the machine's cores are shared
        whole, *shards = pool.map(lambda a: run(*a), [("whole",), ("shard-1", 1), ("shard-2", 2), ("shard-3", 3)])
    one, two, three = shards
    assert [r.returncode for r in (whole, one, two, three)] == [1, 0, 1, 0], whole.stderr[-2000:]
    # `--shard auto` under each engine picked what `--shard K/3` picks, and the three slices cover the selection.
    items = load_corpus(CORPUS, subset="smoke", ids=MERGE_IDS).items
    slices = [[i.id for i in shard_items(items, (k, 3))] for k in (1, 2, 3)]
    assert all(slices) and sorted(i for s in slices for i in s) == MERGE_IDS
    assert [[i["id"] for i in r.report["images"]] for r in shards] == slices
    assert [r.report["corpus"]["shard"] for r in shards] == [[1, 3], [2, 3], [3, 3]]
    assert [r.report["corpus"]["shard_source"] for r in shards] == [
        {"engine": "k8s", "variables": THREE_SHARDS[1]}, {"engine": "gitlab", "variables": THREE_SHARDS[2]},
        {"engine": "github", "variables": THREE_SHARDS[3]}]
    # Where each image was judged: this machine's node id (never its host name) and a worker process of the run.
    judged = [img["judged_on"] for r in shards for img in r.report["images"]]
    assert {j["node"] for j in judged} == {node_id()} and platform.node() not in json.dumps(one.report)
    assert all(isinstance(j["worker_pid"], int) and j["worker_pid"] > 0 for j in judged)
    # The model-level audit ran once, on shard 1; shards 2 and 3 neither ran nor timed it.
    assert not one.report["checks"]["audit"]["skipped"] and "audit" in one.report["timing"]["phases"]
    for r in (two, three):
        assert r.report["checks"]["audit"]["skipped"] and "audit" not in r.report["timing"]["phases"]

    out = tmp_path / "merged"
    shard_dirs = [str(tmp_path / f"shard-{k}") for k in (3, 1, 2)]  # in any order
    merged = run_cli(["report", "merge", *shard_dirs, "--out", str(out), "--html", "--history",
                      str(tmp_path / "history.jsonl"), "--golden-dir", str(goldens)], out=out)
    assert merged.returncode == 1, merged.stderr[-2000:]
    report, whole_report = merged.report, whole.report
    audit = report["checks"]["audit"]
    assert audit["summary"] == whole_report["checks"]["audit"]["summary"] + \
        " [judged on shard 1/3, left to it by the other shards]"
    assert report["corpus"].pop("shard_sources") == {
        f"{k}/3": r.report["corpus"]["shard_source"] for k, r in enumerate(shards, 1)}
    audit["summary"] = whole_report["checks"]["audit"]["summary"]
    assert strip_volatile(report, measured=True) == strip_volatile(whole_report, measured=True)
    assert merged.report["checks"]["golden"]["summary"].startswith("1 of 4 images differ from their golden: slip_0003")
    assert merged.report["accuracy"]["overall"]["images"] == 4
    assert (out / "results.jsonl").read_bytes() == (tmp_path / "whole" / "results.jsonl").read_bytes()
    for name in ("junit.xml", "summary.md", "report.html", "report.json"):
        assert (out / name).stat().st_size > 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "slip_0003" in page and page.count("data:image") >= 4  # the corpus pictures were found and drawn
    assert len((tmp_path / "history.jsonl").read_text(encoding="utf-8").splitlines()) == 1


# --- every kind of check, on synthetic outcomes through the real check functions ----------------------------------

def quad(x: int, y: int, w: int = 300, h: int = 30) -> tuple[tuple[int, int], ...]:
    return ((x, y), (x + w, y), (x + w, y + h), (x, y + h))


def slip(image_id: str, amount: str = "1234.50", score: float = 0.9, dx: int = 0) -> OcrResult:
    return OcrResult(image_id, 800, 300, (Line("中国工商银行", 0.95, quad(10, 10)),
                                         Line(f"金额：¥{amount}", score, quad(10 + dx, 60)),
                                         Line("账号 6222 0212 3456", 0.93, quad(10, 110))))


IDS = [f"slip_{n:04d}" for n in range(8)]  # shard 1 of 2: 0004-0007, shard 2: 0000-0003


class Synthetic:
    """One corpus, its outcomes on every path, a golden store: enough to run the real checks on any part."""

    def __init__(self, tmp: Path) -> None:
        for kind in ("det", "rec"):
            (tmp / kind).mkdir()
            (tmp / kind / "inference.pdmodel").write_bytes(kind.encode())
        self.profile = Profile(name="t", corpus=str(tmp), golden_dir=str(tmp / "golden"))
        truth = tuple(TruthLine(line.text, line.poly) for line in slip("x").lines)
        self.items = tuple(CorpusItem(i, tmp / f"{i}.png", None, "voucher" if n % 2 else "receipt",
                                      ("scan",) if n % 3 else (), truth if n != 3 else (), {"amount": "1234.50"})
                           for n, i in enumerate(IDS))
        self.corpus = Corpus(tmp, self.items, True, {}, selection_is_complete=True)
        self.dirs = ModelDirs(tmp / "det", tmp / "rec", "bundled")
        self.store = GoldenStore(tmp / "golden", "t")
        self.store.write_meta(GoldenMeta("t", {"paddle": "3.2.2"}, "0.1.0", "2025-01-01", "2025-01-01"))
        for i in [*IDS, "slip_9999"]:  # slip_9999 is an orphan; slip_0003 has none
            if i == "slip_0003":
                continue
            golden = slip(i, amount="1284.50" if i in ("slip_0002", "slip_0006") else "1234.50",
                          score=0.8 if i in ("slip_0000", "slip_0004", "slip_0007") else 0.9)
            self.store.write(Golden(golden))
        self.goldens = {i: g for i in IDS if (g := self.store.load(i)) is not None}
        runs = {i: (slip(i), slip(i), slip(i)) for i in IDS}
        runs["slip_0005"] = (slip("slip_0005"), slip("slip_0005", score=0.9 + 1e-7), slip("slip_0005"))
        self.outcomes = {i: ImageOutcome(i, runs[i], predict_s=(0.1 + n / 100, 0.2, 0.3), read_s=0.01,
                                         mutated=i == "slip_0007") for n, i in enumerate(IDS)}
        self.outcomes["slip_0001"] = ImageOutcome("slip_0001", error="worker crashed with SIGABRT")
        self.fresh = {i: ImageOutcome(i, (slip(i, dx=2 if i == "slip_0004" else 0),)) for i in IDS}
        self.bs1 = {i: ImageOutcome(i, (slip(i, score=0.9 + (1e-6 if i == "slip_0006" else 0)),)) for i in IDS}
        self.multi = {i: ImageOutcome(i, (slip(i, score=0.9 - (1e-3 if i == "slip_0000" else 0)),)) for i in IDS}

    def report(self, shard: tuple[int, int] | None, bn_drift: CheckResult | None = None,
               speed: CheckResult | None = None, stack: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """`stack`: the stack this run's goldens are judged against (the goldens were made on paddle 3.2.2)."""
        items = shard_items(self.items, shard)
        p = RunPlan(self.profile, self.corpus.root, self.corpus, items, self.dirs, shard=shard)
        part = {it.id: self.outcomes[it.id] for it in items}
        state = RunState(outcomes=part, load_s=[2.0 + (shard[0] if shard else 0)])
        state.checks["inference"] = inference_check(p, part)
        state.checks["repeat"] = repeat_check(part)
        state.checks["mutation"] = mutation_check(part)
        state.checks["cross_process"] = cross_process_check(part, self.fresh)
        state.checks["batch_paths"] = compare_paths("batch_paths", "profile", part,
                                                    {"bs1": self.bs1, "3-per-call": self.multi},
                                                    self.profile.tolerances)
        status = golden_status(self.store, [it.id for it in items], shard is None, stack or {"paddle": "3.3.0"})
        state.checks["golden"] = golden_check(items, part, "profile", self.goldens, self.profile, status)
        state.checks["audit"] = CheckResult("audit", True, "det: 3 BN, 0 findings", details={"det": {"bn": 3}})
        state.checks["bn_drift"] = bn_drift if bn_drift is not None else skipped("bn_drift", "disabled in profile")
        state.checks["variations"] = skipped("variations", "disabled in profile")
        if speed is not None:
            state.checks["speed"] = speed
        accuracy_hook(p, state)
        started = dt.datetime(2025, 1, 1, 2, shard[0] if shard else 0, tzinfo=dt.UTC)
        return as_written(build_report(p, state, started, 10.0 + (shard[0] if shard else 0)))

    def results(self, report: Mapping[str, Any]) -> tuple[str, ...]:
        out = []
        for image in report["images"]:
            o = self.outcomes[image["id"]]
            record: dict[str, Any] = {"id": image["id"], "error": o.error}
            if o.ok:
                record["result"] = o.runs[0].to_dict()
            out.append(canonical_line(record))
        return tuple(out)

    def shard(self, k: int, n: int = 2, **kwargs: Any) -> ShardRun:
        report = self.report((k, n), **kwargs)
        return ShardRun(f"shard-{k}", report, self.results(report))


@pytest.fixture
def synthetic(tmp_path: Path) -> Synthetic:
    return Synthetic(tmp_path)


def test_every_check_merges_to_what_the_whole_run_says(synthetic: Synthetic) -> None:
    whole = synthetic.report(None)
    merged = merge_shards([synthetic.shard(2), synthetic.shard(1)], registry.specs(),
                          stored_goldens=synthetic.store.ids())
    assert strip_volatile(merged.report) == strip_volatile(whole)
    checks = merged.report["checks"]
    # Failures in both shards: the planted ones, with counts, ids and the check's own tail.
    assert checks["inference"]["failed_images"] == ["slip_0001"]
    assert checks["repeat"]["failed_images"] == ["slip_0005"]
    assert checks["mutation"]["failed_images"] == ["slip_0007"]
    assert checks["cross_process"]["failed_images"] == ["slip_0004"]
    assert checks["batch_paths"]["summary"].startswith("1 of 7 images differ beyond tolerance from the profile path")
    # slip_0001 did not run: its golden was not met either (judged False), slip_0003 has no golden.
    assert "and 2 more | likely cause: " in checks["golden"]["summary"]
    assert "slip_0001" in checks["golden"]["failed_images"] and checks["golden"]["judged"] == 6
    status = checks["golden"]["details"]["status"]
    assert status["orphaned"] == ["slip_9999"] and status["missing"] == ["slip_0003"] and status["selected"] == 8
    assert merged.report["corpus"]["shard"] is None and merged.report["corpus"]["complete"] is True
    assert merged.report["accuracy"] == whole["accuracy"] and merged.report["accuracy"]["overall"]["images"] == 6
    assert merged.report["timing"]["predict_p90_s"] == whole["timing"]["predict_p90_s"]
    assert merged.report["started_at"] == "2025-01-01T02:01:00+00:00" and merged.report["duration_s"] == 12.0
    assert [json.loads(line)["id"] for line in merged.results] == IDS


def test_three_shards_with_the_audit_on_shard_1_merge_to_the_whole_runs_verdicts(synthetic: Synthetic) -> None:
    whole = synthetic.report(None)
    shards = [synthetic.shard(k, 3) for k in (3, 1, 2)]
    for s in shards:
        if s.shard[0] != 1:  # as harness.run.pipeline.execute writes it on shards 2..N
            s.data["checks"]["audit"] = as_written(left_to_first_shard("audit", s.shard).to_dict())
    merged = merge_shards(shards, registry.specs(), stored_goldens=synthetic.store.ids()).report
    assert merged["checks"]["audit"]["summary"] == whole["checks"]["audit"]["summary"] + \
        " [judged on shard 1/3, left to it by the other shards]"
    merged["checks"]["audit"]["summary"] = whole["checks"]["audit"]["summary"]
    assert strip_volatile(merged) == strip_volatile(whole)


def test_a_model_that_never_loaded_merges_too(synthetic: Synthetic) -> None:
    synthetic.outcomes = {i: ImageOutcome(i, error="rec worker: model load failed: planted") for i in IDS}
    whole = synthetic.report(None)
    merged = merge_shards([synthetic.shard(1), synthetic.shard(2)], registry.specs(),
                          stored_goldens=synthetic.store.ids())
    assert strip_volatile(merged.report) == strip_volatile(whole)
    assert merged.report["checks"]["inference"]["failed_images"] == IDS and merged.report["accuracy"] is None


def test_orphans_stay_unjudged_without_the_store(synthetic: Synthetic) -> None:
    merged = merge_shards([synthetic.shard(1), synthetic.shard(2)], registry.specs())
    status = merged.report["checks"]["golden"]["details"]["status"]
    assert status["orphans_judged"] is False and status["orphaned"] is None


def test_sampled_check_that_differs_is_reported_per_shard(synthetic: Synthetic) -> None:
    one = synthetic.shard(1, bn_drift=CheckResult("bn_drift", True, "det on 4 images: max score 1.2", judged=4))
    two = synthetic.shard(2, bn_drift=CheckResult("bn_drift", False, "det on 3 images: max score 2.7", judged=3))
    check = merge_shards([one, two], registry.specs()).report["checks"]["bn_drift"]
    assert not check["passed"]
    # The keys every check carries; two shards that sampled the model judged it again, not 7 images.
    assert (check["judged"], check["unit"]) == (4, "images")
    assert check["summary"] == "shard 1/2: det on 4 images: max score 1.2; shard 2/2: det on 3 images: max score 2.7"


def test_a_check_every_shard_runs_on_its_own_calls_counts_all_of_them(synthetic: Synthetic) -> None:
    def speed(summary: str, passed: bool = True) -> CheckResult:
        return CheckResult("speed", passed, summary, judged=6, unit="calls")

    same = speed("median image 1.02x approved on 6 calls")
    check = merge_shards([synthetic.shard(1, speed=same), synthetic.shard(2, speed=same)],
                         registry.specs()).report["checks"]["speed"]
    assert check["passed"] and (check["judged"], check["unit"]) == (12, "calls")
    assert check["summary"] == "median image 1.02x approved on 6 calls"
    check = merge_shards([synthetic.shard(1, speed=same), synthetic.shard(2, speed=speed("SLOWER: 2.1x", False))],
                         registry.specs()).report["checks"]["speed"]
    assert not check["passed"] and (check["judged"], check["unit"]) == (12, "calls")
    assert check["summary"] == "shard 1/2: median image 1.02x approved on 6 calls; shard 2/2: SLOWER: 2.1x"
    # A sampled check two shards ran judged the same sample twice: counted once.
    sample = CheckResult("bn_drift", True, "det on 4 images: max score 1.2", judged=4)
    check = merge_shards([synthetic.shard(1, bn_drift=sample), synthetic.shard(2, bn_drift=sample)],
                         registry.specs()).report["checks"]["bn_drift"]
    assert check["judged"] == 4 and check["summary"] == "det on 4 images: max score 1.2"
    # A check that every shard skipped the same way judged nothing, however many shards skipped it.
    skipped = merge_shards([synthetic.shard(1), synthetic.shard(2)], registry.specs()).report["checks"]["bn_drift"]
    assert skipped["skipped"] and skipped["judged"] == 0 and skipped["summary"] == "skipped: disabled in profile"


def test_shards_on_mixed_stacks_name_each_stacks_likely_cause(synthetic: Synthetic) -> None:
    cpus = {1: "AMD EPYC 9B14", 2: "Intel Xeon Platinum 8581C"}
    shards = [synthetic.shard(k, stack={"paddle": "3.3.0", "cpu_model": cpu}) for k, cpu in cpus.items()]
    for s in shards:
        s.data["stack"]["cpu_model"] = cpus[s.shard[0]]
    golden = merge_shards(shards, registry.specs(), allow_mixed_stacks=True).report["checks"]["golden"]
    status = golden["details"]["status"]
    assert [(d["key"], d["current"]) for d in status["stack_differences"]] == [
        ("cpu_model", cpus[1]), ("cpu_model", cpus[2]), ("paddle", "3.3.0")]  # each shard's CPU, not the last one's
    assert status["summary"].endswith("; stack differs in cpu_model, paddle")
    cause = status["likely_cause"]
    one, two = (f"goldens were made with paddle 3.2.2 on (not recorded); this run is paddle 3.3.0 on {cpus[k]}: "
                "differences may come from the stack, not the model." for k in (1, 2))
    assert cause == f"On shard 1/2: {one} On shard 2/2: {two}"
    assert not golden["passed"] and golden["summary"].endswith(f" | likely cause: {cause}")
    # One shard on the goldens' own stack: it says so, and the other's cause still ends the summary.
    shards = [synthetic.shard(1, stack={"paddle": "3.2.2"}), synthetic.shard(2, stack={"paddle": "3.3.0",
                                                                                       "cpu_model": cpus[2]})]
    shards[1].data["stack"]["cpu_model"] = cpus[2]
    golden = merge_shards(shards, registry.specs(), allow_mixed_stacks=True).report["checks"]["golden"]
    cause = golden["details"]["status"]["likely_cause"]
    assert cause == f"On shard 1/2: the stack the goldens were made on. On shard 2/2: {two}"
    assert golden["summary"].endswith(f" | likely cause: {cause}")
    # Shards on one stack: one cause, unlabelled, as the unsharded run says it.
    same = [synthetic.shard(k, stack={"paddle": "3.3.0", "cpu_model": cpus[1]}) for k in (1, 2)]
    status = merge_shards(same, registry.specs()).report["checks"]["golden"]["details"]["status"]
    assert status["likely_cause"] == one and len(status["stack_differences"]) == 2


def test_all_clean_merge_passes(synthetic: Synthetic) -> None:
    for i, o in list(synthetic.outcomes.items()):
        synthetic.outcomes[i] = ImageOutcome(i, (slip(i),) * 3, (0.1, 0.1, 0.1)) if not o.ok or o.mutated else \
            dataclasses.replace(o, runs=(o.runs[0],) * 3)
    synthetic.fresh = synthetic.bs1 = synthetic.multi = {i: ImageOutcome(i, (slip(i),)) for i in IDS}
    synthetic.goldens = {i: Golden(slip(i)) for i in IDS}
    merged = merge_shards([synthetic.shard(1), synthetic.shard(2)], registry.specs())
    assert merged.report["passed"] and merged.report["exit_code"] == 0
    assert merged.report["checks"]["repeat"]["summary"] == ("all 8 images clean; 24 compared model calls: a fault on 1 call "
                                                            "in 8 or more often is caught with 95% probability")
    assert merged.report["checks"]["batch_paths"]["summary"].startswith("vs profile: bs1: 8 identical")


def test_merged_paths_keep_the_order_the_check_compared_them_in(synthetic: Synthetic) -> None:
    """report.json sorts its keys; the merged summary lists the paths in the order the variations check made
    them (the profile's thread counts as listed: 4 before 2), not by name, and equals the unsharded run's."""
    others = {"onednn-off": synthetic.bs1, "threads-4": synthetic.multi, "threads-2": synthetic.bs1,
              "bn-unfused": synthetic.multi}
    whole = compare_paths("variations", "profile", synthetic.outcomes, others, synthetic.profile.tolerances)
    halves = [compare_paths("variations", "profile", {i: synthetic.outcomes[i] for i in ids}, others,
                            synthetic.profile.tolerances) for ids in (IDS[4:], IDS[:4])]
    shards = [hand_shard(k, 2, IDS[4:] if k == 1 else IDS[:4]) for k in (1, 2)]
    for s in shards:
        s.data["profile"]["settings"]["checks"] = {"variation_threads": [4, 2]}
    spec = registry.get("variations")
    assert spec is not None and spec.merge_details is not None and spec.merge_summary is not None
    details = spec.merge_details("variations", shards, [as_written(h.details) for h in halves], whole.per_image,
                                 None)
    assert list(details["paths"]) == ["onednn-off", "threads-4", "threads-2", "bn-unfused"]
    verdict = whole.summary.split(" | ")[0]
    assert spec.merge_summary(verdict, whole.passed, details, "", "") == whole.summary
    assert as_written(details) == as_written(whole.details)


def test_merged_bn_unfused_cost_pools_the_shards_images(synthetic: Synthetic) -> None:
    """Each shard timed its own images on both paths: the merged record is the one of all their ratios."""
    others = {"bn-unfused": synthetic.multi}
    halves = [compare_paths("variations", "profile", {i: synthetic.outcomes[i] for i in ids}, others,
                            synthetic.profile.tolerances) for ids in (IDS[4:], IDS[:4])]
    ratios = [{IDS[4]: 1.1, IDS[5]: 1.3}, {IDS[0]: 1.2}]
    written = [{**as_written(h.details), "bn_unfused_cost": cost_of_ratios(r)} for h, r in zip(halves, ratios)]
    shards = [hand_shard(k, 2, IDS[4:] if k == 1 else IDS[:4]) for k in (1, 2)]
    spec = registry.get("variations")
    assert spec is not None and spec.merge_details is not None
    details = spec.merge_details("variations", shards, written, {}, None)
    assert details["bn_unfused_cost"] == cost_of_ratios({**ratios[0], **ratios[1]})
    assert (details["bn_unfused_cost"]["images"], details["bn_unfused_cost"]["median"]) == (3, 1.2)


# --- refusals, on hand-built reports ------------------------------------------------------------------------------

def hand_shard(k: int, n: int, ids: list[str], **changes: Any) -> ShardRun:
    check = {"passed": True, "skipped": False, "summary": "ok", "failed_images": [], "details": {}}
    report: dict[str, Any] = {
        "schema": "ocr-harness/report/1", "passed": True, "exit_code": 0, "started_at": "2025-01-01T00:00:00+00:00",
        "duration_s": 1.0, "profile": {"name": "nightly", "settings": {"subset": "full", "golden_dir": "golden"}},
        "environment": {}, "stack": {"paddle": "3.2.2", "cpu_model": "AMD EPYC"},
        "corpus": {"root": "/c", "subset": "full", "selected": len(ids), "complete": False, "has_manifest": True,
                   "shard": [k, n], "selection": {"images": 4, "complete": True, "sha256": "ab"}},
        "checks": {"audit": dict(check)},
        "images": [{"id": i, "index": int(i[-1]), "checks": {}, "timings": {}, "accuracy": None} for i in ids],
        "accuracy": None, "timing": {"model_load_s": None, "wall_s": 1.0},
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = report
        for key in parents:
            target = target[key]
        target[last] = value
    return ShardRun(f"shard-{k}", report, tuple(canonical_line({"id": i}) for i in ids))


@pytest.mark.parametrize(("shards", "message"), [
    ([], "nothing to merge"),
    ([hand_shard(1, 3, ["s0"]), hand_shard(3, 3, ["s2", "s3"])], "incomplete shard set: missing shard 2/3"),
    ([hand_shard(1, 2, ["s0", "s1"]), hand_shard(1, 2, ["s2", "s3"])], "shard 1/2 given twice"),
    ([hand_shard(1, 2, ["s0", "s1"]), hand_shard(2, 3, ["s2", "s3"])], "different splits"),
    ([hand_shard(1, 2, ["s0", "s1", "s2"]), hand_shard(2, 2, ["s2", "s3"])], "overlapping shards: image 's2'"),
    ([hand_shard(1, 2, ["s0", "s1"]), hand_shard(2, 2, ["s2", "s3"], profile__name="release")],
     "profile differs in name: 'nightly' vs 'release'"),
    ([hand_shard(1, 2, ["s0", "s1"]), hand_shard(2, 2, ["s2", "s3"], stack__cpu_model="Intel Xeon")],
     "stack differs in cpu_model: 'AMD EPYC' vs 'Intel Xeon'"),
    ([hand_shard(1, 2, ["s0", "s1"]), hand_shard(2, 2, ["s2", "s3"], corpus__selection={"images": 4, "sha256": "cd"})],
     "corpus differs in selection"),
    ([hand_shard(1, 2, ["s0", "s1"]), hand_shard(2, 2, ["s2", "s3"], corpus__shard=None)], "not a shard run"),
    ([hand_shard(1, 2, ["s0", "s1"]), hand_shard(2, 2, ["s2"])], "the shards hold 3 images, the selection has 4"),
    ([hand_shard(1, 2, ["s0", "s1"]), hand_shard(2, 2, ["s2", "s3"], schema="ocr-harness/report/0")],
     "report schema"),
])
def test_refusals(shards: list[ShardRun], message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        merge_shards(shards, registry.specs())


def test_model_level_checks_must_agree() -> None:
    two = hand_shard(2, 2, ["s2", "s3"])
    two.data["checks"]["audit"].update(passed=False, summary="rec: 2 BN in training mode")
    with pytest.raises(UserError, match="model-level check 'audit' differs"):
        merge_shards([hand_shard(1, 2, ["s0", "s1"]), two], registry.specs())


def _left(k: int, n: int) -> dict[str, Any]:
    """What shard k > 1 writes for a model-level check it leaves to shard 1 (harness.model.outcome)."""
    return as_written(left_to_first_shard("audit", (k, n)).to_dict())


def test_model_level_check_is_shard_1s_verdict_and_says_so() -> None:
    one = hand_shard(1, 3, ["s0"])
    one.data["checks"]["audit"].update(passed=False, summary="rec: 2 BN in training mode")
    two, three = hand_shard(2, 3, ["s1", "s2"]), hand_shard(3, 3, ["s3"])
    two.data["checks"]["audit"] = _left(2, 3)
    three.data["checks"]["audit"] = _left(3, 3)
    assert two.data["checks"]["audit"]["skipped"] and "judged on shard 1/3 only" in _left(2, 3)["summary"]
    merged = merge_shards([three, one, two], registry.specs()).report
    audit = merged["checks"]["audit"]
    assert (audit["passed"], audit["skipped"], merged["passed"]) == (False, False, False)
    assert audit["summary"] == ("rec: 2 BN in training mode [judged on shard 1/3, left to it by the other shards]")
    assert audit["details"] == one.data["checks"]["audit"]["details"]
    # A clean shard 1 passes for every shard; the deferring shards cannot hide a failure either way.
    one.data["checks"]["audit"].update(passed=True, summary="ok")
    assert merge_shards([one, two, three], registry.specs()).report["checks"]["audit"]["passed"]


def test_model_level_deferral_keeps_the_refusals() -> None:
    one, two, three = hand_shard(1, 3, ["s0"]), hand_shard(2, 3, ["s1", "s2"]), hand_shard(3, 3, ["s3"])
    three.data["checks"]["audit"] = _left(3, 3)
    two.data["checks"]["audit"].update(passed=False, summary="rec: 2 BN in training mode")
    with pytest.raises(UserError, match="model-level check 'audit' differs"):  # shard 2 ran it too, and disagrees
        merge_shards([one, two, three], registry.specs())
    one.data["checks"]["audit"] = _left(1, 3)  # nobody judged it: never a pass
    two.data["checks"]["audit"] = _left(2, 3)
    reread = [dataclasses.replace(s) for s in (one, two, three)]  # a ShardRun reads its report once
    with pytest.raises(UserError, match="check 'audit' is left to shard 1/3 by shard 1 itself"):
        merge_shards(reread, registry.specs())


def test_only_model_file_checks_are_left_to_shard_1() -> None:
    left = {s.name for s in registry.specs() if s.left_to_first_shard((2, 4))}
    assert left == {"audit", "probe", "bn_drift"}  # speed and a service's answers judge each shard's own calls
    assert not any(s.left_to_first_shard((1, 4)) or s.left_to_first_shard(None) for s in registry.specs())


def test_mixed_stacks_merge_only_when_allowed_and_then_show_each_shards() -> None:
    one, two = hand_shard(1, 2, ["s0", "s1"]), hand_shard(2, 2, ["s2", "s3"], stack__cpu_model="Intel Xeon")
    for s, pid in ((one, 101), (two, 202)):
        for img in s.data["images"]:
            img["judged_on"] = {"node": f"node-{s.shard[0]}", "worker_pid": pid}
    with pytest.raises(UserError, match="stack differs in cpu_model.*--allow-mixed-stacks merges them anyway"):
        merge_shards([one, two], registry.specs())
    report = merge_shards([one, two], registry.specs(), allow_mixed_stacks=True).report
    assert report["stack"] == {"paddle": "3.2.2"}  # what every shard shares
    assert report["stacks"] == {"1/2": {"paddle": "3.2.2", "cpu_model": "AMD EPYC"},
                                "2/2": {"paddle": "3.2.2", "cpu_model": "Intel Xeon"}}
    assert [(i["id"], i["stack"], i["judged_on"]["worker_pid"]) for i in report["images"]] == [
        ("s0", "1/2", 101), ("s1", "1/2", 101), ("s2", "2/2", 202), ("s3", "2/2", 202)]
    # Equal stacks: the flag changes nothing, so a merge equals an unsharded run's report either way.
    same = merge_shards([hand_shard(1, 2, ["s0", "s1"]), hand_shard(2, 2, ["s2", "s3"])], registry.specs(),
                          allow_mixed_stacks=True)
    assert "stacks" not in same.report and all("stack" not in i for i in same.report["images"])
    # Other model files are never merged.
    one.data["stack"]["models"] = {"det/inference.pdmodel": "aa"}
    two.data["stack"]["models"] = {"det/inference.pdmodel": "bb"}
    with pytest.raises(UserError, match="model files differ"):
        merge_shards([one, two], registry.specs(), allow_mixed_stacks=True)


def test_cli_allow_mixed_stacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_shard(tmp_path / "a", hand_shard(1, 2, ["s0", "s1"]))
    write_shard(tmp_path / "b", hand_shard(2, 2, ["s2", "s3"], stack__cpu_model="Intel Xeon"))
    dirs = [str(tmp_path / "a"), str(tmp_path / "b")]
    assert main(["report", "merge", *dirs, "--out", str(tmp_path / "m")]) == 2
    assert "stack differs in cpu_model" in capsys.readouterr().err
    assert main(["report", "merge", *dirs, "--out", str(tmp_path / "m"), "--allow-mixed-stacks"]) == 0
    written = json.loads((tmp_path / "m" / "report.json").read_text(encoding="utf-8"))
    assert set(written["stacks"]) == {"1/2", "2/2"} and written["images"][2]["stack"] == "2/2"


def test_node_id_is_a_salted_hash_not_the_host_name() -> None:
    a = node_id({}, hostname="build-runner-7", machine_id="0123")
    assert len(a) == 12 and "build-runner" not in a and a == node_id({}, hostname="build-runner-7", machine_id="0123")
    assert a != node_id({}, hostname="build-runner-8", machine_id="0123")
    assert a != node_id({}, hostname="build-runner-7", machine_id="0124")  # containers that share a host name
    assert a != node_id({"OCR_HARNESS_NODE_SALT": "site secret"}, hostname="build-runner-7", machine_id="0123")


def test_results_must_match_their_report() -> None:
    one = hand_shard(1, 2, ["s0", "s1"])
    one = ShardRun(one.source, one.data, tuple(reversed(one.results)))
    with pytest.raises(UserError, match="results.jsonl does not list the images"):
        merge_shards([one, hand_shard(2, 2, ["s2", "s3"])], registry.specs())


def test_hand_built_shards_merge_in_index_order() -> None:
    merged: MergedRun = merge_shards([hand_shard(2, 2, ["s1", "s3"]), hand_shard(1, 2, ["s0", "s2"])], registry.specs())
    assert [i["id"] for i in merged.report["images"]] == ["s0", "s1", "s2", "s3"]
    assert merged.report["corpus"] | {"root": None} == {
        "root": None, "subset": "full", "selected": 4, "complete": True, "has_manifest": True, "shard": None,
        "selection": {"images": 4, "complete": True, "sha256": "ab"}}


def write_shard(directory: Path, shard: ShardRun) -> None:
    directory.mkdir(parents=True)
    (directory / "report.json").write_text(canonical_json(shard.data), encoding="utf-8")
    (directory / "results.jsonl").write_text("".join(line + "\n" for line in shard.results), encoding="utf-8")


def test_cli_usage_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_shard(tmp_path / "a", hand_shard(1, 2, ["s0", "s1"]))
    assert main(["report", "merge", str(tmp_path / "a"), "--out", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err.strip().endswith("missing shard 2/2 (have 1/2 (" + str(tmp_path / "a") + "))")
    assert main(["report", "merge", str(tmp_path / "nope"), "--out", str(tmp_path / "m")]) == 2
    assert "no report.json" in capsys.readouterr().err
    assert main(["report", "merge", str(tmp_path / "a"), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "one of the shard directories" in err and len(err.strip().splitlines()) == 1


def test_cli_writes_every_report(tmp_path: Path, synthetic: Synthetic, capsys: pytest.CaptureFixture[str]) -> None:
    write_shard(tmp_path / "s1", synthetic.shard(1))
    write_shard(tmp_path / "s2", synthetic.shard(2))
    out = tmp_path / "merged"
    config = tmp_path / "harness.toml"  # the merging checkout: the shards' profile, its golden store beside it
    config.write_text('[profiles.t]\ngolden_dir = "golden"\n', encoding="utf-8")
    assert main(["report", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(out),
                 "--config", str(config)]) == 1
    assert "FAIL: 8 images from 2 shards" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["junit.xml", "report.json", "results.jsonl", "summary.md"]
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["corpus"]["selected"] == 8


# --- merging reports from other machines reads only this checkout's corpus -----------------------------------

def test_merge_reads_pictures_only_inside_the_corpus_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import harness.run.shards.merge as merge_module
    from PIL import Image

    corpus = tmp_path / "checkout"
    corpus.mkdir()
    synthetic = Synthetic(corpus)
    for i in IDS:
        Image.new("RGB", (80, 30), "white").save(corpus / f"{i}.png")
    Image.new("RGB", (80, 30), "red").save(tmp_path / "outside.png")  # a real picture the merge must not read
    tampered = {"slip_0001": "../outside.png", "slip_0002": str(tmp_path / "outside.png"),
                "slip_0004": "sub/../../outside.png", "slip_0005": "slip_0005.png\\..\\..\\outside.png"}
    for k in (1, 2):
        shard = synthetic.shard(k)
        for image in shard.data["images"]:
            image["file"] = tampered.get(image["id"], image["file"])
        write_shard(tmp_path / f"s{k}", shard)
    config = corpus / "harness.toml"
    config.write_text("# the merging checkout\n[profiles.t]\n", encoding="utf-8")
    read: list[Path] = []

    def recording_read_image(path: Path, **kwargs: Any) -> Any:
        read.append(Path(path))
        return real_read_image(path, **kwargs)

    real_read_image = merge_module.read_image
    monkeypatch.setattr(merge_module, "read_image", recording_read_image)
    monkeypatch.chdir(corpus)
    out = tmp_path / "merged"
    assert main(["report", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(out), "--html",
                 "--config", str(config)]) == 1
    capsys.readouterr()
    assert sorted(p.name for p in read) == sorted(f"{i}.png" for i in IDS if i not in tampered)
    assert all(p.resolve().is_relative_to(corpus.resolve()) for p in read)
    assert (out / "report.html").read_text(encoding="utf-8").count("data:image") == len(IDS) - len(tampered)


@pytest.mark.parametrize(("file", "inside"), [
    ("slip_0000.png", True), ("./slip_0000.png", True), ("../outside.png", False), ("/etc/passwd", False),
    ("a/../../outside.png", False), ("C:/x.png", False), ("x\\..\\..\\outside.png", False), ("", False),
    ("missing.png", False), ("link.png", False),
])
def test_corpus_file(tmp_path: Path, file: str, inside: bool) -> None:
    from harness.run.shards.merge import corpus_file

    root = tmp_path / "corpus"
    root.mkdir()
    (root / "slip_0000.png").write_bytes(b"x")
    (tmp_path / "outside.png").write_bytes(b"x")
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    found = corpus_file(root, file)
    assert (found is not None) == inside
    if found is not None:
        assert found == (root / "slip_0000.png").resolve()


def test_incomplete_shard_is_refused() -> None:
    two = hand_shard(2, 2, ["s2", "s3"])
    two.data.update(complete=False, incomplete={"reason": "cancelled by SIGTERM", "finished_images": ["s2"]})
    with pytest.raises(UserError, match="shard-2: an incomplete run \\(cancelled by SIGTERM\\); re-run that shard"):
        merge_shards([hand_shard(1, 2, ["s0", "s1"]), two], registry.specs())


def test_history_png_is_refused_and_nothing_is_overwritten(tmp_path: Path, synthetic: Synthetic,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    write_shard(tmp_path / "s1", synthetic.shard(1))
    write_shard(tmp_path / "s2", synthetic.shard(2))
    plot = tmp_path / "trend.png"
    plot.write_bytes(b"the existing plot")
    out = tmp_path / "merged"
    assert main(["report", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(out),
                 "--history", str(plot)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"--history {plot}: give the JSONL history file" in err
    assert plot.read_bytes() == b"the existing plot" and not out.exists()


# --- a shard is input, never settings ------------------------------------------------------------------------------

def _plant(shard: ShardRun, **settings: Any) -> ShardRun:
    shard.data["profile"]["settings"].update(settings)
    return shard


def test_a_shards_golden_dir_and_limits_are_never_used(tmp_path: Path, synthetic: Synthetic,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    # Both shards (they must agree on the profile) name the merging machine's /usr as their golden store.
    for k in (1, 2):
        write_shard(tmp_path / f"s{k}", _plant(synthetic.shard(k), golden_dir="/", golden_set="usr",
                                               max_image_pixels=1, max_image_bytes=1))
    config = tmp_path / "harness.toml"
    config.write_text('[profiles.t]\ngolden_dir = "golden"\n', encoding="utf-8")
    out = tmp_path / "merged"
    assert main(["report", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(out),
                 "--config", str(config)]) == 1
    status = json.loads((out / "report.json").read_text(encoding="utf-8"))["checks"]["golden"]["details"]["status"]
    assert status["orphans_judged"] is True and status["orphaned"] == ["slip_9999"]  # this checkout's store only
    # --golden-dir overrides the config: an empty store there, so nothing is orphaned, and /usr is still not read.
    empty = tmp_path / "elsewhere"
    (empty / "t").mkdir(parents=True)
    capsys.readouterr()
    assert main(["report", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m2"),
                 "--config", str(config), "--golden-dir", str(empty)]) == 1
    status = json.loads((tmp_path / "m2" / "report.json").read_text(encoding="utf-8"))["checks"]["golden"]
    assert status["details"]["status"]["orphaned"] == []
    # No harness.toml and no --golden-dir: unjudged, said once; the shard's "/" is not a fallback.
    assert main(["report", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m3"),
                 "--config", str(tmp_path / "nope.toml")]) == 2
    assert capsys.readouterr().err == f"ocr-harness: error: {tmp_path / 'nope.toml'}: config file not found\n"
    # A checkout whose harness.toml lacks the shards' profile is not the checkout that ran them.
    other = tmp_path / "other.toml"
    other.write_text("[profiles.release]\n", encoding="utf-8")
    assert main(["report", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m4"),
                 "--config", str(other)]) == 2
    assert capsys.readouterr().err == f"ocr-harness: error: {other}: no profile 't' (profiles: release)\n"
    assert not (tmp_path / "m4").exists()


def test_merge_without_a_checkout_leaves_orphans_unjudged(tmp_path: Path, synthetic: Synthetic,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    for k in (1, 2):
        write_shard(tmp_path / f"s{k}", _plant(synthetic.shard(k), golden_dir="/", golden_set="usr"))
    elsewhere = tmp_path / "no-checkout"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    if (found := find_config()) is not None:
        pytest.fail(f"a harness.toml above the temp dir ({found}) makes this test meaningless")
    assert main(["report", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m")]) == 1
    assert "golden store not found from here; orphaned goldens are not judged" in capsys.readouterr().err
    status = json.loads((tmp_path / "m" / "report.json").read_text(encoding="utf-8"))["checks"]["golden"]
    assert status["details"]["status"]["orphaned"] is None


def _bad_json(report: dict[str, Any], dotted: str, value: Any) -> str:
    *parents, last = dotted.split(".")
    target: Any = report
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    target[last] = value
    return json.dumps(report)  # allow_nan: writes NaN and Infinity as Python does, which JSON forbids


@pytest.mark.parametrize(("field", "value", "message"), [
    ("images.0.index", "0", "report.json: images[0].index must be a count"),
    ("duration_s", float("nan"), "report.json: invalid JSON (NaN is not a number JSON allows)"),
    ("timing.wall_s", float("inf"), "report.json: invalid JSON (Infinity is not a number JSON allows)"),
    ("duration_s", "11", "report.json: duration_s must be a finite number"),
    ("checks.golden.passed", "yes", "report.json: checks.golden.passed must be true or false"),
    ("images.0.accuracy", {"cer": 0.1}, "report.json: images[0].accuracy.edits must be a count"),
    ("corpus.shard", [1, "2"], "report.json: corpus.shard must be [K, N] with 1 <= K <= N"),
    ("checks.batch_paths.details", {"paths": {"bs1": {"identical": "x"}}},
     "cannot merge check 'batch_paths': the shards' reports hold details this version cannot read "
     "(TypeError: unsupported operand type(s) for +=: 'int' and 'str')"),
])
def test_bad_shard_fields_are_one_line(tmp_path: Path, synthetic: Synthetic, capsys: pytest.CaptureFixture[str],
                                       field: str, value: Any, message: str) -> None:
    write_shard(tmp_path / "s1", synthetic.shard(1))
    write_shard(tmp_path / "s2", synthetic.shard(2))
    report = tmp_path / "s2" / "report.json"
    report.write_text(_bad_json(json.loads(report.read_text(encoding="utf-8")), field, value), encoding="utf-8")
    out = tmp_path / "merged"
    config = tmp_path / "harness.toml"
    config.write_text('[profiles.t]\ngolden_dir = "golden"\n', encoding="utf-8")
    assert main(["report", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(out),
                 "--config", str(config)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("ocr-harness: error: ") and err[0].endswith(message), err
    assert not out.exists()  # nothing written: no results.jsonl without its report.json


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "slip_0000", "result": {"image_id": "slip_0000", "width": NaN, "height": 1, "lines": []}}',
     "results.jsonl:1: invalid JSON (NaN is not a number JSON allows)"),
    ('{"id": "slip_0000", "result": {"image_id": "slip_0000", "width": 1, "height": 1, "lines": "x"}}',
     "results.jsonl:1: 'result' is not an OCR result (TypeError: string indices must be integers, not 'str')"),
    ('["slip_0000"]', "results.jsonl:1: expected an object with a string 'id'"),
    ("[" * 100_000 + "]" * 100_000, "results.jsonl:1: invalid JSON (nested too deeply)"),
])
def test_bad_results_lines_are_one_line(tmp_path: Path, synthetic: Synthetic, capsys: pytest.CaptureFixture[str],
                                        line: str, message: str) -> None:
    write_shard(tmp_path / "s1", synthetic.shard(1))
    write_shard(tmp_path / "s2", synthetic.shard(2))
    results = tmp_path / "s2" / "results.jsonl"
    rows = results.read_text(encoding="utf-8").splitlines()
    results.write_text("\n".join([line, *rows[1:]]) + "\n", encoding="utf-8")
    out = tmp_path / "merged"
    assert main(["report", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"ocr-harness: error: {results}:{message.partition(':')[2]}\n"
    assert not out.exists()


def test_deep_json_report_is_one_line(tmp_path: Path, synthetic: Synthetic,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    write_shard(tmp_path / "s1", synthetic.shard(1))
    (tmp_path / "s2").mkdir()
    (tmp_path / "s2" / "report.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    (tmp_path / "s2" / "results.jsonl").write_text("", encoding="utf-8")
    assert main(["report", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err == (f"ocr-harness: error: {tmp_path / 's2' / 'report.json'}: invalid JSON "
                                       "(nested too deeply)\n")
    assert not (tmp_path / "m").exists()


def test_deep_toml_config_is_one_line(tmp_path: Path, synthetic: Synthetic, capsys: pytest.CaptureFixture[str]) -> None:
    write_shard(tmp_path / "s1", synthetic.shard(1))
    write_shard(tmp_path / "s2", synthetic.shard(2))
    config = tmp_path / "harness.toml"
    config.write_text("[profiles.t]\nx = " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    assert main(["report", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m"),
                 "--config", str(config)]) == 2
    assert capsys.readouterr().err == f"ocr-harness: error: {config}: invalid TOML: nested too deeply\n"
    assert not (tmp_path / "m").exists()


def test_a_shard_report_is_read_once_not_once_per_image(monkeypatch: pytest.MonkeyPatch) -> None:
    """Merge read the typed report of a shard anew per image: quadratic in a shard's images (30,000 images a shard
    took minutes). Counted, not timed: the reads must not grow with the images."""
    reads = []
    real = RunReport.from_dict.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(RunReport, "from_dict", classmethod(lambda cls, *a, **k: reads.append(1) or real(cls, *a, **k)))

    def merged_reads(per_shard: int) -> int:
        ids = [f"s{i}" for i in range(2 * per_shard)]
        shards = [hand_shard(k, 2, ids[(k - 1) * per_shard:k * per_shard], corpus__selection__images=len(ids))
                  for k in (1, 2)]
        reads.clear()
        merge_shards(shards, registry.specs())
        return len(reads)

    assert merged_reads(1) == merged_reads(5) <= 4
