"""Nightly history: one JSON line per run, and a trend plot (failures, CER, latency) drawn with Pillow."""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from harness.model.results import canonical_line
from harness.model.report import RunReport
from harness.report.formats import Rendering, ReportFormat
from harness.report.view import VERSION_KEYS, phase_rates, speed_ratio
from harness.util.atomic import write_bytes as atomic_write_bytes
from harness.util.errors import UserError
from harness.util.jsonl import jsonl_lines
from harness.util.values import no_constant, value_problem

HISTORY_SCHEMA = "ocr-harness/history/1"


def history_entry(r: RunReport) -> dict[str, Any]:
    failures: dict[str, int] = {c.name: 0 for c in r.ordered_checks}
    for image in r.images:
        for name, _ in r.failed_checks_of(image):
            failures[name] = failures.get(name, 0) + 1
    for c in r.failed_checks:  # a model-level failure with no image attached still counts once
        failures[c.name] = max(failures.get(c.name, 0), len(c.failed_images), 1)
    overall = (r.accuracy or {}).get("overall")
    cer = overall.get("cer") if isinstance(overall, Mapping) else None
    return {
        "schema": HISTORY_SCHEMA,
        "time": r.started_at or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "passed": r.passed,
        "exit_code": r.exit_code,
        "profile": r.profile_name or None,
        "subset": r.corpus.get("subset"),
        "images": len(r.images),
        "failed_images": len(r.failed_images),
        "failures": dict(sorted(failures.items())),
        "cer": cer if isinstance(cer, (int, float)) else None,
        "predict_median_s": r.timing.get("predict_median_s"),
        "predict_p90_s": r.timing.get("predict_p90_s"),
        # The trend a nightly shows even within the speed check's threshold: the main pass's throughput and the
        # median image's cost ratio against the approved baseline (None: not judged that night).
        "images_per_s": next((p.images_per_s for p in phase_rates(r.timing) if p.phase == "main"), None),
        "speed_ratio": speed_ratio(r.ordered_checks),
        "versions": {k: r.environment[k] for k in VERSION_KEYS if r.environment.get(k) is not None},
        "cpu_model": r.environment.get("cpu_model"),
    }


def check_history_path(path: Path | str) -> Path:
    """The history is JSONL and its plot goes next to it as <name>.png: a .png history would be overwritten by
    its own plot, and a directory cannot take lines."""
    path = Path(path)
    if path.suffix.lower() == ".png":
        raise UserError(f"--history {path}: give the JSONL history file (e.g. {path.with_suffix('.jsonl')}); "
                        "its trend plot is written next to it as <name>.png")
    if path.is_dir():
        raise UserError(f"--history {path}: is a directory; give the JSONL history file")
    return path


def append_history(path: Path | str, report: RunReport) -> dict[str, Any]:
    """Append this run's entry; the file is rewritten atomically so a crash never leaves half a line."""
    path = Path(path)
    entry = history_entry(report)
    old = path.read_bytes() if path.exists() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    atomic_write_bytes(path, old + (canonical_line(entry) + "\n").encode("utf-8"))
    return entry


def read_history(path: Path | str) -> list[dict[str, Any]]:
    """All entries in file order; unreadable lines (a hand edit, an older tool) are skipped."""
    entries = []
    for _, line in jsonl_lines(Path(path).read_text(encoding="utf-8")):
        try:
            d = json.loads(line, parse_constant=no_constant)
        except ValueError:  # JSONDecodeError, NaN, Infinity
            continue
        if isinstance(d, dict) and value_problem(d) is None:
            entries.append(d)
    return entries


# --- plot ------------------------------------------------------------------------------------------

W, H = 1200, 1160
LEFT, RIGHT, TOP = 90, 30, 60
PANEL_H, GAP = 190, 50
INK, GRID, MUTED = (30, 30, 30), (225, 225, 225), (110, 110, 110)
RED, GREEN, BLUE, LIGHT_BLUE = (207, 34, 46), (31, 136, 61), (9, 105, 218), (140, 190, 240)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def _nice_max(x: float) -> float:
    if x <= 0 or not math.isfinite(x):
        return 1.0
    exp: float = 10 ** math.floor(math.log10(x))
    return next(m * exp for m in (1, 2, 2.5, 5, 10) if m * exp >= x)


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _fmt(v: float) -> str:
    return f"{v:.3g}" if v < 10 else f"{v:.0f}"


Series = tuple[str, Sequence[float | None], tuple[int, int, int], str]  # name, values, colour, 'bar' | 'line'


