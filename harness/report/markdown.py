"""summary.md: verdict first, then the smallest useful detail of each failure, then tables.

GitHub drops a step summary above 1 MiB, so the text is built against a byte budget: the verdict, the
check table and the accuracy/timing tables are always kept; failing images are added while they fit and
the rest become "... and N more".
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.model.outcome import CheckResult, ImageCheck
from harness.model.report import CheckLayout, ImageRecord, RunReport
from harness.report.formats import Rendering, ReportFormat
from harness.report.parity import markdown_section as parity_markdown
from harness.report.view import (
    LineChange,
    compact,
    diff_segments,
    divergence_text,
    environment_line,
    golden_changes,
    is_line_diffs,
    path_diffs,
    phase_rates,
    verdict_line,
)
from harness.util.atomic import write_text as atomic_write_text
from harness.util.markup import code_span

SUMMARY_CAP = 512 * 1024
GITHUB_CAP = 1024 * 1024
MAX_ROWS = 20  # changed lines / path differences shown per image
MAX_TABLE_ROWS = 40  # rows per accuracy table
_MD_SPECIAL = re.compile(r"[\\`*\[\]<>|~]|&(?=#?\w+;)|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])|^#")


def md(text: Any, limit: int = 200) -> str:
    """Text safe in a Markdown paragraph or table cell: one line, Markdown/HTML syntax backslash-escaped
    (an underscore inside a word is left alone, GFM never reads it as emphasis)."""
    s = " ".join(str(text).split()) if text is not None else ""
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), s)


def code(text: Any, limit: int = 200) -> str:
    """An identifier (image id, check, template, path) as a code span, safe in a table cell."""
    s = " ".join(str(text).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return code_span(s.replace("|", "\\|"))


def _diff_cell(a: str | None, b: str | None, side: int) -> str:
    if a is None or b is None:
        text = (a if side == 0 else b)
        return "∅" if text is None else md(text)
    runs = diff_segments(a[:200], b[:200])[side]
    return "".join(f"<b>{md(t)}</b>" if changed else md(t) for t, changed in runs) or "∅"


def _pct(x: Any) -> str:
    return f"{100 * x:.2f}%" if isinstance(x, (int, float)) else "n/a"


def _secs(x: Any) -> str:
    return f"{x:.3f} s" if isinstance(x, (int, float)) else "n/a"


def _changes_table(changes: Sequence[LineChange], left: str = "golden", right: str = "current") -> list[str]:
    out = [f"| line | kind | {md(left)} | {md(right)} | fields |", "|---:|---|---|---|---|"]
    for ch in changes[:MAX_ROWS]:
        idx = ch.golden_index if ch.golden_index is not None else ch.current_index
        fields = ", ".join(ch.critical + tuple(f for f in ch.fields if f not in ch.critical))
        before, after = _diff_cell(ch.golden_text, ch.current_text, 0), _diff_cell(ch.golden_text, ch.current_text, 1)
        out.append(f"| {'' if idx is None else idx} | {md(ch.kind)} | {before} | {after} | {md(fields)} |")
    if len(changes) > MAX_ROWS:
        out.append(f"| | ... and {len(changes) - MAX_ROWS} more lines | | | |")
    return out + [""]


def _check_detail(name: str, check: CheckResult | ImageCheck, layout: CheckLayout) -> list[str]:
    d = check.details
    out = [f"**{code(name)}**: {md(check.summary or check.status, 400)}", ""]
    failing = [ch for ch in golden_changes(d) if ch.failing] if is_line_diffs(d) else []
    paths = path_diffs(d)
    if failing:
        out += _changes_table(failing)
    elif isinstance(d.get("first_divergence"), Mapping):
        out += [f"first divergence: {md(divergence_text(d['first_divergence']), 400)}", ""]
    elif paths:
        for pd in paths:
            bad = [ch for ch in pd.changes if ch.failing]
            if pd.error:
                out += [f"{code(pd.label)} failed to run: {md(pd.error, 300)}", ""]
            elif bad:
                out += [f"{code(pd.label)} vs {code(pd.reference)}:", ""] + _changes_table(bad, pd.reference, pd.label)
    elif d and layout.lists_details(name):
        items = list(d.items())
        out += ["; ".join(f"{md(k)}: {md(compact(v, 120))}" for k, v in items[:8])
                + (f"; ... and {len(items) - 8} more" if len(items) > 8 else ""), ""]
    return out


def _image_chunk(r: RunReport, image: ImageRecord) -> str:
    head = f"#### ❌ {code(image.id)}"
    if image.template:
        head += f" · template {code(image.template)}"
    if image.tags:
        head += " · tags " + ", ".join(code(t) for t in image.tags)
    out = [head, ""]
    if image.file:
        out += [f"file: {code(image.file, 300)}", ""]
    if image.error:
        first = image.error.strip().splitlines()[0] if image.error.strip() else image.error
        out += [f"**error**: {md(first, 400)}", ""]
    for name, check in r.failed_checks_of(image):
        out += _check_detail(name, check, r.layout)
    return "\n".join(out) + "\n"


def _checks_table(r: RunReport) -> list[str]:
    if not r.ordered_checks:
        return []
    out = ["### Checks", "", "| check | status | failed images | summary |", "|---|---|---:|---|"]
    for c in r.ordered_checks:
        icon = {"passed": "✅", "failed": "❌", "skipped": "⏭️"}[c.status]
        out.append(f"| {code(c.name)} | {icon} {c.status} | {len(c.failed_images) or ''} | {md(c.summary, 300)} |")
    return out + [""]


def _acc_row(scope: str, a: Mapping[str, Any]) -> str:
    det = d if isinstance(d := a.get("det"), Mapping) else {}
    return (f"| {md(scope)} | {md(a.get('images', ''))} | {_pct(a.get('cer'))} | {_pct(a.get('line_exact_rate'))} | "
            f"{_pct(det.get('precision'))} | {_pct(det.get('recall'))} | {_pct(det.get('hmean'))} | "
            f"{_pct(a.get('field_accuracy'))} |")


def _accuracy_tables(acc: Mapping[str, Any] | None) -> list[str]:
    if not acc:
        return []
    out = ["### Accuracy", "", "| scope | images | CER | lines exact | det P | det R | det hmean | fields |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    if isinstance(acc.get("overall"), Mapping):
        out.append(_acc_row("overall", acc["overall"]))
    for group, label in (("by_template", "template"), ("by_tag", "tag")):
        rows = g if isinstance(g := acc.get(group), Mapping) else {}
        for name, a in list(rows.items())[:MAX_TABLE_ROWS]:
            if isinstance(a, Mapping):
                out.append(_acc_row(f"{label} {name}", a))
        if len(rows) > MAX_TABLE_ROWS:
            out.append(f"| ... and {len(rows) - MAX_TABLE_ROWS} more {label}s | | | | | | | |")
    fields = acc.get("by_field") if isinstance(acc.get("by_field"), Mapping) else {}
    if fields:
        out += ["", "| field | correct | total | accuracy |", "|---|---:|---:|---:|"]
        for name, f in list(fields.items())[:MAX_TABLE_ROWS]:
            if isinstance(f, Mapping):
                out.append(f"| {code(name)} | {md(f.get('correct'))} | {md(f.get('total'))} | "
                           f"{_pct(f.get('accuracy'))} |")
    return out + [""]


def _timing_table(t: Mapping[str, Any]) -> list[str]:
    if not t:
        return []
    out = ["### Timing", "", "| images | predict median | predict p90 | model load | wall |",
           "|---:|---:|---:|---:|---:|",
           f"| {md(t.get('images', ''))} | {_secs(t.get('predict_median_s'))} | {_secs(t.get('predict_p90_s'))} | "
           f"{_secs(t.get('model_load_s'))} | {_secs(t.get('wall_s'))} |", ""]
    rates = phase_rates(t)
    if rates:  # side by side: a slowdown within the speed check's threshold still shows here night after night
        out += ["| phase | images | calls per image | wall | images/s |", "|---|---:|---:|---:|---:|"]
        out += [f"| {code(r.phase)} | {r.images} | {r.calls_per_image} | {_secs(r.wall_s)} | {r.images_per_s:.2f} |"
                for r in rates]
        out.append("")
    return out


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def render_summary(r: RunReport, *, max_bytes: int = SUMMARY_CAP) -> str:
    head_lines = [f"## {'✅' if r.passed else '❌'} {md(verdict_line(r), 2000)}", ""]
    meta = [f"profile {code(r.profile_name)}" if r.profile_name else "",
            f"corpus {code(r.corpus.get('root'))}" if r.corpus.get("root") else "",
            f"subset {code(r.corpus.get('subset'))}" if r.corpus.get("subset") else "",
            "a subset of the corpus" if r.corpus.get("complete") is False else "",
            f"started {md(r.started_at)}" if r.started_at else "",
            f"{r.duration_s:.1f} s" if r.duration_s is not None else ""]
    if any(meta):
        head_lines += [" · ".join(m for m in meta if m), ""]
    head = "\n".join(head_lines) + "\n"
    tail = "\n".join(_checks_table(r) + parity_markdown(r) + _accuracy_tables(r.accuracy) + _timing_table(r.timing)
                     + [f"Environment: {md(environment_line(r.environment), 1000)}", ""])

    intro = ""
    if r.failed_checks:
        lines = ["### Failures", ""]
        for c in r.failed_checks:
            ids = ", ".join(code(i) for i in c.failed_images[:10])
            more = f" ... and {len(c.failed_images) - 10} more" if len(c.failed_images) > 10 else ""
            lines.append(f"- **{code(c.name)}**: {md(c.summary or 'failed', 400)}" + (f" ({ids}{more})" if ids else ""))
        intro = "\n".join(lines) + "\n\n"
    elif r.failed_images:
        intro = "### Failures\n\n"

    reserve = 200  # for the "... and N more" line
    if _size(head) + _size(tail) + reserve > max_bytes:  # pathological: tables alone too big
        tail = f"Environment: {md(environment_line(r.environment), 1000)}\n"
    used = _size(head) + _size(tail) + reserve
    body: list[str] = []
    if used + _size(intro) <= max_bytes:
        body.append(intro)
        used += _size(intro)
    failed = r.failed_images
    shown = 0
    for image in failed:  # chunks are built lazily: 20,000 failures must not cost 20,000 renders
        chunk = _image_chunk(r, image)
        if used + _size(chunk) > max_bytes:
            break
        body.append(chunk)
        used += _size(chunk)
        shown += 1
    if shown < len(failed):
        body.append(f"... and {len(failed) - shown} more failing images (see report.html / report.json)\n\n")
    text = head + "".join(body) + tail
    if _size(text) > max_bytes:  # a single huge head: keep the verdict, cut the rest
        cut = text.encode("utf-8")[: max_bytes - 64].decode("utf-8", "ignore")
        text = cut.rsplit("\n", 1)[0] + "\n\n... (truncated)\n"
    return text


def write_step_summary(report: RunReport, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append the summary to $GITHUB_STEP_SUMMARY if set, within what is left of GitHub's 1 MiB."""
    env = os.environ if environ is None else environ
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    existing = path.stat().st_size if path.exists() else 0
    budget = min(SUMMARY_CAP, GITHUB_CAP - existing - 1024)
    if budget < 1024:
        text = f"## {'✅' if report.passed else '❌'} {md(verdict_line(report), 500)}\n"
    else:
        text = render_summary(report, max_bytes=budget)
    with path.open("a", encoding="utf-8") as f:
        f.write(("\n" if existing else "") + text)
    return path


SUMMARY_MD = "summary.md"


def write(r: Rendering, asked: Any) -> dict[str, Path]:
    return {"summary": atomic_write_text(r.out / SUMMARY_MD, render_summary(r.report))}


FORMAT = ReportFormat("summary", write, files=(SUMMARY_MD,))
