"""report.html: one self-contained page (inline CSS, pictures as JPEG data URIs, no script, no network).

Summary tables first, then every image, failing ones first and open: the slip with current boxes (green;
orange where the text changed) and the golden boxes of changed/missing lines (magenta), golden vs current text
side by side with the changed characters marked, and the details of every failing check.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.model.outcome import CheckResult, ImageCheck
from harness.model.report import ImageRecord, RunReport
from harness.model.results import OcrResult
from harness.report.formats import ImageLoader, Rendering, ReportFormat
from harness.report.html_picture import picture
from harness.report.parity import html_section as parity_html
from harness.report.view import (
    LineChange,
    compact,
    diff_segments,
    environment_line,
    golden_changes,
    is_line_diffs,
    path_diffs,
    phase_rates,
    verdict_line,
)
from harness.util.atomic import write_text as atomic_write_text

MAX_PICTURES = 100

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","Microsoft YaHei",sans-serif;
 margin:0 auto;max-width:1400px;padding:0 16px 40px;color:#1d1d1f;background:#fff}
h1{font-size:22px;margin:0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:16px;margin:0;display:inline}
.verdict{padding:14px 18px;margin:16px 0;border-radius:6px;color:#fff}
.verdict.pass{background:#1f883d}.verdict.fail{background:#cf222e}.verdict p{margin:4px 0 0;opacity:.92}
table{border-collapse:collapse;margin:6px 0 12px}th,td{border:1px solid #d0d7de;padding:3px 8px;
 text-align:left;vertical-align:top}th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.passed{color:#1f883d;font-weight:600}.failed{color:#cf222e;font-weight:600}.skipped{color:#8c959f;font-weight:600}
details.image{border:1px solid #d0d7de;border-radius:6px;margin:10px 0;padding:8px 12px}
details.image.bad{border-color:#cf222e}summary{cursor:pointer}
.cols{display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start;margin-top:8px}
figure{margin:0;flex:1 1 480px;max-width:760px}figure img{max-width:100%;border:1px solid #d0d7de}
.cols>div{flex:1 1 420px;min-width:0;overflow-x:auto}figcaption{font-size:12px;color:#57606a}
.sw{display:inline-block;width:12px;height:12px;vertical-align:middle;margin:0 3px 0 10px}
table.text td.t{font-family:ui-monospace,"Noto Sans Mono CJK SC",monospace;white-space:pre-wrap}
tr.changed td{background:#fff8c5}tr.within td{background:#ddf4ff}tr.missing td{background:#ffebe9}
tr.extra td{background:#dafbe1}
tr.same td.t{color:#57606a}mark.del{background:#ff8182}mark.ins{background:#4ac26b}
pre{background:#f6f8fa;padding:8px;white-space:pre-wrap;overflow-wrap:anywhere}
dl.kv{margin:4px 0;display:grid;grid-template-columns:max-content auto;gap:2px 12px}dl.kv dt{font-weight:600}
dl.kv dd{margin:0;overflow-wrap:anywhere}.muted{color:#57606a}
"""


def e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _pct(x: Any) -> str:
    return f"{100 * x:.2f}%" if isinstance(x, (int, float)) else "n/a"


def _secs(x: Any) -> str:
    return f"{x:.3f} s" if isinstance(x, (int, float)) else "n/a"


def _status(c: CheckResult | ImageCheck) -> str:
    return f'<span class="{c.status}">{c.status}</span>'


# --- text side by side -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Row:
    kind: str  # same | changed | missing | extra | current
    golden_index: int | None
    golden_text: str | None
    current_index: int | None
    current_text: str | None
    fields: tuple[str, ...] = ()


