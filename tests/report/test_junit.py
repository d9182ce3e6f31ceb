from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from conftest import typed

from harness.report.junit import MODEL_CASE, render_junit
from tools.screenshots.sample import sample_run


def parse(report: dict[str, Any]) -> ET.Element:
    return ET.fromstring(render_junit(typed(report)).encode("utf-8"))


def test_one_case_per_image_and_check_plus_model_cases() -> None:
    report, *_ = sample_run()
    root = parse(report)
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    assert ("golden", "slip_0001") in cases and ("golden", "slip_0003") in cases
    assert ("batch_paths", "slip_0002") in cases
    for check in report["checks"]:
        assert (check, MODEL_CASE) in cases
    assert cases[("bn_drift", MODEL_CASE)].find("skipped") is not None
    repeat = cases[("repeat", "slip_0001")].find("failure")
    assert repeat is not None and "first divergence: repeat 3, line 4" in (repeat.text or "")
    assert int(root.get("tests", 0)) == len(cases)
    assert int(root.get("failures", 0)) == sum(c.find("failure") is not None for c in cases.values())


def test_everything_is_escaped() -> None:
    nasty = 'a<b>&"\'\x00\x1b]]><!--'
    report = {"passed": False, "exit_code": 1,
              "checks": {"golden": {"passed": False, "summary": nasty, "failed_images": [nasty]}},
              "images": [{"id": nasty, "passed": False, "checks": {"golden": {
                  "passed": False, "summary": nasty,
                  "details": {"lines": [{"kind": "changed", "golden_index": 0, "golden_text": nasty,
                                         "current_text": "\ud800"}]}}}}]}
    root = parse(report)
    names = {c.get("name") for c in root.iter("testcase")}
    assert 'a<b>&"\'\ufffd\ufffd]]><!--' in names
    failures = [f.get("message") for f in root.iter("failure")]
    assert 'a<b>&"\'\ufffd\ufffd]]><!--' in failures


def test_image_error_is_a_junit_error() -> None:
    report = {"passed": False, "exit_code": 1, "checks": {},
              "images": [{"id": "broken", "passed": False, "error": "cannot decode image\ntraceback...", "checks": {}}]}
    root = parse(report)
    err = root.find(".//testcase[@classname='inference'][@name='broken']/error")
    assert err is not None and err.get("message") == "cannot decode image"
    assert root.get("errors") == "1"


def test_failed_run_without_failing_check_is_still_red() -> None:
    root = parse({"passed": False, "exit_code": 1})
    assert root.get("failures") == "1"
    assert root.find(".//testcase[@name='(verdict)']/failure") is not None


def test_passing_run() -> None:
    root = parse({"passed": True, "exit_code": 0, "checks": {"audit": {"passed": True, "summary": "ok"}}})
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("1", "0", "0")
