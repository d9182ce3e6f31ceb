"""The typed run report (harness.model.report): what the runner writes reads back unchanged, and a report of an
older version (before exit codes, incomplete runs, image indexes, where an image was judged, phase timings and
per-image accuracy were recorded) still reads and renders."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness.checks import registry
from harness.model.report import CheckLayout, RunReport
from harness.model.results import canonical_json
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.markdown import render_summary
from tools.screenshots.sample import sample_run
from harness.report.view import verdict_line


def older_report() -> dict[str, Any]:
    """A report as an older ocr-harness wrote it: fewer sections, fewer keys per image, no phases."""
    check = {"passed": False, "skipped": False, "summary": "1 of 2 images differ from their golden: b",
             "failed_images": ["b"], "details": {}}
    return {
        "schema": "ocr-harness/report/1", "passed": False, "started_at": "2024-05-01T02:00:00+00:00",
        "duration_s": 12.5, "profile": {"name": "nightly"}, "environment": {"python": "3.11.4"},
        "corpus": {"root": "datasets/bank_slips", "selected": 2},
        # Written in another order than the catalogue's (golden before repeat): readers order by the catalogue.
        "checks": {"repeat": {**check, "passed": True, "summary": "all 2 images clean", "failed_images": []},
                   "golden": check},
        "images": [{"id": "a", "file": "a.png", "passed": True, "error": None, "tags": [],
                    "checks": {"golden": {"passed": True, "summary": "identical"}}},
                   {"id": "b", "file": "b.png", "passed": False, "error": None, "tags": ["scan"],
                    "checks": {"golden": {"passed": False, "summary": "line 2 changed"}}}],
        "accuracy": None, "timing": {"wall_s": 12.5},
        "newer_section": {"kept": True},  # a key this version does not know
    }


def test_what_a_run_writes_reads_back_unchanged() -> None:
    written, *_ = sample_run()
    report = RunReport.from_dict(written, registry.layout())
    assert canonical_json(report.to_dict()) == canonical_json(written)


def test_an_older_report_reads_and_renders() -> None:
    report = RunReport.from_dict(older_report(), registry.layout())
    assert report.exit_code is None and report.complete and report.stack == {}
    assert report.extra == {"newer_section": {"kept": True}}
    # Report order is the catalogue's (golden before repeat), not the file's.
    assert [c.name for c in report.ordered_checks] == ["golden", "repeat"]
    assert [i.id for i in report.failed_images] == ["b"] and report.images[1].lines is None
    assert verdict_line(report) == "FAIL: 1 of 2 images failed; checks failed: golden (1)"
    suites = ET.fromstring(render_junit(report).encode("utf-8"))
    assert suites.get("failures") == "2" and suites.get("time") == "12.500"
    assert "| `golden` | ❌ failed |" in render_summary(report)
    assert "line 2 changed" in render_html(report, {}, lambda image_id: None)


def test_the_layout_orders_checks_and_says_which_details_to_list() -> None:
    report = RunReport.from_dict(older_report(), CheckLayout(("repeat", "golden"), frozenset({"golden"})))
    assert [c.name for c in report.ordered_checks] == ["repeat", "golden"]
    assert not report.layout.lists_details("golden") and report.layout.lists_details("unknown")
    assert report.layout.key("unknown") == (2, "unknown")
    # Never written: report.json is the same whatever the renderers are handed.
    assert "layout" not in report.to_dict()


# --- every report this version wrote reads back whole; any other shape reads without crashing ------------------

REFERENCE = Path(__file__).resolve().parents[1] / "reference_reports"


def lost(written: Any, again: Any, where: str = "") -> list[str]:
    """Where `again` does not hold what `written` holds. The references leave out what is volatile
    (tests/test_report_reference.py), which a report read back writes again as empty: more keys, never fewer."""
    if isinstance(written, dict):
        if not isinstance(again, dict):
            return [where]
        return [w for k, v in written.items() for w in (lost(v, again[k], f"{where}.{k}") if k in again
                                                        else [f"{where}.{k}"])]
    if isinstance(written, list):
        if not isinstance(again, list) or len(again) != len(written):
            return [where]
        return [w for n, (v, x) in enumerate(zip(written, again)) for w in lost(v, x, f"{where}[{n}]")]
    return [] if written == again and type(written) is type(again) else [where]


REFERENCES = sorted(p.name for p in REFERENCE.glob("*.json"))


def test_the_reference_reports_are_found() -> None:
    assert REFERENCES == ["nightly-2.json", "release.json"]


@pytest.mark.parametrize("name", REFERENCES)
def test_every_reference_report_reads_back_with_nothing_lost(name: str) -> None:
    written = json.loads((REFERENCE / name).read_text(encoding="utf-8"))
    again = json.loads(canonical_json(RunReport.from_dict(written, registry.layout()).to_dict()))
    assert lost(written, again) == []
    assert lost({"checks": {"golden": {"summary": "x"}}}, again) == [".checks.golden.summary"]  # it can fail
    for name, check in written["checks"].items():  # and a check's typed details (harness.model.details) too
        spec = registry.get(name)
        if spec is not None and spec.details is not None and "details" in check and not check["skipped"]:
            assert json.loads(canonical_json(spec.details(check["details"], name).to_dict())) == check["details"]


def test_a_report_of_another_shape_reads_renders_and_keeps_what_it_does_not_know() -> None:
    odd = {"schema": "ocr-harness/report/1", "passed": False, "duration_s": "12 s", "timing": [],
           "future_section": {"x": 1},  # a section of a newer version; `stack`, `corpus`, `accuracy` are missing
           "checks": {"golden": {"passed": False, "summary": "changed", "judged": "many", "failed_images": "b",
                                 "details": [1, 2], "future_key": 3}},
           "images": [{"id": "b", "tags": "scan", "lines": "2", "accuracy": {"cer": "high", "det": None},
                       "checks": {"golden": "not a verdict", "mine": {"passed": True, "judged": "yes"}}},
                      "not an image"]}
    report = RunReport.from_dict(odd, registry.layout())
    assert report.extra == {"future_section": {"x": 1}}
    assert report.duration_s is None and report.timing == {} and report.stack == {} and report.accuracy is None
    golden = report.checks["golden"]
    assert (golden.judged, golden.failed_images, golden.details, golden.extra) == (0, [], {}, {"future_key": 3})
    image = report.images[0]
    assert image.tags == () and image.lines is None and image.accuracy is not None and image.accuracy.cer == 0.0
    assert not image.checks["golden"].passed and image.checks["mine"].judged is True
    assert report.images[1].id == "?"
    assert "changed" in render_summary(report) and "golden" in render_junit(report)
    assert "changed" in render_html(report, {}, lambda image_id: None)
    written = report.to_dict()
    assert written["future_section"] == {"x": 1} and written["checks"]["golden"]["future_key"] == 3
    assert RunReport.from_dict(written, registry.layout()).to_dict() == written  # read once, it stays put