def _rows(result: OcrResult | None, changes: Sequence[LineChange],
          golden: OcrResult | None) -> tuple[list[_Row], set[int]]:
    """Golden and current lines paired; also the current indices whose text changed."""
    current = list(result.texts) if result is not None else []
    # Changed lines without a current_index are placed on the first unused current line with their text.
    used: set[int] = set()
    placed: dict[int, LineChange] = {}
    for change in changes:
        if change.kind in ("changed", "extra", "within"):
            idx = change.current_index
            if idx is None or idx >= len(current) or idx in used:
                idx = next((i for i, t in enumerate(current) if t == change.current_text and i not in used), None)
            if idx is not None:
                used.add(idx)
                placed[idx] = change
    rows: list[_Row] = []
    if golden is not None:
        by_golden = {ch.golden_index: ch for ch in changes if ch.golden_index is not None}
        cur_of = {id(ch): i for i, ch in placed.items()}
        for g, line in enumerate(golden.lines):
            ch = by_golden.get(g)
            if ch is None:
                rows.append(_Row("same", g, line.text, None, line.text))
            elif ch.kind == "missing":
                rows.append(_Row("missing", g, ch.golden_text or line.text, None, None, ch.fields))
            else:
                rows.append(_Row(ch.kind, g, ch.golden_text or line.text, cur_of.get(id(ch)), ch.current_text,
                                 ch.fields))
        rows += [_Row("extra", None, None, cur_of.get(id(ch)), ch.current_text, ch.fields)
                 for ch in changes if ch.kind == "extra"]
        return rows, {i for i, ch in placed.items() if ch.failing}
    for i, text in enumerate(current):
        ch = placed.get(i)
        if ch is None:
            rows.append(_Row("same" if changes else "current", None, text if changes else None, i, text))
        else:
            rows.append(_Row(ch.kind, ch.golden_index, ch.golden_text, i, ch.current_text, ch.fields))
    placed_ids = {id(ch) for ch in placed.values()}
    rows += [_Row(ch.kind, ch.golden_index, ch.golden_text, None, ch.current_text, ch.fields)
             for ch in changes if id(ch) not in placed_ids]
    return rows, {i for i, ch in placed.items() if ch.failing}


def _marked(runs: list[tuple[str, bool]], cls: str) -> str:
    return "".join(f'<mark class="{cls}">{e(t)}</mark>' if changed else e(t) for t, changed in runs)


def _text_table(rows: Sequence[_Row]) -> str:
    if not rows:
        return '<p class="muted">no text lines</p>'
    golden_cols = any(r.kind != "current" for r in rows)
    out = ['<table class="text"><tr>' + ("<th>#g</th><th>golden</th>" if golden_cols else "")
           + "<th>current</th><th>#</th>" + ("<th>fields</th>" if golden_cols else "") + "</tr>"]
    for r in rows:
        g, c = r.golden_text, r.current_text
        if r.kind in ("changed", "within") and g is not None and c is not None:
            left, right = diff_segments(g, c)
            gt, ct = _marked(left, "del"), _marked(right, "ins")
        else:
            gt = e(g) if g is not None else '<span class="muted">∅</span>'
            ct = e(c) if c is not None else '<span class="muted">∅</span>'
        cells = (f'<td class="num">{e(r.golden_index)}</td><td class="t">{gt}</td>' if golden_cols else "") \
            + f'<td class="t">{ct}</td><td class="num">{e(r.current_index)}</td>' \
            + (f"<td>{e(', '.join(r.fields))}</td>" if golden_cols else "")
        out.append(f'<tr class="{r.kind}">{cells}</tr>')
    return "\n".join(out) + "</table>"


# --- check details ---------------------------------------------------------------------------------

def _generic(value: Any, depth: int = 0) -> str:
    if isinstance(value, Mapping) and value and depth < 3:
        items = list(value.items())
        body = "".join(f"<dt>{e(k)}</dt><dd>{_generic(v, depth + 1)}</dd>" for k, v in items[:50])
        more = f"<dt>…</dt><dd>{len(items) - 50} more</dd>" if len(items) > 50 else ""
        return f'<dl class="kv">{body}{more}</dl>'
    return e(compact(value, 500))


