"""The typed run report (harness.model.report): what the runner writes reads back unchanged, and a report of an
older version (before exit codes, incomplete runs, image indexes, where an image was judged, phase timings and
per-image accuracy were recorded) still reads and renders."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

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
    assert [c.name for c in report.outcomes] == ["golden", "repeat"]
    assert [i.id for i in report.failed_images] == ["b"] and report.image_outcomes[1].lines is None
    assert verdict_line(report) == "FAIL: 1 of 2 images failed; checks failed: golden (1)"
    suites = ET.fromstring(render_junit(report).encode("utf-8"))
    assert suites.get("failures") == "2" and suites.get("time") == "12.500"
    assert "| `golden` | ❌ failed |" in render_summary(report)
    assert "line 2 changed" in render_html(report, {}, lambda image_id: None)


def test_the_layout_orders_checks_and_says_which_details_to_list() -> None:
    report = RunReport.from_dict(older_report(), CheckLayout(("repeat", "golden"), frozenset({"golden"})))
    assert [c.name for c in report.outcomes] == ["repeat", "golden"]
    assert not report.layout.lists_details("golden") and report.layout.lists_details("unknown")
    assert report.layout.key("unknown") == (2, "unknown")
    # Never written: report.json is the same whatever the renderers are handed.
    assert "layout" not in report.to_dict()
