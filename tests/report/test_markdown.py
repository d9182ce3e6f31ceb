from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from conftest import typed

from harness.report.markdown import SUMMARY_CAP, md, render_summary, write_step_summary
from tools.screenshots.sample import sample_run


def failing_report(n: int) -> dict[str, Any]:
    images = [{"id": f"slip_{i:05d}", "file": f"x/slip_{i:05d}.png", "template": "icbc", "tags": ["scan"],
               "passed": False, "error": None,
               "checks": {"golden": {"passed": False, "summary": "2 lines changed", "details": {"lines": [
                   {"kind": "changed", "golden_index": k, "golden_text": f"付款人账号 6222 0212 {i:04d} 789{k}",
                    "current_text": f"付款人账号 6222 0212 {i:04d} 788{k}", "failed": ["text"]} for k in range(2)]}}}}
              for i in range(n)]
    return {"schema": "ocr-harness/report/1", "passed": False, "exit_code": 1, "images": images,
            "checks": {"golden": {"passed": False, "summary": f"{n} of {n} images differ",
                                  "failed_images": [i["id"] for i in images]}},
            "timing": {"images": n, "predict_median_s": 0.4, "predict_p90_s": 0.5, "model_load_s": 2, "wall_s": 9000},
            "environment": {"python": "3.11.9"}}


def test_verdict_first_and_details() -> None:
    report, *_ = sample_run()
    text = render_summary(typed(report))
    first = text.splitlines()[0]
    assert first.startswith("## ❌ FAIL: 2 of 3 images failed")
    assert "golden (1)" in first and "batch_paths (1)" in first
    assert "first divergence: repeat 3, line 4, score: 0.9871 → 0.9712 (delta 0.0159)" in text
    assert "AMOUNT CNY 12,345.6<b>7</b>" in text and "AMOUNT CNY 12,345.6<b>1</b>" in text
    # A batch path against the reference path, the path names heading the columns (real compare_paths output).
    assert "`bs1` vs `profile`:" in text and "| line | kind | profile | bs1 | fields |" in text
    assert "PAYEE 6217 0000 1111 222<b>2</b> | PAYEE 6217 0000 1111 222<b>3</b> | payee_account, text" in text
    # order: failures, then checks, accuracy, timing, environment
    idx = [text.index(s) for s in ("### Failures", "### Checks", "### Accuracy", "### Timing", "Environment: ")]
    assert idx == sorted(idx)


def test_pass_verdict() -> None:
    text = render_summary(typed({"passed": True, "images": [{"id": "a", "passed": True}], "checks": {
        "golden": {"passed": True}, "bn_drift": {"passed": True, "skipped": True}}}))
    assert text.splitlines()[0] == "## ✅ PASS: 1 images, 1 checks passed (1 skipped)"
    assert "### Failures" not in text


def test_size_cap_with_20000_failures() -> None:
    report = failing_report(20_000)
    start = time.perf_counter()
    text = render_summary(typed(report))
    assert time.perf_counter() - start < 10
    size = len(text.encode("utf-8"))
    assert size <= SUMMARY_CAP
    assert size > SUMMARY_CAP // 2  # the budget is used, not thrown away
    assert text.startswith("## ❌ FAIL: 20000 of 20000 images failed")
    assert "more failing images (see report.html / report.json)" in text
    assert "### Timing" in text and "slip_00000" in text


def test_tiny_budget_keeps_verdict() -> None:
    text = render_summary(typed(failing_report(50)), max_bytes=600)
    assert len(text.encode("utf-8")) <= 600
    assert text.startswith("## ❌ FAIL: 50 of 50 images failed")


def test_markdown_escaping_keeps_tables_intact() -> None:
    assert md("a|b") == "a\\|b"
    assert md("*x* _y_ snake_case <img>") == "\\*x\\* \\_y\\_ snake_case \\<img\\>"
    report = failing_report(1)
    report["images"][0]["checks"]["golden"]["details"]["lines"][0]["golden_text"] = "A|B|C\nD"
    row = next(line for line in render_summary(typed(report)).splitlines() if line.startswith("| 0 |"))
    assert row.replace("\\|", "").count("|") == 6  # 5 cells


def test_generic_details_for_unknown_checks() -> None:
    report = {"passed": False, "images": [{"id": "a", "passed": False, "checks": {
        "new_check": {"passed": False, "summary": "odd", "details": {"ratio": 0.123456789, "where": [1, 2]}}}}]}
    text = render_summary(typed(report))
    assert "ratio: 0.123457; where: \\[1, 2\\]" in text


def test_step_summary_appends_only_when_set(tmp_path: Path) -> None:
    report, *_ = sample_run()
    assert write_step_summary(typed(report), environ={}) is None
    target = tmp_path / "step_summary.md"
    target.write_text("earlier step\n", encoding="utf-8")
    assert write_step_summary(typed(report), environ={"GITHUB_STEP_SUMMARY": str(target)}) == target
    text = target.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n") and "## ❌ FAIL" in text


def test_step_summary_respects_what_is_left_of_1_mib(tmp_path: Path) -> None:
    target = tmp_path / "step_summary.md"
    target.write_bytes(b"x" * (1024 * 1024 - 1500))
    write_step_summary(typed(failing_report(100)), environ={"GITHUB_STEP_SUMMARY": str(target)})
    assert target.stat().st_size <= 1024 * 1024
    assert "FAIL" in target.read_text(encoding="utf-8")[-500:]