def _divergence(d: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(compact(v, 300))}</td></tr>" for k, v in d.items())
    return f"<table>{rows}</table>"


def _changes_table(changes: Sequence[LineChange], left: str, right: str) -> str:
    out = [f'<table class="text"><tr><th>#</th><th>kind</th><th>{e(left)}</th><th>{e(right)}</th><th>fields</th></tr>']
    for ch in changes[:200]:
        g, c = ch.golden_text, ch.current_text
        if g is not None and c is not None:
            left_runs, right_runs = diff_segments(g, c)
            gt, ct = _marked(left_runs, "del"), _marked(right_runs, "ins")
        else:
            gt = e(g) if g is not None else '<span class="muted">∅</span>'
            ct = e(c) if c is not None else '<span class="muted">∅</span>'
        idx = ch.golden_index if ch.golden_index is not None else ch.current_index
        out.append(f'<tr class="{e(ch.kind)}"><td class="num">{e(idx)}</td><td>{e(ch.kind)}</td><td class="t">{gt}</td>'
                   f'<td class="t">{ct}</td><td>{e(", ".join(ch.critical + ch.fields))}</td></tr>')
    out.append("</table>")
    if len(changes) > 200:
        out.append(f'<p class="muted">... and {len(changes) - 200} more</p>')
    return "".join(out)


def _check_section(name: str, c: CheckResult | ImageCheck) -> str:
    head = f"<h4>{e(name)}: {_status(c)} <span class='muted'>{e(c.summary)}</span></h4>"
    d = c.details
    if is_line_diffs(d):  # the golden lines are in the side-by-side table
        rest = {k: v for k, v in d.items() if k not in ("lines", "summary", "image_id", "passed")}
        return head + (_generic(rest) if rest else "")
    if isinstance(d.get("first_divergence"), Mapping):
        rest = {k: v for k, v in d.items() if k != "first_divergence"}
        return head + "<p>first divergence</p>" + _divergence(d["first_divergence"]) + (_generic(rest) if rest else "")
    paths = path_diffs(d)
    if paths:
        out = [head]
        for pd in paths:
            if pd.identical:
                out.append(f"<p class='muted'>{e(pd.label)}: identical to {e(pd.reference)}</p>")
                continue
            out.append(f"<h5>{e(pd.label)} vs {e(pd.reference)}</h5>")
            if pd.error:
                out.append(f"<pre>{e(pd.error)}</pre>")
            if pd.changes:
                out.append(_changes_table(pd.changes, pd.reference, pd.label))
            if pd.info:
                out.append(_generic(pd.info))
        return "".join(out)
    return head + (_generic(d) if d else "")


# --- page ------------------------------------------------------------------------------------------

