"""JUnit XML for CI test tabs: one testsuite per check, one testcase per image, plus "(model)".

classname = check, name = image id; the model-level verdict of each check is the testcase "(model)".
An image that could not be read or run at all fails an "inference" testcase with an <error>.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.model.outcome import CheckResult, ImageCheck
from harness.model.report import RunReport
from harness.report.formats import Rendering, ReportFormat
from harness.report.view import (
    LineChange,
    compact,
    divergence_text,
    environment_line,
    golden_changes,
    is_line_diffs,
    path_diffs,
)
from harness.util.atomic import write_text as atomic_write_text

MODEL_CASE = "(model)"
_MAX_BODY = 4000
# XML 1.0 forbids most control characters and lone surrogates even when escaped.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def change_text(ch: LineChange, left: str = "golden", right: str = "current") -> str:
    idx = ch.golden_index if ch.golden_index is not None else ch.current_index
    return (f"{ch.kind} line {idx if idx is not None else '-'}: {left} {ch.golden_text!r} / {right} {ch.current_text!r}"
            + (f" [{', '.join(ch.fields)}]" if ch.fields else "")
            + (f" critical: {', '.join(ch.critical)}" if ch.critical else ""))


def _body(check: CheckResult | ImageCheck) -> str:
    """The smallest useful detail of one failure, as plain text."""
    d = check.details
    lines: list[str] = []
    if is_line_diffs(d):
        lines += [change_text(ch) for ch in golden_changes(d) if ch.failing]
    elif isinstance(d.get("first_divergence"), Mapping):
        lines.append("first divergence: " + divergence_text(d["first_divergence"]))
    elif path_diffs(d):
        for pd in path_diffs(d):
            if pd.error:
                lines.append(f"{pd.label}: failed to run: {pd.error}")
            lines += [f"{pd.label} vs {pd.reference}: " + change_text(ch, pd.reference, pd.label)
                      for ch in pd.changes if ch.failing]
    if not lines:
        lines = [f"{k}: {compact(v)}" for k, v in d.items()]
    if check.failed_images:
        lines.append(f"failed images ({len(check.failed_images)}): " + ", ".join(check.failed_images[:50])
                     + (" ..." if len(check.failed_images) > 50 else ""))
    text = "\n".join(lines)
    return text if len(text) <= _MAX_BODY else text[:_MAX_BODY] + f"\n... ({len(text) - _MAX_BODY} more characters)"


def _case(suite: ET.Element, classname: str, name: str, check: CheckResult | ImageCheck,
          time: float | None = None) -> str:
    case = ET.SubElement(suite, "testcase", classname=_clean(classname), name=_clean(name))
    if time is not None:
        case.set("time", f"{time:.3f}")
    if check.skipped:
        ET.SubElement(case, "skipped", message=_clean(check.summary or "skipped"))
        return "skipped"
    if not check.passed:
        el = ET.SubElement(case, "failure", message=_clean(check.summary or "failed"), type=classname)
        el.text = _clean(_body(check))
        return "failure"
    return "passed"


def render_junit(r: RunReport) -> str:
    root = ET.Element("testsuites", name="ocr-harness")
    names = [c.name for c in r.ordered_checks]
    for image in r.images:
        names += [name for name, _ in r.image_checks(image) if name not in names]
    if any(i.error for i in r.images) and "inference" not in names:
        names.insert(0, "inference")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for name in names:
        suite = ET.SubElement(root, "testsuite", name=_clean(name))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        model = r.checks.get(name)
        if model is not None:
            outcome = _case(suite, name, MODEL_CASE, model)
            counts["tests"] += 1
            counts["failures"] += outcome == "failure"
            counts["skipped"] += outcome == "skipped"
        for image in r.images:
            check = image.checks.get(name)
            if name == "inference" and image.error:
                case = ET.SubElement(suite, "testcase", classname="inference", name=_clean(image.id))
                ET.SubElement(case, "error", message=_clean(image.error.splitlines()[0] if image.error else "error"),
                              type="ImageError").text = _clean(image.error)
                counts["tests"] += 1
                counts["errors"] += 1
                continue
            if check is None:
                continue
            time = image.predict_s if name == "inference" else None
            outcome = _case(suite, name, image.id, check, time)
            counts["tests"] += 1
            counts["failures"] += outcome == "failure"
            counts["skipped"] += outcome == "skipped"
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
    if not r.passed and totals["failures"] + totals["errors"] == 0:
        # The run failed without a failing check (e.g. the runner stopped early): CI must still see red.
        suite = ET.SubElement(root, "testsuite", name="run", tests="1", failures="1", errors="0", skipped="0")
        case = ET.SubElement(suite, "testcase", classname="run", name="(verdict)")
        ET.SubElement(case, "failure", message=f"run failed (exit code {r.exit_code})", type="run")
        totals["tests"] += 1
        totals["failures"] += 1
    for k, v in totals.items():
        root.set(k, str(v))
    if r.duration_s is not None:
        root.set("time", f"{r.duration_s:.3f}")
    for suite in root.findall("testsuite"):
        props = ET.Element("properties")
        for key, value in (("profile", r.profile_name), ("started_at", r.started_at),
                           ("environment", environment_line(r.environment)),
                           ("verdict", "passed" if r.passed else "failed")):
            ET.SubElement(props, "property", name=key, value=_clean(value))
        suite.insert(0, props)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


JUNIT_XML = "junit.xml"


def write(r: Rendering, asked: Any) -> dict[str, Path]:
    return {"junit": atomic_write_text(r.out / JUNIT_XML, render_junit(r.report))}


FORMAT = ReportFormat("junit", write, files=(JUNIT_XML,))
