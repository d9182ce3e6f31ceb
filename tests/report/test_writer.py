"""A planted regression (one changed golden line) must be visible in every report format."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from harness.checks import registry
from harness.checks.golden_check import golden_check
from harness.execution.state import RunState
from harness.golden.status import GoldenStatus
from harness.golden.store import Golden
from harness.model.corpus import CorpusItem
from harness.model.inference import ImageOutcome
from harness.model.report import RunReport
from harness.model.results import Line, OcrResult, canonical_json
from harness.model.settings import Profile
from harness.model.timing import timing_summary
from harness.run.pipeline.build_report import image_record
from harness.report import formats, html, writer
from harness.report.writer import write_reports
from harness.util.atomic import write_text as atomic_write_text

GOLDEN_TEXT = "小写金额 ¥12,345.67"
CURRENT_TEXT = "小写金额 ¥12,345.61"


def planted() -> tuple[RunReport, dict[str, OcrResult], dict[str, np.ndarray]]:
    """A run of two slips whose amount changed on one, made by the producers a run calls (the golden check,
    the run's image records): the report has exactly the keys a run writes."""
    img = np.full((200, 400, 3), 255, np.uint8)
    cv2.putText(img, "12,345.61", (20, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
    head = Line("转账凭证", 0.99, ((10, 10), (150, 10), (150, 40), (10, 40)))
    poly = ((10, 70), (200, 70), (200, 110), (10, 110))
    results = {"slip_0042": OcrResult("slip_0042", 400, 200, (head, Line(CURRENT_TEXT, 0.98, poly))),
               "slip_0043": OcrResult("slip_0043", 400, 200, (head,))}
    goldens = {"slip_0042": Golden(OcrResult("slip_0042", 400, 200, (head, Line(GOLDEN_TEXT, 0.98, poly)))),
               "slip_0043": Golden(results["slip_0043"])}
    items = [CorpusItem("slip_0042", Path("a/slip_0042.png"), None, "icbc", ("scan",), (), {"amount": "12345.67"}),
             CorpusItem("slip_0043", Path("a/slip_0043.png"), None, "icbc", (), ())]
    outcomes = {i: ImageOutcome(i, (r,), predict_s=(0.4,), read_s=0.01) for i, r in results.items()}
    profile = Profile(name="ci")
    status = GoldenStatus(profile="ci", selected=2, missing=(), orphaned=(), orphans_judged=False, has_meta=True,
                          stack_differences=(), likely_cause=None)
    state = RunState(outcomes=outcomes, checks={"golden": golden_check(items, outcomes, "profile", goldens, profile,
                                                                        status)})
    report = RunReport(
        passed=all(c.passed for c in state.checks.values()), started_at="2024-03-06T02:00:00+00:00",
        duration_s=12.5, profile={"name": "ci", "settings": profile.settings_dict()},
        environment={"python": "3.11.9", "paddle": "3.2.2", "paddleocr": "3.7.0"}, stack={},
        corpus={"root": "corpus", "subset": "smoke", "selected": 2, "complete": False, "has_manifest": True},
        checks={name: c.as_reported() for name, c in state.checks.items()},
        images=tuple(image_record(it, n, str(it.path), state) for n, it in enumerate(items)), accuracy=None,
        timing=timing_summary([0.4, 0.4], [2.0], 12.5))
    return report, results, {"slip_0042": img, "slip_0043": img}


def test_planted_regression_in_every_format(tmp_path: Path) -> None:
    report, results, images = planted()
    written = write_reports(tmp_path, report, results, images.get, layout=registry.layout(), html=True,
                            history=tmp_path / "history.jsonl")
    assert set(written) == {"json", "junit", "summary", "html", "history", "history_plot"}

    text = (tmp_path / "report.json").read_text(encoding="utf-8")
    assert text == canonical_json(report.to_dict()) == canonical_json(RunReport.from_dict(json.loads(text)).to_dict())
    assert GOLDEN_TEXT in text  # ensure_ascii=False: the Chinese is readable in the file

    root = ET.parse(tmp_path / "junit.xml").getroot()
    case = root.find(".//testcase[@classname='golden'][@name='slip_0042']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == report.images[0].checks["golden"].summary
    assert GOLDEN_TEXT in (failure.text or "") and CURRENT_TEXT in (failure.text or "")
    assert root.find(".//testcase[@name='slip_0043']/failure") is None

    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert summary.splitlines()[0].startswith("## ❌ FAIL: 1 of 2 images failed")
    plain = re.sub(r"<[^>]+>", "", summary)
    assert "slip_0042" in plain and GOLDEN_TEXT in plain and CURRENT_TEXT in plain
    assert "slip_0043" not in summary.split("### Checks")[0]  # passing images are not failures

    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.index("slip_0042") < html.index("slip_0043")
    assert '<tr class="changed">' in html
    assert '<mark class="del">7</mark>' in html and '<mark class="ins">1</mark>' in html
    assert "data:image/jpeg;base64," in html

    (entry,) = [json.loads(x) for x in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert entry["failures"] == {"golden": 1} and entry["passed"] is False
    assert (tmp_path / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_failing_renderer_leaves_json_and_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report, results, images = planted()

    def broken(*_a: Any, **_k: Any) -> str:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(html, "render_html", broken)
    with pytest.raises(RuntimeError, match="renderer bug"):
        write_reports(tmp_path, report, results, images.get, layout=registry.layout(), html=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml", "report.json", "summary.md"]


def test_minimal_report_without_optional_sections(tmp_path: Path) -> None:
    report = RunReport.from_dict({"schema": "ocr-harness/report/1", "passed": True, "exit_code": 0,
                                  "something_new": [1, 2]})
    write_reports(tmp_path, report, {}, lambda _id: None, layout=registry.layout(), html=True)
    assert (tmp_path / "summary.md").read_text(encoding="utf-8").startswith("## ✅ PASS")
    ET.parse(tmp_path / "junit.xml")
    assert "PASS" in (tmp_path / "report.html").read_text(encoding="utf-8")


def line_dict(text: str, poly: tuple[tuple[int, int], ...]) -> dict[str, Any]:
    return {"text": text, "score": 0.98, "poly": [list(p) for p in poly]}


def test_comparison_shaped_details(tmp_path: Path) -> None:
    """Details as the golden comparison and the determinism/path checks write them (LineDiff.to_dict,
    expected/actual divergences, per-path line diffs) render like the documented short forms."""
    typed, results, images = planted()
    report = typed.to_dict()
    poly = ((10, 70), (200, 70), (200, 110), (10, 110))
    changed = {"kind": "changed", "golden_index": 1, "current_index": 1, "golden_text": GOLDEN_TEXT,
               "current_text": CURRENT_TEXT, "golden": line_dict(GOLDEN_TEXT, poly),
               "current": line_dict(CURRENT_TEXT, poly), "failed": ["text"], "drifted": ["text", "score"],
               "cer": 0.1, "max_shift_px": 0.0, "iou": 1.0, "score_delta": -0.01, "key_fields": ["amount"],
               "critical": True}
    within = {**changed, "kind": "within", "golden_index": 0, "current_index": 0, "golden_text": "转账凭证",
              "current_text": "转账凭证", "failed": [], "critical": False, "key_fields": []}
    img = report["images"][0]
    img["checks"]["golden"]["details"] = {"image_id": "slip_0042", "passed": False, "summary": "slip_0042: FAIL",
                                          "counts": {"changed": 1, "within": 1}, "lines": [within, changed]}
    img["checks"]["repeat"] = {"passed": False, "summary": "repeat 2 vs 1: line 1 score", "details": {
        "first_divergence": {"repeat": 2, "line": 1, "field": "score", "expected": 0.98, "actual": 0.97, "delta": 0.01}}}
    img["checks"]["batch_paths"] = {"passed": False, "summary": "batch4 vs single: line 1", "details": {
        "reference": "single", "paths": {"batch4": {"identical": False, "passed": False, "lines": [changed]},
                                         "threads1": {"identical": True}}}}
    write_reports(tmp_path, RunReport.from_dict(report), results, images.get, layout=registry.layout(), html=True)

    junit = ET.parse(tmp_path / "junit.xml").getroot()
    golden_failure = junit.find(".//testcase[@classname='golden'][@name='slip_0042']/failure")
    assert golden_failure is not None and "critical: amount" in (golden_failure.text or "")
    assert "转账凭证" not in (golden_failure.text or "")  # drift within tolerance is not a failure
    paths_failure = junit.find(".//testcase[@classname='batch_paths'][@name='slip_0042']/failure")
    assert paths_failure is not None and f"batch4 vs single: changed line 1: single {GOLDEN_TEXT!r}" in (paths_failure.text or "")

    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "first divergence: repeat 2, line 1, score: 0.98 → 0.97 (delta 0.01)" in summary
    assert "| 1 | changed | 小写金额 ¥12,345.6<b>7</b> | 小写金额 ¥12,345.6<b>1</b> | amount, text |" in summary
    assert "`batch4` vs `single`:" in summary and "threads1" not in summary

    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<tr class="within">' in html and '<tr class="changed">' in html
    assert "<h5>batch4 vs single</h5>" in html and "threads1: identical to single" in html


def test_a_check_with_its_own_detail_keys_renders_everywhere(tmp_path: Path) -> None:
    """A check's details are its own (a registered check may call a count "lines"): every renderer shows them,
    none assumes a shape it does not know. Found by the dummy check (tests/dummy_check.py)."""
    check = {"passed": False, "summary": "3 lines (need 10)", "details": {"lines": 3, "paths": 2}}
    report = {"schema": "ocr-harness/report/1", "passed": False, "exit_code": 1,
              "checks": {"mine": {"passed": False, "skipped": False, "summary": "1 of 1 images read too few lines: a",
                                  "failed_images": ["a"], "details": {"lines": 3}}},
              "images": [{"id": "a", "passed": False, "error": None, "checks": {"mine": check}}]}
    written = write_reports(tmp_path, RunReport.from_dict(report), {}, lambda image_id: None,
                            layout=registry.layout(), html=True)
    assert "lines: 3" in written["junit"].read_text(encoding="utf-8")
    assert "lines: 3" in written["summary"].read_text(encoding="utf-8")
    assert "<dt>lines</dt><dd>3</dd><dt>paths</dt><dd>2</dd>" in written["html"].read_text(encoding="utf-8")


def test_a_report_format_is_one_module_registered_with_its_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """A format of its own (one file of the checks' verdicts), registered like the built-in ones: its flag is on
    the commands that write reports, the writer writes it only when asked, and a run clears its file first."""
    import argparse

    def write_verdicts(r: formats.Rendering, asked: Any) -> dict[str, Path]:
        lines = "".join(f"{c.name}\t{'pass' if c.passed else 'fail'}\n" for c in r.report.ordered_checks)
        return {"verdicts": atomic_write_text(r.out / "verdicts.tsv", lines)}

    monkeypatch.setattr(formats, "_FORMATS", dict(formats._FORMATS))  # the real registry is back after the test
    formats.register(formats.ReportFormat("verdicts", write_verdicts, files=("verdicts.tsv",), flag="--verdicts",
                                          flag_help="also write verdicts.tsv"))
    parser = argparse.ArgumentParser()
    formats.add_flags(parser)
    assert formats.asked_by(parser.parse_args(["--verdicts"])) == {"html": False, "history": None, "verdicts": True}
    report, results, images = planted()
    written = write_reports(tmp_path / "a", report, results, images.get, layout=registry.layout())
    assert "verdicts" not in written and not (tmp_path / "a" / "verdicts.tsv").exists()  # not asked
    written = write_reports(tmp_path / "b", report, results, images.get, layout=registry.layout(), verdicts=True)
    names = [line.split("\t")[0] for line in written["verdicts"].read_text(encoding="utf-8").splitlines()]
    assert names and names == [c for c in registry.layout().order if c in names]  # the report's own order
    assert "verdicts.tsv" in writer.run_files()
    writer.clear_run_files(tmp_path / "b")
    assert not (tmp_path / "b" / "verdicts.tsv").exists()
    with pytest.raises(TypeError, match="no report format 'verdict'"):  # a caller's typo is not silently dropped
        write_reports(tmp_path / "c", report, results, images.get, layout=registry.layout(), verdict=True)


def test_a_run_that_stopped_early_appends_no_history(tmp_path: Path) -> None:
    report, results, images = planted()
    history = tmp_path / "history.jsonl"
    written = write_reports(tmp_path / "out", report, results, images.get, layout=registry.layout(),
                            history=history, complete=False)
    assert "history" not in written and not history.exists() and "junit" in written
    write_reports(tmp_path / "out", report, results, images.get, layout=registry.layout(), history=history)
    assert len(history.read_text(encoding="utf-8").splitlines()) == 1