def _summary_tables(r: RunReport) -> str:
    out = []
    if r.ordered_checks:
        out.append("<h2>Checks</h2><table><tr><th>check</th><th>status</th><th>failed images</th><th>summary</th></tr>")
        for c in r.ordered_checks:
            out.append(f"<tr><td>{e(c.name)}</td><td>{_status(c)}</td><td class='num'>{len(c.failed_images) or ''}</td>"
                       f"<td>{e(c.summary)}</td></tr>")
        out.append("</table>")
    out.append(parity_html(r, e))
    acc = r.accuracy
    if acc:
        out.append("<h2>Accuracy</h2><table><tr><th>scope</th><th>images</th><th>CER</th><th>lines exact</th>"
                   "<th>det P</th><th>det R</th><th>det hmean</th><th>fields</th></tr>")
        groups = [("overall", {"": acc.get("overall")})] + [
            (label, g if isinstance(g := acc.get(key), Mapping) else {})
            for key, label in (("by_template", "template"), ("by_tag", "tag"))]
        for label, rows in groups:
            for name, a in rows.items():
                if not isinstance(a, Mapping):
                    continue
                det = d if isinstance(d := a.get("det"), Mapping) else {}
                out.append(f"<tr><td>{e(label)} {e(name)}</td><td class='num'>{e(a.get('images'))}</td>"
                           + "".join(f"<td class='num'>{_pct(v)}</td>" for v in (
                               a.get("cer"), a.get("line_exact_rate"), det.get("precision"), det.get("recall"),
                               det.get("hmean"), a.get("field_accuracy"))) + "</tr>")
        out.append("</table>")
        fields = acc.get("by_field") if isinstance(acc.get("by_field"), Mapping) else {}
        if fields:
            out.append("<table><tr><th>field</th><th>correct</th><th>total</th><th>accuracy</th></tr>")
            for name, f in fields.items():
                if isinstance(f, Mapping):
                    out.append(f"<tr><td>{e(name)}</td><td class='num'>{e(f.get('correct'))}</td>"
                               f"<td class='num'>{e(f.get('total'))}</td>"
                               f"<td class='num'>{_pct(f.get('accuracy'))}</td></tr>")
            out.append("</table>")
    t = r.timing
    if t:
        out.append("<h2>Timing</h2><table><tr><th>images</th><th>predict median</th><th>predict p90</th>"
                   "<th>model load</th><th>wall</th></tr>"
                   f"<tr><td class='num'>{e(t.get('images'))}</td>"
                   f"<td class='num'>{_secs(t.get('predict_median_s'))}</td>"
                   f"<td class='num'>{_secs(t.get('predict_p90_s'))}</td>"
                   f"<td class='num'>{_secs(t.get('model_load_s'))}</td>"
                   f"<td class='num'>{_secs(t.get('wall_s'))}</td></tr></table>")
        rates = phase_rates(t)
        if rates:
            out.append("<table><tr><th>phase</th><th>images</th><th>calls per image</th><th>wall</th>"
                       "<th>images/s</th></tr>" + "".join(
                           f"<tr><td>{e(r.phase)}</td><td class='num'>{r.images}</td>"
                           f"<td class='num'>{r.calls_per_image}</td><td class='num'>{_secs(r.wall_s)}</td>"
                           f"<td class='num'>{r.images_per_s:.2f}</td></tr>" for r in rates) + "</table>")
    if r.environment:
        out.append(f"<h2>Environment</h2><p>{e(environment_line(r.environment))}</p>")
        env_vars = r.environment.get("env")
        if isinstance(env_vars, Mapping) and env_vars:
            out.append(_generic(env_vars))
        redacted = r.environment.get("env_redacted")
        if isinstance(redacted, list) and redacted:
            out.append(f"<p class='muted'>Also set, values not recorded: {e(', '.join(map(str, redacted)))}</p>")
    return "\n".join(out)


def _image_section(n: int, r: RunReport, image: ImageRecord, result: OcrResult | None, golden: OcrResult | None,
                   loader: ImageLoader, embed: bool) -> str:
    checks = r.image_checks(image)
    golden_check = image.checks.get("golden")
    changes = golden_changes(golden_check.details) if golden_check is not None and is_line_diffs(golden_check.details) \
        else ()
    rows, changed_current = _rows(result, changes, golden)
    bad = not image.ok
    badges = ", ".join(f"{e(name)}" for name, c in checks if not c.passed)
    head = (f"<summary><h3>{e(image.id)}</h3> <span class='{'failed' if bad else 'passed'}'>"
            f"{'FAIL' if bad else 'pass'}</span> {('· ' + badges) if badges else ''}"
            f"{' · template ' + e(image.template) if image.template else ''}"
            f"{' · tags ' + e(', '.join(image.tags)) if image.tags else ''}</summary>")
    parts = [f'<details class="image{" bad" if bad else ""}" id="img-{n}"{" open" if bad else ""}>', head]
    meta = [f"file {e(image.file)}" if image.file else "", f"{image.lines} lines" if image.lines is not None else "",
            f"predict {_secs(image.predict_s)}" if image.predict_s is not None else ""]
    parts.append(f"<p class='muted'>{' · '.join(m for m in meta if m)}</p>")
    if image.error:
        parts.append(f"<pre>{e(image.error)}</pre>")
    fig = ""
    if embed:
        try:
            img = loader(image.id)
        except Exception as exc:  # a missing or unreadable file must not cost the whole report
            img, fig = None, f'<p class="muted">picture not available: {e(exc)}</p>'
        if img is not None:
            uri = picture(img, result, changes, golden, changed_current)
            fig = (f'<figure><img alt="{e(image.id)}" src="{uri}"><figcaption>'
                   f'<span class="sw" style="background:#28a028"></span>current'
                   f'<span class="sw" style="background:#ff8c00"></span>current, text changed'
                   f'<span class="sw" style="background:#d200d2"></span>golden (changed/missing)</figcaption></figure>')
    parts.append(f'<div class="cols">{fig}<div>{_text_table(rows)}</div></div>')
    for name, c in checks:
        if not c.passed:
            parts.append(_check_section(name, c))
    passed = [name for name, c in checks if c.passed]
    if passed:
        parts.append(f"<p class='muted'>passed: {e(', '.join(passed))}</p>")
    parts.append("</details>")
    return "\n".join(parts)