def _panel(draw: ImageDraw.ImageDraw, top: int, title: str, series: Sequence[Series], n: int, font: Any, small: Any,
           integer: bool = False) -> None:
    x0, x1, y0, y1 = LEFT, W - RIGHT, top, top + PANEL_H
    values = [v for _, vals, _, _ in series for v in vals if v is not None]
    vmax = _nice_max(max(values) if values else 0.0)
    if integer:
        vmax = max(1.0, math.ceil(vmax))
    draw.text((x0, y0 - 26), title, fill=INK, font=font)
    for k in range(5):  # horizontal grid with y labels
        level = vmax * k / 4
        y = y1 - (y1 - y0) * k / 4
        draw.line([(x0, y), (x1, y)], fill=GRID, width=1)
        label = f"{level:.0f}" if integer and level == int(level) else _fmt(level)
        if integer and level != int(level):
            continue
        tw = draw.textlength(label, font=small)
        draw.text((x0 - 8 - tw, y - 8), label, fill=MUTED, font=small)
    draw.line([(x0, y0), (x0, y1), (x1, y1)], fill=INK, width=1)
    step = (x1 - x0) / max(n, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return x0 + step * (i + 0.5), y1 - (y1 - y0) * (v / vmax)

    lx: float = x1
    for name, vals, colour, style in reversed(series):  # legend, right-aligned
        tw = draw.textlength(name, font=small)
        lx -= tw + 30
        draw.rectangle([lx, y0 - 20, lx + 12, y0 - 8], fill=colour)
        draw.text((lx + 16, y0 - 24), name, fill=INK, font=small)
    for name, vals, colour, style in series:
        if style == "bar":
            bw = max(1.0, min(30.0, step * 0.7))
            for i, v in enumerate(vals):
                if v is not None:
                    x, y = xy(i, v)
                    draw.rectangle([x - bw / 2, min(y, y1 - 1), x + bw / 2, y1], fill=colour)
            continue
        run: list[tuple[float, float]] = []
        for i, v in enumerate(list(vals) + [None]):
            if v is None:  # a gap: no CER or no timing recorded that night
                if len(run) > 1:
                    draw.line(run, fill=colour, width=2)
                run = []
                continue
            p = xy(i, v)
            run.append(p)
            draw.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=colour)


def _date_label(t: Any) -> str:
    s = str(t or "")
    return s[:10] if len(s) >= 10 else s


def plot_history(path: Path | str, png_path: Path | str, *, last: int | None = 120) -> Path:
    """Four panels over runs: failing images (red bars for failed runs), CER (%), predict median/p90 (s), and the
    speed check's ratio against its approved baseline."""
    entries = read_history(path)
    if last is not None:
        entries = entries[-last:]
    n = len(entries)
    img = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(img)
    font, small, big = _font(16), _font(13), _font(20)
    span = (f"{_date_label(entries[0].get('time'))} to {_date_label(entries[-1].get('time'))}" if entries
            else "no runs yet")
    draw.text((LEFT, 14), f"ocr-harness history: {n} runs, {span}", fill=INK, font=big)
    failed = [_num(e.get("failed_images")) for e in entries]
    top = TOP + 40
    _panel(draw, top, "Failing images per run", [
        ("failed run", [v if not e.get("passed") else None for v, e in zip(failed, entries)], RED, "bar"),
        ("passed run", [max(v or 0, 0) if e.get("passed") else None for v, e in zip(failed, entries)], GREEN, "bar"),
    ], n, font, small, integer=True)
    if entries:  # passed runs have zero-height bars: mark them on the axis
        step = (W - RIGHT - LEFT) / n
        for i, e in enumerate(entries):
            x = LEFT + step * (i + 0.5)
            draw.rectangle([x - 3, top + PANEL_H - 4, x + 3, top + PANEL_H], fill=GREEN if e.get("passed") else RED)
    top += PANEL_H + GAP + 20
    cer = [None if (c := _num(e.get("cer"))) is None else 100 * c for e in entries]
    _panel(draw, top, "Character error rate (%)", [("CER", cer, BLUE, "line")], n, font, small)
    top += PANEL_H + GAP + 20
    _panel(draw, top, "Predict latency per image (s)", [
        ("p90", [_num(e.get("predict_p90_s")) for e in entries], LIGHT_BLUE, "line"),
        ("median", [_num(e.get("predict_median_s")) for e in entries], BLUE, "line"),
    ], n, font, small)
    top += PANEL_H + GAP + 20
    _panel(draw, top, "Speed vs approved baseline (median image cost ratio, x; fails above 1.5)", [
        ("speed ratio", [_num(e.get("speed_ratio")) for e in entries], RED, "line"),
    ], n, font, small)
    y_axis = top + PANEL_H
    if entries:  # date ticks under the last panel, at most ~8 so labels never overlap
        step = (W - RIGHT - LEFT) / n
        every = max(1, math.ceil(n / 8))
        for i in range(0, n, every):
            x = LEFT + step * (i + 0.5)
            label = _date_label(entries[i].get("time"))
            draw.line([(x, y_axis), (x, y_axis + 5)], fill=INK)
            draw.text((x - draw.textlength(label, font=small) / 2, y_axis + 8), label, fill=MUTED, font=small)
    draw.text((LEFT, H - 26), "run date (one column per nightly run)", fill=MUTED, font=small)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return atomic_write_bytes(png_path, buf.getvalue())


def write(r: Rendering, asked: Path) -> dict[str, Path]:
    """One line for this run appended to the `--history` file, and its trend plot written next to it."""
    path = Path(asked)
    append_history(path, r.report)
    return {"history": path, "history_plot": plot_history(path, path.with_suffix(".png"))}


FORMAT = ReportFormat("history", write, flag="--history", flag_file=True, check=check_history_path,
                      complete_only=True,  # a trend compares finished runs
                      flag_help="append one line per run to this JSONL file and plot the trend next to it "
                                "(<name>.png)")
