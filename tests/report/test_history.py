from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT, typed
from PIL import Image

from harness.cli import main
from harness.checks import registry
from harness.report.history import RED, append_history, plot_history, read_history
from harness.report.html import render_html
from harness.report.markdown import render_summary
from tools.screenshots.sample import sample_run
from harness.report.writer import write_reports
from harness.util.errors import UserError


def run(day: int, passed: bool, cer: float | None, median: float) -> dict[str, Any]:
    report, *_ = sample_run()
    report = dict(report, passed=passed, started_at=f"2024-03-{day:02d}T02:00:00+00:00",
                  timing={"predict_median_s": median, "predict_p90_s": median * 1.2})
    if passed:
        report["images"] = [dict(i, passed=True, checks={}) for i in report["images"]]
        report["checks"] = {"golden": {"passed": True, "summary": "ok"}}
    report["accuracy"] = None if cer is None else {"overall": {"cer": cer}}
    return report


def test_append_and_read(tmp_path: Path) -> None:
    path = tmp_path / "nightly" / "history.jsonl"
    first = append_history(path, typed(run(1, True, 0.02, 0.40)))
    second = append_history(path, typed(run(2, False, 0.05, 0.45)))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x) for x in lines] == [first, second]
    assert first["failures"] == {"golden": 0} and first["failed_images"] == 0
    assert second["failures"] == {"audit": 0, "batch_paths": 1, "bn_drift": 0, "golden": 1, "inference": 0,
                                  "repeat": 1}
    assert second["cer"] == 0.05 and second["predict_median_s"] == 0.45 and second["images"] == 3
    assert second["versions"]["paddle"] == "3.2.2" and second["time"] == "2024-03-02T02:00:00+00:00"


def test_throughput_and_the_speed_ratio_trend_night_by_night(tmp_path: Path) -> None:
    """A slowdown inside the speed check's threshold still shows: images/s of the main pass and the median
    image's ratio against the approved baseline are in every history line, the summary and the HTML page."""
    path = tmp_path / "history.jsonl"
    report, results, images, _ = sample_run()
    for night, (wall, ratio) in enumerate([(10.0, 1.02), (12.5, 1.3)], start=1):
        r = dict(report, started_at=f"2024-03-{night:02d}T02:00:00+00:00",
                 timing={"phases": {"main": {"wall_s": wall, "images": 12, "calls_per_image": 3},
                                    "audit": {"wall_s": 4.0, "images": 0, "calls_per_image": 1}}},
                 checks={**report["checks"], "speed": {"passed": True, "summary": "ok", "details": {
                     "ratio": {"median": ratio, "p90": ratio, "max_ratio": 1.5}}}})
        entry = append_history(path, typed(r))
        assert entry["images_per_s"] == pytest.approx(12 / wall) and entry["speed_ratio"] == ratio
    summary = render_summary(typed(r))
    assert "| `main` | 12 | 3 | 12.500 s | 0.96 |" in summary and "`audit`" not in summary.split("images/s")[-1]
    page = render_html(typed(r), results, images.get)
    assert "<td>main</td><td class='num'>12</td><td class='num'>3</td>" in page
    with Image.open(plot_history(path, tmp_path / "trend.png")) as img:
        assert img.size == (1200, 1160)


def test_damaged_history_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text('{"time": "2024-03-01", "passed": true}\nnot json\n{"time": "2024-03-02"}', encoding="utf-8")
    append_history(path, typed(run(3, True, 0.01, 0.4)))
    entries = read_history(path)
    assert [e["time"][:10] for e in entries] == ["2024-03-01", "2024-03-02", "2024-03-03"]


def test_plot_is_a_valid_png(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    for day in range(1, 31):
        append_history(path, typed(run(day, day % 7 != 0, None if day == 10 else 0.02 + day / 1000, 0.4 + day / 100)))
    png = plot_history(path, tmp_path / "trend.png")
    with Image.open(png) as img:
        img.verify()
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size == (1200, 1160)
        pixels = np.asarray(img.convert("RGB")).astype(int)
    assert np.count_nonzero(np.all(np.abs(pixels - RED) < 10, axis=2)) > 100  # the failed nights' bars
    assert pixels.std() > 10


def test_plot_empty_history(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text("", encoding="utf-8")
    with Image.open(plot_history(path, tmp_path / "trend.png")) as img:
        assert img.size == (1200, 1160)


def test_a_png_history_is_refused_before_anything_is_written(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`--history x.png` used to append the JSONL lines to x.png and then overwrite it with its own plot."""
    plot = tmp_path / "nightly.png"
    plot.write_bytes(b"the existing plot")
    out = tmp_path / "out"
    code = main(["run", "--config", str(ROOT / "harness.toml"), "--profile", "release", "--id", "slip_0000",
                 "--repeats", "1", "--history", str(plot), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"--history {plot}: give the JSONL history file (e.g. {tmp_path / 'nightly.jsonl'})" in err
    assert plot.read_bytes() == b"the existing plot"
    # Refused before any model loads: the only files are the reports of a run that never started.
    assert sorted(p.name for p in out.iterdir()) == ["junit.xml", "report.json", "summary.md"]
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["exit_code"] == 2
    report, results, images, _ = sample_run()
    with pytest.raises(UserError, match="give the JSONL history file"):
        write_reports(tmp_path / "out2", report, results, images.get, layout=registry.layout(),
                      history=tmp_path / "NIGHTLY.PNG")
    assert not (tmp_path / "out2").exists()
