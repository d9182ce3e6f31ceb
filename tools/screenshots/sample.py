"""A small synthetic run (drawn slips, one golden regression, one repeat divergence, one batch-path
difference) for the README screenshot and the report tests. Nothing here runs a model; every check result is
made by the function a run calls, so the sample cannot drift from what runs write."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from harness.checks.determinism import repeat_check
from harness.checks.golden_check import golden_check
from harness.checks.batch_paths import compare_paths
from harness.execution.state import RunState
from harness.golden.status import GoldenStatus
from harness.golden.store import Golden
from harness.metrics import corpus_accuracy, image_accuracy
from harness.model.corpus import CorpusItem
from harness.model.inference import ImageOutcome
from harness.model.outcome import CheckResult, ImageCheck, from_images, skipped
from harness.model.report import RunReport
from harness.model.results import Line, OcrResult
from harness.model.settings import CheckSettings, Profile
from harness.model.timing import timing_summary
from harness.run.pipeline.build_report import image_record

SLIP_W, SLIP_H = 1000, 560
_SLIP_LINES = (
    ("EXAMPLE BANK  TRANSFER SLIP", 60, 70, 1.1),
    ("DATE 2024-03-05", 60, 150, 0.9),
    ("PAYER 6222 0212 3456 7890", 60, 230, 0.9),
    ("PAYEE 6217 0000 1111 2222", 60, 310, 0.9),
    ("AMOUNT CNY 12,345.67", 60, 390, 0.9),
    ("REF TX20240305-0042", 60, 470, 0.9),
)


def draw_slip(seed: int = 0) -> tuple[np.ndarray, tuple[Line, ...]]:
    """A BGR slip and the lines a perfect OCR would read from it (boxes from the drawn text)."""
    rng = np.random.default_rng(seed)
    img = np.full((SLIP_H, SLIP_W, 3), (236, 244, 250), np.uint8)
    cv2.rectangle(img, (20, 20), (SLIP_W - 20, SLIP_H - 20), (90, 60, 30), 3)
    for y in (110, 190, 270, 350, 430):
        cv2.line(img, (20, y), (SLIP_W - 20, y), (170, 150, 130), 1)
    cv2.circle(img, (850, 420), 70, (60, 60, 200), 3)  # the red seal every slip has
    lines = []
    for text, x, y, size in _SLIP_LINES:
        x += int(rng.integers(0, 20))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size, 2)
        cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, size, (40, 30, 20), 2, cv2.LINE_AA)
        x0, y0, x1, y1 = x - 4, y - th - 4, x + tw + 4, y + base + 2
        lines.append(Line(text=text, score=0.99, poly=((x0, y0), (x1, y0), (x1, y1), (x0, y1))))
    return img, tuple(lines)


def _shift(line: Line, dx: int, text: str | None = None) -> Line:
    return Line(text=line.text if text is None else text, score=line.score,
                poly=tuple((x + dx, y) for x, y in line.poly))


def _rescore(result: OcrResult, index: int, score: float) -> OcrResult:
    lines = list(result.lines)
    lines[index] = dataclasses.replace(lines[index], score=score)
    return dataclasses.replace(result, lines=tuple(lines))


def sample_run() -> tuple[dict[str, Any], dict[str, OcrResult], dict[str, np.ndarray], dict[str, OcrResult]]:
    """`sample_report` with the report as report.json holds it (a dict, for tests that plant changes in it)."""
    report, results, images, goldens = sample_report()
    return report.to_dict(), results, images, goldens


def sample_report() -> tuple[RunReport, dict[str, OcrResult], dict[str, np.ndarray], dict[str, OcrResult]]:
    """(typed run report, current results, images by id, golden results). Every check result comes from the
    check functions a run calls (golden comparison, repeat check, batch-path comparison, accuracy) and every
    image record from the run's own `image_record`, so the sample has exactly the shapes production reports
    have."""
    ids = ("slip_0001", "slip_0002", "slip_0003")
    images: dict[str, np.ndarray] = {}
    results: dict[str, OcrResult] = {}
    goldens: dict[str, OcrResult] = {}
    for n, image_id in enumerate(ids):
        img, lines = draw_slip(n)
        images[image_id] = img
        goldens[image_id] = OcrResult(image_id, SLIP_W, SLIP_H, lines)
        results[image_id] = OcrResult(image_id, SLIP_W, SLIP_H, lines)
    g = goldens["slip_0001"].lines
    # The planted regression: the amount's last digit and a shifted box; the reference line vanished.
    results["slip_0001"] = _rescore(OcrResult("slip_0001", SLIP_W, SLIP_H,
                                              g[:4] + (_shift(g[4], 14, "AMOUNT CNY 12,345.61"),)), 4, 0.9871)
    # The planted nondeterminism: repeat 3 of 5 scores line 4 differently.
    runs = {i: (results[i],) * 5 for i in ids}
    runs["slip_0001"] = (results["slip_0001"],) * 2 + (_rescore(results["slip_0001"], 4, 0.9712),) \
        + (results["slip_0001"],) * 2
    outcomes = {i: ImageOutcome(i, runs[i], predict_s=(0.41, 0.4, 0.398, 0.405, 0.412), read_s=0.02) for i in ids}
    # The planted batch-path difference: recognition batch 1 reads the payee account differently on slip_0002.
    b = results["slip_0002"].lines
    bs1 = {**outcomes, "slip_0002": ImageOutcome("slip_0002", (dataclasses.replace(
        results["slip_0002"], lines=b[:3] + (_shift(b[3], 0, "PAYEE 6217 0000 1111 2223"),) + b[4:]),))}
    fields = {"date": "2024-03-05", "payer_account": "6222021234567890", "payee_account": "6217000011112222",
              "amount": "12345.67", "reference": "TX20240305-0042"}
    items = [CorpusItem(i, Path(f"{t}/{i}.png"), None, t, tags,
                        tuple((line.text, line.poly) for line in goldens[i].lines), fields)
             for i, t, tags in (("slip_0001", "icbc_transfer", ("scan", "seal")),
                                ("slip_0002", "boc_deposit", ("photo",)), ("slip_0003", "boc_deposit", ("scan",)))]
    profile = Profile(name="nightly", checks=CheckSettings(repeats=5).with_values(batch_paths=True, bn_drift=False))
    status = GoldenStatus(profile="nightly", selected=3, missing=(), orphaned=(), orphans_judged=True, has_meta=True,
                          stack_differences=(), likely_cause=None)
    keys = {it.id: dict(it.fields) for it in items}
    state = RunState(outcomes=outcomes, checks={
        "inference": from_images("inference", {i: ImageCheck(True, f"{len(results[i].lines)} lines") for i in ids},
                                 "failed to run"),
        "audit": CheckResult("audit", True, "det: eval mode, 0 findings; rec: eval mode, 0 findings", judged=2,
                             unit="models"),
        "golden": golden_check(items, outcomes, "profile", {i: Golden(goldens[i]) for i in ids}, profile, status),
        "repeat": repeat_check(outcomes),
        "batch_paths": compare_paths("batch_paths", "profile", outcomes, {"bs1": bs1}, profile.batch_tolerances, keys),
        "bn_drift": skipped("bn_drift", "disabled in profile"),
    })
    rows = []
    for it in items:
        state.image_accuracy[it.id] = image_accuracy(list(it.truth), fields, results[it.id])
        rows.append((it.id, it.template, it.tags, state.image_accuracy[it.id]))
    report = RunReport(
        passed=all(c.passed for c in state.checks.values()),
        started_at="2024-03-06T02:00:00+00:00", duration_s=41.7,
        profile={"name": profile.name, "settings": profile.settings_dict()},
        environment={"python": "3.11.9", "paddle": "3.2.2", "paddleocr": "3.7.0", "paddlex": "3.7.2",
                     "numpy": "2.3.5", "opencv": "4.10.0", "cpu_model": "Example CPU @ 2.0GHz",
                     "isa": ["avx2", "avx512f"], "onednn": True, "cpu_threads": 4, "env": {"OMP_NUM_THREADS": "4"}},
        stack={}, corpus={"root": "corpus", "subset": None, "selected": 3, "complete": True, "has_manifest": True},
        checks={name: c.as_reported() for name, c in state.checks.items()},
        images=tuple(image_record(it, n, str(it.path), state) for n, it in enumerate(items)),
        accuracy=corpus_accuracy(rows),
        timing=timing_summary([0.405] * 3, [3.2], 41.7),
        extra={"future_section": {"ignored": True}},
    )
    return report, results, images, goldens
