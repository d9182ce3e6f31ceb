"""The backend parity table (and a service's settings differences) for summary.md and report.html.

Rows come from the `parity` check's details: per backend, how many images were identical / within / beyond the
parity tolerances, the largest score delta and text differences, and latency side by side with the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.model.report import RunReport
from harness.util.markup import code_span

HEADER = ("backend", "images", "identical", "within", "beyond", "failed", "max score delta", "max CER",
          "text differences", "latency median", "latency p90")


def _num(x: Any, fmt: str) -> str:
    return format(x, fmt) if isinstance(x, (int, float)) and not isinstance(x, bool) else "–"


def parity_rows(report: RunReport) -> list[tuple[str, ...]]:
    """One row for the reference, one per compared backend; empty when parity did not run."""
    check = report.checks.get("parity") or {}
    d = check.get("details") or {}
    if check.get("skipped") or not isinstance(d.get("paths"), Mapping):
        return []
    latency = d.get("latency") or {}
    ref = str(d.get("reference"))
    lat = latency.get(ref) or {}
    rows: list[tuple[str, ...]] = [(f"{ref} (reference)", _num(lat.get("images"), "d"), "", "", "", "", "", "", "",
             _num(lat.get("median_s"), ".3f") + " s", _num(lat.get("p90_s"), ".3f") + " s")]
    for label, s in d["paths"].items():
        req = s.get("required_tolerances") or {}
        lat = latency.get(label) or {}
        rows.append((label, _num(lat.get("images"), "d"), _num(s.get("identical"), "d"), _num(s.get("within"), "d"),
                     _num(s.get("beyond"), "d"), _num(s.get("failed_to_run"), "d"), _num(req.get("score_abs"), ".3g"),
                     _num(req.get("text_max_cer"), ".3g"), _num(s.get("text_differences"), "d"),
                     _num(lat.get("median_s"), ".3f") + " s", _num(lat.get("p90_s"), ".3f") + " s"))
    return rows


def served_differences(report: RunReport) -> list[Mapping[str, Any]]:
    check = report.checks.get("served_settings") or {}
    return list((check.get("details") or {}).get("differences") or [])


def _cell(value: object) -> str:
    # What a service reports is not ours: one line, pipes escaped, in a span its backticks cannot end.
    return code_span(" ".join(str(value).split()).replace("|", "\\|"))


def markdown_section(report: RunReport) -> list[str]:
    out: list[str] = []
    diffs = served_differences(report)
    if diffs:
        out += ["### Service settings differ from the profile", "", "| setting | profile | service |", "|---|---|---|"]
        out += [f"| {_cell(d.get('key'))} | {_cell(repr(d.get('profile')))} | {_cell(repr(d.get('service')))} |"
                for d in diffs] + [""]
    rows = parity_rows(report)
    if rows:
        out += ["### Backend parity", "", "| " + " | ".join(HEADER) + " |",
                "|---|" + "---:|" * (len(HEADER) - 1)]
        out += ["| " + " | ".join(r) + " |" for r in rows] + [""]
    return out


def html_section(report: RunReport, esc: Any) -> str:
    out: list[str] = []
    diffs = served_differences(report)
    if diffs:
        out.append("<h2>Service settings differ from the profile</h2><table><tr><th>setting</th><th>profile</th>"
                   "<th>service</th></tr>")
        out += [f"<tr><td>{esc(d.get('key'))}</td><td>{esc(repr(d.get('profile')))}</td>"
                f"<td>{esc(repr(d.get('service')))}</td></tr>" for d in diffs]
        out.append("</table>")
    rows = parity_rows(report)
    if rows:
        out.append("<h2>Backend parity</h2><table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in HEADER) + "</tr>")
        out += ["<tr>" + "".join(f"<td class='num'>{esc(c)}</td>" if i else f"<td>{esc(c)}</td>"
                                 for i, c in enumerate(r)) + "</tr>" for r in rows]
        out.append("</table>")
    return "\n".join(out)
