"""One rule at every boundary: what the writers refuse (NaN, infinities, lone surrogates, negative counts) is
refused where it enters, naming where it came from.

Planted on 22c6256, where each ended as exit 3 after the run (canonical JSON with allow_nan=False, or UTF-8
encoding, refused the report) or passed a gate it should not have:
- a service answer with a text "\\ud800" or a score NaN; an `engine.factory` engine answering NaN, inf, a text
  with a lone surrogate or a numpy float32 score: now that image fails with one line, the run goes on and its
  report is written (exit 1);
- `score_abs = inf`, `det_unclip_ratio = nan` in harness.toml; a golden with `"score": NaN`, `Infinity`, 1e999
  or "\\ud800"; `_approval.json` with `peak_rss_kib: Infinity` (OverflowError) or a negative `peak_rss_kib` /
  `served_at_peak` (the memory gate silently off): now exit 2 naming the file, the field and the problem;
- manifest lines, label files and shard results with the same values: refused with file:line and field.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from canned_service import CannedService
from conftest import CORPUS, CliRun, run_cli
from backends.test_registry import PLUGIN_ENV, config as inkbands_config
from backends.http.test_client import run as run_http

from harness.checks.registry import catalogue
from harness.config import load_profile
from harness.corpus.manifest import parse_manifest
from harness.golden.approval import load_approval
from harness.golden.store import loads_golden
from harness.report.shard_input import check_results_line
from harness.util.errors import UserError
from harness.util.values import value_problem

IDS = ("slip_0003", "slip_0007")


def _one_image_failed(res: CliRun, message: str) -> None:
    assert res.returncode == 1, (res.returncode, res.stderr[-2000:])
    report = res.report
    assert report["complete"] is True
    errors = {image["id"]: image["error"] for image in report["images"]}
    bad = [i for i, e in errors.items() if e]
    assert len(bad) == 1, errors
    assert message in errors[bad[0]] and "\n" not in errors[bad[0]], errors[bad[0]]
    assert (res.out / "summary.md").is_file() and (res.out / "junit.xml").is_file()


# --- answers: the image fails, the run goes on ---------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "message"), [
    ("surrogate", "rec_texts[0]: holds a lone surrogate U+D800"),
    ("nan", "malformed JSON in the response (HTTP 200): NaN is not a number JSON allows"),
])
def test_a_service_answer_the_report_cannot_hold_fails_that_image(tmp_path: Path, mode: str, message: str) -> None:
    with CannedService(mode, after=2) as s:  # the preflight and the first image are answered well
        res = run_http(tmp_path, s.url, "--id", "slip_0000", "--id", "slip_0001", max_in_flight=1)
    _one_image_failed(res, message)


@pytest.mark.parametrize(("kind", "message"), [
    ("nan", "lines[0].score: nan is not a finite number"),
    ("inf", "lines[0].score: inf is not a finite number"),
    ("surrogate", "lines[0].text holds a lone surrogate U+D800"),
    ("float32", "lines[0].score is a float32, not a number"),
])
def test_an_engine_answer_the_report_cannot_hold_fails_that_image(tmp_path: Path, kind: str, message: str) -> None:
    cfg = inkbands_config(tmp_path, "inkbands", 'factory = "hostile_engines:HostileInkBands"')
    out = tmp_path / "out"
    res = run_cli(["run", "--config", str(cfg), "--profile", "t", "--id", IDS[0], "--id", IDS[1], "--out", str(out)],
                  env={**PLUGIN_ENV, "HOSTILE_IDS": IDS[0], "HOSTILE_KIND": kind}, out=out)
    _one_image_failed(res, f"unusable engine answer for {IDS[0]} (repeat 1): {message}")


# --- files: exit 2 naming file, field, problem ---------------------------------------------------------------------

@pytest.mark.parametrize(("table", "line", "field"), [
    ("tolerances", "score_abs = inf", "profiles.t.tolerances.score_abs: inf is not a finite number"),
    ("engine", "det_unclip_ratio = inf", "profiles.t.engine.det_unclip_ratio: inf is not a finite number"),
])
def test_non_finite_numbers_in_the_config_are_refused(tmp_path: Path, table: str, line: str, field: str) -> None:
    path = tmp_path / "harness.toml"
    path.write_text(f'[profiles.t]\ncorpus = "{CORPUS.as_posix()}"\n[profiles.t.{table}]\n{line}\n', encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_profile(path, "t", catalogue())
    assert str(e.value) == f"{path}: {field}"
    res = run_cli(["run", "--config", str(path), "--profile", "t", "--out", str(tmp_path / "out")])
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [f"ocr-harness: error: {path}: {field}"]


GOLDEN = ('{"schema_version": 1, "image_id": "a", "width": 10, "height": 10, '
          '"lines": [{"text": TEXT, "score": SCORE, "poly": [[0, 0], [1, 0], [1, 1]]}]}')


@pytest.mark.parametrize(("text", "score", "message"), [
    ('"x"', "NaN", "invalid JSON: NaN is not a number JSON allows"),
    ('"x"', "Infinity", "invalid JSON: Infinity is not a number JSON allows"),
    ('"x"', "-Infinity", "invalid JSON: -Infinity is not a number JSON allows"),
    ('"x"', "1e999", "lines[0].score: inf is not a finite number"),
    ('"x\\ud800"', "0.5", "lines[0].text: holds a lone surrogate U+D800 at character 1"),
])
def test_a_golden_the_report_cannot_hold_is_refused(text: str, score: str, message: str) -> None:
    with pytest.raises(UserError) as e:
        loads_golden(GOLDEN.replace("TEXT", text).replace("SCORE", score), "g/a.json")
    assert str(e.value).startswith(f"g/a.json: {message}")


def _approval(tmp_path: Path, baseline: str) -> Path:
    body = ('{"schema": "ocr-harness/approval/1", "golden_set": "g", "speed": {"p": {"approved_at": "t", '
            '"stack": {}, "selection": 1, "clock": "cpu", "images": {"a": {"cost_s": 1.0, "reference_s": 1.0, '
            '"latency_s": 1.0}}, ' + baseline + '}}}')
    (tmp_path / "_approval.json").write_text(body, encoding="utf-8")
    return tmp_path / "_approval.json"


@pytest.mark.parametrize(("baseline", "message"), [
    ('"peak_rss_kib": Infinity, "served_at_peak": 3', "Infinity is not a number JSON allows"),
    ('"peak_rss_kib": 1e999, "served_at_peak": 3', "speed.p.peak_rss_kib: inf is not a finite number"),
    ('"peak_rss_kib": 1000, "served_at_peak": Infinity', "Infinity is not a number JSON allows"),
    ('"peak_rss_kib": -793228, "served_at_peak": 3', "peak_rss_kib -793228 is not a whole number >= 1"),
    ('"peak_rss_kib": 1000, "served_at_peak": -1', "served_at_peak -1 is not a whole number >= 0"),
    ('"peak_rss_kib": 1000.5, "served_at_peak": 1', "peak_rss_kib 1000.5 is not a whole number >= 1"),
])
def test_an_approval_record_with_impossible_counts_is_refused(tmp_path: Path, baseline: str, message: str) -> None:
    path = _approval(tmp_path, baseline)
    with pytest.raises(UserError) as e:
        load_approval(tmp_path)
    assert str(e.value).startswith(str(path)) and message in str(e.value), str(e.value)


def test_a_sound_approval_record_loads(tmp_path: Path) -> None:
    _approval(tmp_path, '"peak_rss_kib": 1000, "served_at_peak": 3')
    approval = load_approval(tmp_path)
    assert approval is not None and approval.speed["p"][0].peak_rss_kib == 1000


def test_manifest_lines_with_values_the_report_cannot_hold_are_named(tmp_path: Path) -> None:
    first = json.loads((CORPUS / "manifest.jsonl").read_text(encoding="utf-8").split("\n")[0])
    first["file"] = str((CORPUS / first["file"]).resolve())
    good = json.dumps(first)
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("\n".join([good, good.replace('"id": "', '"id": "\\ud800'),
                                   good.replace('"lines": [', '"x": NaN, "lines": [')]) + "\n", encoding="utf-8")
    records, errors = parse_manifest(manifest)
    assert len(records) == 1
    assert errors[0].startswith(f"{manifest}:2: id: holds a lone surrogate U+D800")
    assert errors[1] == f"{manifest}:3: invalid JSON (NaN is not a number JSON allows)"


def test_a_shard_results_line_with_a_lone_surrogate_is_refused() -> None:
    line = '{"id": "a", "error": "bad \\udfff"}'
    with pytest.raises(UserError, match=r"^r.jsonl:4: error: holds a lone surrogate U\+DFFF"):
        check_results_line(line, "r.jsonl:4")


def test_value_problem_names_the_first_bad_leaf() -> None:
    assert value_problem({"a": [1.0, "ok", {"b": float("-inf")}]}) == ("a[2].b", "-inf is not a finite number")
    assert value_problem({"a": [1, 2.5, "x", None, True]}) is None
