"""The cost model behind `ocr-harness plan`: per-phase fits from a measured report, scaling, shards, budget."""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections import Counter
from pathlib import Path

import pytest

from harness.checks.variations import isa_paths
from harness.checks.registry import catalogue
from harness.cli import main
from harness.config import load_profile
from harness.corpus.loader import load_corpus
from harness.environment import cpu_info, isa_hold
from harness.run.shards.costmodel import (expected_phases, fewest_shards, fit, largest_shard, most_shards, predict,
                                     shards_for_budget)
from harness.run.pipeline.plan import shard_items

CONFIG = Path(__file__).resolve().parents[3] / "harness.toml"
# The oneDNN ISA variations this CPU runs (none on an AVX2-only one): the nightly's phases depend on the planner's CPU.
_NIGHTLY, _ = load_profile(CONFIG, "nightly", catalogue())
ISA_HERE = list(isa_paths(_NIGHTLY.engine, cpu_info()["isa"], isa_hold())[0])


def report(images: int = 8) -> dict:
    """A nightly on `images` slips: 2 s model load; per image main 5 x 0.8 s, others 0.8 s, oneDNN off 4 s."""
    per = {"main": 4.0, "bs1": 0.8, "fresh": 0.8, "multi": 0.8, "onednn-off": 4.0, "threads-2": 1.2,
           "bn-unfused": 0.8, **{label: 0.8 for label in ISA_HERE}}
    phases = {k: {"wall_s": 2.0 + v * images, "images": images, "calls_per_image": 5 if k == "main" else 1}
              for k, v in per.items()}
    phases.update({"audit": {"wall_s": 6.0, "images": 0, "calls_per_image": 1},
                   "probe": {"wall_s": 9.0, "images": 0, "calls_per_image": 1},
                   "bn_drift": {"wall_s": 12.0, "images": 0, "calls_per_image": 1}})
    wall = sum(p["wall_s"] for p in phases.values()) + 0.5 * images  # goldens + reports: 0.5 s per image
    return {"profile": {"name": "nightly"}, "corpus": {"selected": images},
            "timing": {"wall_s": wall, "model_load_s": 2.0, "phases": phases}}


def test_nightly_has_every_phase_and_fits_exactly() -> None:
    nightly, _ = load_profile(CONFIG, "nightly", catalogue())
    assert expected_phases(nightly) == ["main", "fresh", "bs1", "multi", "onednn-off", "threads-2", "bn-unfused",
                                        *ISA_HERE, "audit", "probe", "bn_drift"]
    costs, missing = fit(report(8), nightly)
    assert not missing
    # Fitted on 8 images, predicted for 8: the measured run back.
    assert predict(costs, nightly, 8).wall_s == pytest.approx(report(8)["timing"]["wall_s"])
    # For 64: corpus phases x8; stack checks on the 32-image sample (x4); fixed checks as measured.
    big = dict(predict(costs, nightly, 64).phases)
    assert big["main"] == pytest.approx(2 + 4.0 * 64) and big["onednn-off"] == pytest.approx(2 + 4.0 * 32)
    assert big["probe"] == 9.0 and big["checks+reports"] == pytest.approx(0.5 * 64)


def test_shards_split_the_images_and_each_pays_the_starts() -> None:
    nightly, _ = load_profile(CONFIG, "nightly", catalogue())
    costs, _ = fit(report(8), nightly)
    one, four = predict(costs, nightly, 64, 1), predict(costs, nightly, 64, 4)
    assert four.wall_s < one.wall_s * 0.7  # images split; starts and model-level checks are paid per shard
    # The largest shard is planned, not the average: 32 of 64 slips, not 16.
    assert largest_shard(64, 4) == 32 and dict(four.phases)["main"] == pytest.approx(2 + 4.0 * 32)
    best = shards_for_budget(costs, nightly, 10_000, 30 * 60)
    assert best is not None and best.wall_s <= 30 * 60
    assert predict(costs, nightly, 10_000, best.shards - 1).wall_s > 30 * 60  # the fewest that fit
    assert shards_for_budget(costs, nightly, 10_000, 10) is None  # fixed costs alone exceed 10 s


