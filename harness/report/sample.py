"""A small synthetic run (drawn slips, one golden regression, one repeat divergence, one batch-path
difference) for the README screenshot and the report tests. Nothing here runs a model."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from harness.results import Line, OcrResult

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


def sample_run() -> tuple[dict[str, Any], dict[str, OcrResult], dict[str, np.ndarray], dict[str, OcrResult]]:
    """(report dict, current results, images by id, golden results)."""
    images: dict[str, np.ndarray] = {}
    results: dict[str, OcrResult] = {}
    goldens: dict[str, OcrResult] = {}
    for n, image_id in enumerate(("slip_0001", "slip_0002", "slip_0003")):
        img, lines = draw_slip(n)
        images[image_id] = img
        goldens[image_id] = OcrResult(image_id, SLIP_W, SLIP_H, lines)
        results[image_id] = OcrResult(image_id, SLIP_W, SLIP_H, lines)
    g = goldens["slip_0001"].lines
    # The planted regression: the amount's last digit and a shifted box; the reference line vanished.
    results["slip_0001"] = OcrResult("slip_0001", SLIP_W, SLIP_H,
                                     g[:4] + (_shift(g[4], 14, "AMOUNT CNY 12,345.61"),))
    golden_details = {"lines": [
        {"kind": "changed", "golden_index": 4, "current_index": 4, "golden_text": g[4].text,
         "current_text": "AMOUNT CNY 12,345.61", "fields": ["text", "poly"], "critical": ["amount"],
         "golden_poly": [list(p) for p in g[4].poly]},
        {"kind": "missing", "golden_index": 5, "current_index": None, "golden_text": g[5].text, "current_text": None,
         "fields": [], "critical": ["reference"], "golden_poly": [list(p) for p in g[5].poly]},
    ], "golden_file": "goldens/slip_0001.json"}
    image_rows = [
        {"id": "slip_0001", "file": "icbc/slip_0001.png", "template": "icbc_transfer", "tags": ["scan", "seal"],
         "passed": False, "error": None, "lines": 5, "timings": {"predict_s": 0.412},
         "checks": {
             "inference": {"passed": True, "summary": "5 lines", "details": {}},
             "golden": {"passed": False, "summary": "1 line changed, 1 missing (critical: amount, reference)",
                        "details": golden_details},
             "repeat": {"passed": False, "summary": "repeat 3 of 5 differs from repeat 1",
                        "details": {"first_divergence": {"repeat": 3, "line": 4, "field": "score",
                                                         "golden": 0.9871, "current": 0.9712, "delta": 0.0159}}}}},
        {"id": "slip_0002", "file": "boc/slip_0002.png", "template": "boc_deposit", "tags": ["photo"],
         "passed": False, "error": None, "lines": 6, "timings": {"predict_s": 0.398},
         "checks": {
             "inference": {"passed": True, "summary": "6 lines", "details": {}},
             "golden": {"passed": True, "summary": "identical", "details": {}},
             "batch_paths": {"passed": False, "summary": "path predict_list differs from predict_single on 1 line",
                             "details": {"paths": {"a": "predict_single", "b": "predict_list"},
                                         "lines": [{"line": 2, "field": "poly", "a": [[60, 205], [420, 205]],
                                                    "b": [[60, 206], [420, 206]], "delta": 1.0}]}}}},
        {"id": "slip_0003", "file": "boc/slip_0003.png", "template": "boc_deposit", "tags": ["scan"],
         "passed": True, "error": None, "lines": 6, "timings": {"predict_s": 0.405},
         "checks": {"inference": {"passed": True, "summary": "6 lines", "details": {}},
                    "golden": {"passed": True, "summary": "identical", "details": {}}}},
    ]
    report = {
        "schema": "ocr-harness/report/1", "passed": False, "exit_code": 1,
        "started_at": "2024-03-06T02:00:00+00:00", "duration_s": 41.7,
        "profile": {"name": "nightly", "settings": {"repeats": 5, "cpu_threads": 4}},
        "environment": {"python": "3.11.9", "paddle": "3.2.2", "paddleocr": "3.7.0", "paddlex": "3.7.2",
                        "numpy": "2.3.5", "opencv": "4.10.0", "cpu_model": "Example CPU @ 2.0GHz",
                        "isa": ["avx2", "avx512f"], "onednn": True, "cpu_threads": 4,
                        "env": {"OMP_NUM_THREADS": "4"}},
        "corpus": {"root": "corpus", "subset": None, "selected": 3, "complete": True, "has_manifest": True},
        "checks": {
            "inference": {"passed": True, "skipped": False, "summary": "3 of 3 images read", "failed_images": [],
                          "details": {}},
            "audit": {"passed": True, "skipped": False, "summary": "all layers in eval mode", "failed_images": [],
                      "details": {}},
            "golden": {"passed": False, "skipped": False, "summary": "1 of 3 images differ from golden",
                       "failed_images": ["slip_0001"], "details": {}},
            "repeat": {"passed": False, "skipped": False, "summary": "1 of 3 images not repeatable",
                       "failed_images": ["slip_0001"], "details": {}},
            "batch_paths": {"passed": False, "skipped": False, "summary": "1 of 3 images differ between paths",
                            "failed_images": ["slip_0002"], "details": {}},
            "bn_drift": {"passed": True, "skipped": True, "summary": "skipped: no reference statistics",
                         "failed_images": [], "details": {}},
        },
        "images": image_rows,
        "accuracy": {
            "overall": {"images": 3, "cer": 0.0412, "line_exact_rate": 0.882,
                        "det": {"precision": 1.0, "recall": 0.941, "hmean": 0.970}, "field_accuracy": 0.889},
            "by_template": {"boc_deposit": {"images": 2, "cer": 0.0, "line_exact_rate": 1.0,
                                            "det": {"precision": 1.0, "recall": 1.0, "hmean": 1.0},
                                            "field_accuracy": 1.0},
                            "icbc_transfer": {"images": 1, "cer": 0.125, "line_exact_rate": 0.667,
                                              "det": {"precision": 1.0, "recall": 0.833, "hmean": 0.909},
                                              "field_accuracy": 0.667}},
            "by_tag": {},
            "by_field": {"amount": {"correct": 2, "total": 3, "accuracy": 0.667},
                         "date": {"correct": 3, "total": 3, "accuracy": 1.0}},
        },
        "timing": {"images": 3, "predict_median_s": 0.405, "predict_p90_s": 0.41, "model_load_s": 3.2, "wall_s": 41.7},
        "future_section": {"ignored": True},
    }
    return report, results, images, goldens
