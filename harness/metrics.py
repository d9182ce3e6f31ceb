"""Accuracy against ground truth: CER, line exact match, key fields, detection P/R/hmean.

Text is measured in `harness.util.text`'s accuracy form: NFKC (full-width （：￥１ and their ASCII forms are the
same reading), whitespace removed (grouping spaces vary between writers and detectors), in grapheme clusters.
Line exact match uses the same form.

Line matching (used by CER and exact match): predicted and truth lines are paired one-to-one by polygon
IoU, best pair first (ties: lower truth index, then lower predicted index), any IoU > 0 counts. A matched
pair adds its Levenshtein distance; an unmatched truth line adds its full length (deletions); an unmatched
predicted line adds its full length (insertions). Image CER = edits / reference clusters.

Empty reference: CER is 0.0 if nothing was predicted either, else 1.0 (JSON has no infinity); the edit
count stays exact so the corpus CER (sum of edits / sum of reference clusters) is unaffected.

Detection (PaddleOCR DetMetric / ICDAR 2015): one-to-one matches at IoU > 0.5, best pair first. Truth lines
whose text is "###" are "don't care": they are not counted (nor read for CER), and predictions lying more
than half inside one are dropped. Precision is 1.0 when nothing was predicted, recall 1.0 when nothing was
to be found; corpus figures sum tp/fp/fn over images first (micro average), as ICDAR does.

Key fields: a field is read when some predicted line reads its truth value as a whole token, by the one
rule in `harness.keyfields` that the golden, batch-path and variation checks use too (amounts as decimals,
dates as dates, accounts as digit strings); empty truth values are not scored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import shapely

from harness.keyfields import KeyValue, KeyValueError
# Made here, held by the report (harness.model.accuracy): re-exported for the callers that score images.
from harness.model.accuracy import DetectionCounts as DetectionCounts, ImageAccuracy as ImageAccuracy
from harness.model.results import OcrResult
from harness.util.errors import UserError
from harness.util.text import accuracy_form, cer as text_cer, edit_distance, graphemes

TruthLine = tuple[str, Sequence[tuple[float, float]]]
DONT_CARE = "###"
DET_IOU = 0.5
NO_TEMPLATE = "(none)"


# --- text ------------------------------------------------------------------------------------------

def normalise_text(text: str) -> str:
    """The documented text normalisation for accuracy: NFKC, whitespace removed."""
    return accuracy_form(text)


def cer(reference: str, prediction: str) -> float:
    """Character error rate of one string pair in the accuracy form (see harness.util.text)."""
    return text_cer(reference, prediction, accuracy_form)


def _rate(edits: int, ref_chars: int) -> float:
    if ref_chars == 0:
        return 0.0 if edits == 0 else 1.0
    return edits / ref_chars


# --- geometry --------------------------------------------------------------------------------------

def _polygons(polys: Iterable[Sequence[Sequence[float]]]) -> np.ndarray:
    geoms = []
    for pts in polys:
        pts = [(float(x), float(y)) for x, y in pts]
        poly = shapely.Polygon(pts) if len(pts) >= 3 else shapely.Polygon()
        if not poly.is_valid:  # self-intersecting quads from a detector: keep the area they cover
            poly = shapely.make_valid(poly)
        geoms.append(poly)
    return np.array(geoms, dtype=object)


def iou_matrix(a: Sequence[Sequence[Sequence[float]]], b: Sequence[Sequence[Sequence[float]]]) -> np.ndarray:
    """IoU of every polygon in ``a`` with every polygon in ``b`` (shape len(a) x len(b))."""
    ga, gb = _polygons(a), _polygons(b)
    if len(ga) == 0 or len(gb) == 0:
        return np.zeros((len(ga), len(gb)))
    inter = shapely.area(shapely.intersection(ga[:, None], gb[None, :]))
    union = shapely.area(ga)[:, None] + shapely.area(gb)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def match_one_to_one(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Greedy best-first one-to-one pairs (row, col) with IoU strictly above ``threshold``."""
    rows, cols = np.nonzero(iou > threshold)
    order = sorted(zip(rows.tolist(), cols.tolist()), key=lambda rc: (-iou[rc], rc[0], rc[1]))
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for r, c in order:
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return sorted(pairs)