def test_the_planned_largest_shard_holds_for_the_real_hash_split() -> None:
    """The split hashes ids, so shards are uneven: the plan's largest shard is at least the real one, and up to
    `most_shards` no shard is empty (an empty shard stops with exit 2 and the merge lacks it). Four id families:
    the committed corpus, and sequential ids of three shapes (crc32 of sequential ids is uneven: 7 shards of
    10,000 get 1362 to 1547)."""
    corpus = load_corpus(CONFIG.parent / "datasets" / "bank_slips").items
    families = [corpus, *([dataclasses.replace(corpus[0], id=fmt.format(n)) for n in range(size)]
                          for fmt, size in (("slip_{:05d}", 10_000), ("slip_{:04d}", 1000), ("img{}", 3000)))]
    for items in families:
        n = len(items)
        crc = [zlib.crc32(it.id.encode("utf-8")) for it in items]
        assert [it.id for it in shard_items(items, (2, 7))] == [it.id for it, c in zip(items, crc) if c % 7 == 1]
        for shards in range(2, min(most_shards(n), 300) + 1):
            sizes = Counter(c % shards for c in crc)
            assert len(sizes) == shards, (n, shards)  # none empty
            assert max(sizes.values()) <= largest_shard(n, shards), (n, shards, max(sizes.values()))
    assert (most_shards(64), most_shards(12), most_shards(1), most_shards(10_000)) == (9, 2, 1, 878)
    assert (largest_shard(10_000, 37), largest_shard(10_000, 1), largest_shard(5, 4)) == (345, 10_000, 5)


def test_plan_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "report.json"
    source.write_text(json.dumps(report(8)), encoding="utf-8")
    assert main(["plan", "--config", str(CONFIG), "--from", str(source), "--images", "1000", "--budget", "30"]) == 0
    out = capsys.readouterr().out
    assert "plan for profile nightly" in out and "min per shard (1000 images" in out
    assert main(["plan", "--config", str(CONFIG), "--from", str(tmp_path / "none.json")]) == 2
    assert "no measured run" in capsys.readouterr().err
    release = report(8)
    del release["timing"]["phases"]["bn_drift"]
    source.write_text(json.dumps(release), encoding="utf-8")
    assert main(["plan", "--config", str(CONFIG), "--from", str(source)]) == 0
    assert "not measured (run them once to plan them): bn_drift" in capsys.readouterr().out


def test_a_phase_that_reused_loaded_workers_pays_no_load() -> None:
    nightly, _ = load_profile(CONFIG, "nightly", catalogue())
    measured = report(8)
    measured["timing"]["phases"]["multi"] = {"wall_s": 0.8 * 8, "images": 8, "calls_per_image": 1,
                                             "workers_started": 0}
    costs, _ = fit(measured, nightly)
    multi = next(c for c in costs if c.label == "multi")
    assert (multi.start_s, multi.per_image_s) == (0.0, pytest.approx(0.8))
    main_cost = next(c for c in costs if c.label == "main")
    assert main_cost.start_s == 2.0  # a report without the key: taken as loading


def test_fewest_shards_bisects_to_what_a_linear_search_finds() -> None:
    nightly, _ = load_profile(CONFIG, "nightly", catalogue())
    costs, _ = fit(report(8), nightly)
    for images, budget in ((64, 20 * 60), (1000, 30 * 60), (10_000, 30 * 60), (3, 5 * 60)):
        linear = shards_for_budget(costs, nightly, images, budget, max_shards=images)
        best = fewest_shards(costs, nightly, images, budget)
        assert best is not None and linear is not None and best.shards == linear.shards
    assert fewest_shards(costs, nightly, 10_000, 10) is None  # fixed costs alone exceed 10 s


def _plan(tmp_path: Path, *args: str) -> int:
    source = tmp_path / "report.json"
    measured = {**report(8), "started_at": "2026-12-01T02:17:00+00:00", "stack": {"cpu_model": "AMD EPYC 7763"}}
    measured["corpus"] = {"selected": 8, "subset": "smoke", "selection": {"images": 12}}
    source.write_text(json.dumps(measured), encoding="utf-8")
    return main(["plan", "--config", str(CONFIG), "--from", str(source), *args])