def render_html(r: RunReport, results: Mapping[str, OcrResult], image_loader: ImageLoader, *,
                goldens: Mapping[str, OcrResult] | None = None, max_pictures: int = MAX_PICTURES) -> str:
    """The whole page. ``goldens`` (optional) supplies golden boxes and the unchanged golden lines."""
    images = r.images_failing_first()
    verdict = "pass" if r.passed else "fail"
    meta = " · ".join(x for x in (
        "ocr-harness report", f"profile {r.profile_name}" if r.profile_name else "",
        f"corpus {r.corpus.get('root')}" if r.corpus.get("root") else "",
        f"subset {r.corpus.get('subset')}" if r.corpus.get("subset") else "",
        f"started {r.started_at}" if r.started_at else "",
        f"{r.duration_s:.1f} s" if r.duration_s is not None else "") if x)
    parts = ["<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
             f"<title>ocr-harness: {e(verdict.upper())}</title>",
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<style>{_CSS}</style></head><body>",
             f'<div class="verdict {verdict}"><h1>{e(verdict_line(r))}</h1><p>{e(meta)}</p></div>',
             _summary_tables(r)]
    if images:
        parts.append(f"<h2>Images ({len(r.failed_images)} failing of {len(images)})</h2>")
        parts.append("<table><tr><th>image</th><th>status</th><th>failed checks</th><th>template</th></tr>")
        for n, image in enumerate(images[:500]):
            failed = ", ".join(name for name, _ in r.failed_checks_of(image)) or ("error" if image.error else "")
            parts.append(f"<tr><td><a href='#img-{n}'>{e(image.id)}</a></td>"
                         + ("<td class='passed'>pass</td>" if image.ok else "<td class='failed'>FAIL</td>")
                         + f"<td>{e(failed)}</td>"
                         f"<td>{e(image.template)}</td></tr>")
        parts.append("</table>")
        if len(images) > 500:
            parts.append(f"<p class='muted'>... and {len(images) - 500} more below</p>")
        for n, image in enumerate(images):
            parts.append(_image_section(n, r, image, results.get(image.id), (goldens or {}).get(image.id),
                                        image_loader, embed=n < max_pictures))
        if len(images) > max_pictures:
            parts.append(f"<p class='muted'>pictures embedded for the first {max_pictures} images only</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


REPORT_HTML = "report.html"


def write(r: Rendering, asked: Any) -> dict[str, Path]:
    page = render_html(r.report, r.results, r.image_loader, goldens=r.goldens)
    return {"html": atomic_write_text(r.out / REPORT_HTML, page)}


FORMAT = ReportFormat("html", write, files=(REPORT_HTML,), flag="--html", flag_help="also write report.html",
                      needs_goldens=True)
