"""report.html's pictures: the slip with the current boxes (green; orange where the text changed) and the golden
boxes of changed or missing lines (magenta), downscaled, as a JPEG data URI."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import cv2
import numpy as np

from harness.model.results import OcrResult
from harness.report.view import LineChange

PICTURE_WIDTH = 760
JPEG_QUALITY = 80
# BGR
CURRENT = (40, 160, 40)
CURRENT_CHANGED = (0, 140, 255)
GOLDEN = (210, 0, 210)  # magenta: slips carry red seals and red print


def _draw(img: np.ndarray, poly: Sequence[Sequence[float]], colour: tuple[int, int, int], scale: float,
          thickness: int, label: str | None = None) -> None:
    pts = np.round(np.asarray(poly, dtype=np.float64) * scale).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(img, [pts], True, colour, thickness, cv2.LINE_AA)
    if label:
        x, y = int(pts[:, 0, 0].min()), int(pts[:, 0, 1].min())
        cv2.putText(img, label, (x, max(10, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)


def picture(image: np.ndarray, result: OcrResult | None, changes: Sequence[LineChange],
            golden: OcrResult | None, changed_current: set[int], width: int = PICTURE_WIDTH) -> str:
    """The slip with boxes drawn, downscaled, as a JPEG data URI."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    h, w = image.shape[:2]
    scale = min(1.0, width / w)
    canvas = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA) \
        if scale < 1 else image.copy()
    # Polygons are in the coordinates of the image the model saw; follow the loaded image if it differs.
    ref_w = result.width if result and result.width else w
    s = scale * (w / ref_w)
    for ch in changes:
        poly = ch.golden_poly
        if poly is None and golden is not None and ch.golden_index is not None and ch.golden_index < len(golden.lines):
            poly = golden.lines[ch.golden_index].poly
        if poly is not None and ch.kind in ("changed", "missing"):
            _draw(canvas, poly, GOLDEN, s, 3, f"g{ch.golden_index}" if ch.golden_index is not None else None)
    if result is not None:
        for i, line in enumerate(result.lines):
            if len(line.poly) >= 3:
                _draw(canvas, line.poly, CURRENT_CHANGED if i in changed_current else CURRENT, s, 2, str(i))
    ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")