@pytest.mark.parametrize(("engine", "snippet"), [
    ("github", '{"k":[1,2,3,4,5],"n":[5]}'),
    ("gitlab", "parallel: 5"),
    ("k8s", 'completions: 5\nparallelism: 5\nOCR_HARNESS_SHARD_TOTAL: "5"'),
    ("slurm", "#SBATCH --array=1-5"),
])
def test_plan_per_engine_prints_the_snippet_its_template_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               engine: str, snippet: str) -> None:
    nightly, _ = load_profile(CONFIG, "nightly", catalogue())
    costs, _ = fit(report(8), nightly)
    shards = fewest_shards(costs, nightly, 1000, 30 * 60)
    assert shards is not None and shards.shards == 5  # the snippet below is for this count
    assert _plan(tmp_path, "--images", "1000", "--budget", "30", "--engine", engine) == 0
    out = capsys.readouterr().out
    # Where the costs come from: the file, the measured profile, its images and selection, when, on what CPU.
    assert (f"from {tmp_path / 'report.json'}: a run of profile nightly measured 2026-12-01T02:17:00+00:00, 8 "
            "images of a 12-image selection, subset smoke") in out and "on AMD EPYC 7763" in out
    assert out.rstrip().endswith(snippet) and f"{engine}: 5 shards (limit" in out
    if engine == "github":
        assert json.loads(snippet) == {"k": [1, 2, 3, 4, 5], "n": [5]}


@pytest.mark.parametrize(("engine", "limit", "advice"), [
    ("github", 256, "split the shards over 2 matrix jobs, each setting OCR_HARNESS_SHARD=${{ matrix.k }}/"
                    "${{ matrix.n }} from its own matrix (one repository variable each), and one merge job that "
                    "needs all of them; the matrices, shards 1-256, 257-{n}:"),
    ("gitlab", 200, "split the shard job into 3 jobs of at most `parallel: 200`"),
    ("slurm", 1000, "ask for a MaxArraySize above {n} or submit 2 arrays running explicit "
                    "`--shard $((SLURM_ARRAY_TASK_ID + OFFSET))/{n}`"),
])
def test_plan_above_the_engines_limit_says_so_and_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            engine: str, limit: int, advice: str) -> None:
    nightly, _ = load_profile(CONFIG, "nightly", catalogue())
    costs, _ = fit(report(8), nightly)
    images = 100_000 if engine != "slurm" else 400_000
    need = fewest_shards(costs, nightly, images, 30 * 60)
    assert need is not None and limit < need.shards
    assert _plan(tmp_path, "--images", str(images), "--budget", "30", "--engine", engine) == 1
    out = capsys.readouterr().out
    assert f"{engine}: {need.shards} shards are above the limit of {limit}" in out
    assert advice.replace("{n}", str(need.shards)) in out
    if engine == "github":  # every shard in exactly one matrix, each one the JSON fromJSON reads
        matrices = [json.loads(line) for line in out.splitlines() if line.startswith('{"k":')]
        assert [k for m in matrices for k in m["k"]] == list(range(1, need.shards + 1))
        assert all(m["n"] == [need.shards] and len(m["k"]) <= 256 for m in matrices)


def test_plan_engine_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _plan(tmp_path, "--engine", "k8s") == 2
    assert "--engine needs --budget" in capsys.readouterr().err
    assert _plan(tmp_path, "--budget", "30", "--engine", "ray") == 2
    assert "invalid choice: 'ray'" in capsys.readouterr().err
    # Without an engine nothing changes: GitHub's 256 bound the plain budget search, as before.
    assert _plan(tmp_path, "--images", "1000", "--budget", "30") == 0
    assert "min per shard (1000 images, 5 shards)" in capsys.readouterr().out
    # A budget nothing meets: what the most shards that leave none empty would take.
    assert _plan(tmp_path, "--images", "1000", "--budget", "0.1", "--engine", "k8s") == 1
    assert "no shard count fits 0.1 min for 1000 images: even 107 shards (the most that leave none empty) take " \
        in capsys.readouterr().out
    assert _plan(tmp_path, "--images", "1000", "--budget", "0.1") == 1
    assert "no shard count up to 107 fits 0.1 min for 1000 images" in capsys.readouterr().out


def test_a_later_shard_is_refused_as_the_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Shard K > 1 never runs the model-level checks: planning from it would leave them out of every shard."""
    source = tmp_path / "report.json"
    later = report(8)
    later["corpus"]["shard"] = [2, 4]
    for label in ("audit", "probe", "bn_drift"):
        del later["timing"]["phases"][label]
    source.write_text(json.dumps(later), encoding="utf-8")
    assert main(["plan", "--config", str(CONFIG), "--from", str(source), "--images", "1000", "--budget", "30"]) == 2
    err = capsys.readouterr().err
    assert "shard 2/4 ran no audit, probe, bn_drift" in err and "plan from shard 1's report.json" in err
    first = report(8)
    first["corpus"]["shard"] = [1, 4]
    source.write_text(json.dumps(first), encoding="utf-8")
    assert main(["plan", "--config", str(CONFIG), "--from", str(source), "--images", "1000", "--budget", "30"]) == 0
