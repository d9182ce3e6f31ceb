"""The one entry that writes a run's report files; each file appears atomically or not at all.

report.json first, then every registered report format the run asked for (harness.report.formats; the built-in
ones are registered here, in the order they are written).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.model.report import CheckLayout, RunReport
from harness.model.results import OcrResult, canonical_json
from harness.report import history, html, junit, markdown
from harness.report.formats import ImageLoader, Rendering, check_asked, formats, register, wanted
from harness.util.atomic import write_text as atomic_write_text

for _format in (junit.FORMAT, markdown.FORMAT, html.FORMAT, history.FORMAT):
    register(_format)

REPORT_JSON = "report.json"
RESULTS_JSONL = "results.jsonl"
TRACEBACK_TXT = "traceback.txt"


def run_files() -> tuple[str, ...]:
    """What one run writes into --out; every run removes them first, so no file of an earlier run survives next
    to this run's (a CI step reading junit.xml after a run that stopped early must not see the last run's PASS)."""
    return REPORT_JSON, *(name for fmt in formats() for name in fmt.files), RESULTS_JSONL, TRACEBACK_TXT


RUN_FILES = run_files()  # with the built-in formats


def clear_run_files(out_dir: Path | str) -> None:
    """Removes an earlier run's files from `out_dir` (nothing else in it); a missing dir is fine."""
    out = Path(out_dir)
    if not out.is_dir():
        return
    for name in run_files():
        path = out / name
        if path.is_file() or path.is_symlink():
            path.unlink()


def write_reports(out_dir: Path | str, report: RunReport, results: Mapping[str, OcrResult],
                  image_loader: ImageLoader, *, layout: CheckLayout, goldens: Mapping[str, OcrResult] | None = None,
                  complete: bool = True, **asked: Any) -> dict[str, Path]:
    """report.json (`report` serialised), then every format without a flag (junit.xml,
    summary.md) and each one `asked` names with its flag's value (`html=True`, `history=PATH`), rendered from the
    typed report laid out by the catalogue's `layout`. `complete=False` (a run that stopped early) leaves out
    the formats only finished runs write (the history). Returns {kind: path}."""
    out = Path(out_dir)
    unknown = set(asked) - {fmt.name for fmt in formats()}
    if unknown:  # a bug in the caller: a format that does not exist would silently not be written
        raise TypeError(f"no report format {sorted(unknown)[0]!r}")
    check_asked(asked)  # before anything is written
    out.mkdir(parents=True, exist_ok=True)
    # report.json first: if a renderer has a bug, the data is still on disk.
    written = {"json": atomic_write_text(out / REPORT_JSON, canonical_json(report.to_dict()))}
    rendering = Rendering(out, report.laid_out(layout), results, image_loader, goldens or {})
    for fmt in formats():
        value = wanted(fmt, asked)
        if value not in (None, False) and (complete or not fmt.complete_only):
            written.update(fmt.write(rendering, value))
    return written
