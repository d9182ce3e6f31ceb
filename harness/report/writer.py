"""The one entry that writes a run's report files; each file appears atomically or not at all."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness.model.report import CheckLayout, RunReport
from harness.model.results import OcrResult, canonical_json
from harness.report.history import append_history, check_history_path, plot_history
from harness.report.html import ImageLoader, render_html
from harness.report.junit import render_junit
from harness.report.markdown import render_summary
from harness.util.atomic import write_text as atomic_write_text

REPORT_JSON = "report.json"
JUNIT_XML = "junit.xml"
SUMMARY_MD = "summary.md"
REPORT_HTML = "report.html"
RESULTS_JSONL = "results.jsonl"
TRACEBACK_TXT = "traceback.txt"
# What one run writes into --out; every run removes them first, so no file of an earlier run survives next to
# this run's (a CI step reading junit.xml after a run that stopped early must not see the last run's PASS).
RUN_FILES = (REPORT_JSON, JUNIT_XML, SUMMARY_MD, REPORT_HTML, RESULTS_JSONL, TRACEBACK_TXT)


def clear_run_files(out_dir: Path | str) -> None:
    """Removes an earlier run's files from `out_dir` (nothing else in it); a missing dir is fine."""
    out = Path(out_dir)
    if not out.is_dir():
        return
    for name in RUN_FILES:
        path = out / name
        if path.is_file() or path.is_symlink():
            path.unlink()


def write_reports(out_dir: Path | str, report: RunReport, results: Mapping[str, OcrResult],
                  image_loader: ImageLoader, *, layout: CheckLayout, html: bool = True,
                  history: Path | str | None = None, goldens: Mapping[str, OcrResult] | None = None) -> dict[str, Path]:
    """report.json (`report` serialised), then junit.xml, summary.md, optionally report.html, rendered from the
    same typed report laid out by the catalogue's `layout`; ``history`` is a JSONL file to append to (its trend
    plot is written next to it as <name>.png). Returns {kind: path}."""
    out = Path(out_dir)
    if history is not None:
        check_history_path(history)  # before anything is written
    out.mkdir(parents=True, exist_ok=True)
    # report.json first: if a renderer has a bug, the data is still on disk.
    written = {"json": atomic_write_text(out / REPORT_JSON, canonical_json(report.to_dict()))}
    typed = report.laid_out(layout)
    written["junit"] = atomic_write_text(out / JUNIT_XML, render_junit(typed))
    written["summary"] = atomic_write_text(out / SUMMARY_MD, render_summary(typed))
    if html:
        page = render_html(typed, results, image_loader, goldens=goldens)
        written["html"] = atomic_write_text(out / REPORT_HTML, page)
    if history is not None:
        history = Path(history)
        append_history(history, typed)
        written["history"] = history
        written["history_plot"] = plot_history(history, history.with_suffix(".png"))
    return written