def detection_counts(truth_polys: Sequence[Sequence[Sequence[float]]], pred_polys: Sequence[Sequence[Sequence[float]]],
                     dont_care: Sequence[bool] | None = None) -> DetectionCounts:
    """ICDAR 2015 counting: one-to-one at IoU > 0.5, don't-care truth regions excluded."""
    care = [not dc for dc in (dont_care or [False] * len(truth_polys))]
    care_polys = [p for p, c in zip(truth_polys, care) if c]
    dc_polys = [p for p, c in zip(truth_polys, care) if not c]
    preds = list(pred_polys)
    if dc_polys and preds:
        gp, gd = _polygons(preds), _polygons(dc_polys)
        inside = shapely.area(shapely.intersection(gp[:, None], gd[None, :]))
        area = shapely.area(gp)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(area > 0, inside / area, 0.0)
        preds = [p for p, f in zip(preds, frac.max(axis=1)) if f <= 0.5]
    tp = len(match_one_to_one(iou_matrix(care_polys, preds), DET_IOU))
    return DetectionCounts(tp=tp, fp=len(preds) - tp, fn=len(care_polys) - tp)


# --- key fields ------------------------------------------------------------------------------------

def field_read(name: str, value: str, line_texts: Sequence[str]) -> bool:
    """Whether some predicted line reads the truth ``value`` as a whole token (harness.keyfields)."""
    try:
        key = KeyValue.parse(name, value)
    except KeyValueError as e:
        raise UserError(f"ground-truth {e}") from None
    return key is not None and any(key.read_by(t) for t in line_texts)


# --- per image and corpus --------------------------------------------------------------------------

def image_accuracy(truth_lines: Sequence[TruthLine], truth_fields: Mapping[str, str],
                   result: OcrResult) -> ImageAccuracy:
    """Score one image. Truth lines are (text, polygon); "###" lines only matter to detection."""
    scored = [(t, p) for t, p in truth_lines if t != DONT_CARE]
    preds = result.lines
    iou = iou_matrix([p for _, p in scored], [line.poly for line in preds])
    pairs = match_one_to_one(iou, 0.0)
    matched_t = {t for t, _ in pairs}
    matched_p = {p for _, p in pairs}
    edits = sum(edit_distance(scored[t][0], preds[p].text) for t, p in pairs)
    edits += sum(len(graphemes(scored[t][0])) for t in range(len(scored)) if t not in matched_t)
    edits += sum(len(graphemes(preds[p].text)) for p in range(len(preds)) if p not in matched_p)
    ref_chars = sum(len(graphemes(t)) for t, _ in scored)
    exact = sum(1 for t, p in pairs if normalise_text(scored[t][0]) == normalise_text(preds[p].text))
    det = detection_counts([p for _, p in truth_lines], [line.poly for line in preds],
                           [t == DONT_CARE for t, _ in truth_lines])
    texts = [line.text for line in preds]
    fields = {name: field_read(name, value, texts) for name, value in truth_fields.items() if value}
    return ImageAccuracy(cer=_rate(edits, ref_chars), edits=edits, ref_chars=ref_chars, lines_exact=exact,
                         lines_total=len(scored), det_tp=det.tp, det_fp=det.fp, det_fn=det.fn, fields=fields)


def _aggregate(accs: Sequence[ImageAccuracy]) -> dict[str, Any]:
    edits = sum(a.edits for a in accs)
    ref = sum(a.ref_chars for a in accs)
    exact = sum(a.lines_exact for a in accs)
    total = sum(a.lines_total for a in accs)
    det = DetectionCounts(sum(a.det_tp for a in accs), sum(a.det_fp for a in accs), sum(a.det_fn for a in accs))
    f_ok = sum(v for a in accs for v in a.fields.values())
    f_all = sum(len(a.fields) for a in accs)
    return {
        "images": len(accs),
        "cer": _rate(edits, ref), "edits": edits, "ref_chars": ref,
        "line_exact_rate": exact / total if total else None, "lines_exact": exact, "lines_total": total,
        "det": det.to_dict(),
        "field_accuracy": f_ok / f_all if f_all else None, "fields_correct": f_ok, "fields_total": f_all,
    }


def corpus_accuracy(items: Sequence[tuple[str, str | None, Sequence[str], ImageAccuracy]]) -> dict[str, Any]:
    """JSON-able corpus summary: overall (micro-averaged), by_template, by_tag, by_field."""
    by_template: dict[str, list[ImageAccuracy]] = {}
    by_tag: dict[str, list[ImageAccuracy]] = {}
    by_field: dict[str, list[bool]] = {}
    for _image_id, template, tags, acc in items:
        by_template.setdefault(template or NO_TEMPLATE, []).append(acc)
        for tag in dict.fromkeys(tags):
            by_tag.setdefault(tag, []).append(acc)
        for name, ok in acc.fields.items():
            by_field.setdefault(name, []).append(ok)
    return {
        "overall": _aggregate([acc for *_, acc in items]),
        "by_template": {k: _aggregate(v) for k, v in sorted(by_template.items())},
        "by_tag": {k: _aggregate(v) for k, v in sorted(by_tag.items())},
        "by_field": {k: {"correct": sum(v), "total": len(v), "accuracy": sum(v) / len(v)}
                     for k, v in sorted(by_field.items())},
    }
