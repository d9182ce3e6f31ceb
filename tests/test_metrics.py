from __future__ import annotations

import json

import pytest
from builders import Poly, ocr_result, quad

from harness.metrics import (
    ImageAccuracy,
    cer,
    corpus_accuracy,
    detection_counts,
    edit_distance,
    field_read,
    graphemes,
    image_accuracy,
)
from harness.model.results import Line, OcrResult, canonical_json
from harness.util.errors import UserError


def result(*lines: tuple[str, Poly]) -> OcrResult:
    """A prediction in the form of the truth it is scored against, (text, box) pairs: the two read side by side."""
    return ocr_result(*(Line(t, 0.9, p) for t, p in lines), image_id="img", size=(1000, 1000))


# --- CER -------------------------------------------------------------------------------------------

def test_cer_hand_computed() -> None:
    assert cer("abc", "abd") == pytest.approx(1 / 3)
    assert cer("金额壹万", "金额壹万") == 0.0
    assert cer("12345.67", "1234567") == pytest.approx(1 / 8)
    assert edit_distance("kitten", "sitting") == 3


def test_cer_empty_reference() -> None:
    assert cer("", "") == 0.0
    assert cer("", "xy") == 2.0  # per line: no tolerance in 0..1 passes text from nothing
    assert edit_distance("", "xy") == 2  # the count stays exact for the corpus CER
    assert cer("ab", "") == 1.0


def test_nfc_and_grapheme_clusters() -> None:
    assert edit_distance("caf\u00e9", "cafe\u0301") == 0  # precomposed vs combining accent
    assert graphemes("q\u0307x") == ("q\u0307", "x")  # no precomposed form: one cluster, two code points
    assert edit_distance("q\u0307", "q") == 1
    assert cer("q\u0307", "q") == 1.0


def test_image_accuracy_line_matching() -> None:
    truth = [("ABCD", quad(0, 0, 100, 20)), ("1234", quad(0, 30, 100, 20)), ("XY", quad(0, 60, 50, 20))]
    pred = result(("ABCE", quad(2, 0, 98, 20)), ("1234", quad(0, 30, 100, 20)), ("ZZZ", quad(500, 500, 100, 20)))
    acc = image_accuracy(truth, {}, pred)
    # ABCD~ABCE: 1 edit, 1234: 0, XY unmatched: 2 deletions, ZZZ unmatched: 3 insertions
    assert (acc.edits, acc.ref_chars) == (6, 10)
    assert acc.cer == pytest.approx(0.6)
    assert (acc.lines_exact, acc.lines_total) == (1, 3)
    assert (acc.det_tp, acc.det_fp, acc.det_fn) == (2, 1, 1)
    assert acc.detection.hmean == pytest.approx(2 / 3)


def test_image_accuracy_no_truth_no_prediction() -> None:
    acc = image_accuracy([], {}, result())
    assert acc.cer == 0.0 and acc.detection.precision == 1.0 and acc.detection.hmean == 1.0


# --- detection -------------------------------------------------------------------------------------

def test_hmean_one_to_one() -> None:
    # Two predictions on one truth box: only one may match, the other is a false positive.
    det = detection_counts([quad(0, 0, 100, 20)], [quad(0, 0, 100, 20), quad(0, 0, 90, 20)])
    assert (det.tp, det.fp, det.fn) == (1, 1, 0)
    assert (det.precision, det.recall) == (0.5, 1.0)
    assert det.hmean == pytest.approx(2 / 3)


def test_hmean_best_pair_first() -> None:
    # In truth order T1 would take P1 (IoU 0.54) and leave T2 unmatched; best first pairs T1-P2 (0.9)
    # and T2-P1 (0.82).
    truth = [quad(0, 0, 100, 20), quad(40, 0, 100, 20)]
    pred = [quad(30, 0, 100, 20), quad(0, 0, 90, 20)]
    det = detection_counts(truth, pred)
    assert (det.tp, det.fp, det.fn) == (2, 0, 0)


def test_iou_must_exceed_half() -> None:
    det = detection_counts([quad(0, 0, 100, 10)], [quad(0, 0, 50, 10)])  # IoU exactly 0.5
    assert (det.tp, det.fp, det.fn) == (0, 1, 1)
    assert det.hmean == 0.0


def test_dont_care_regions() -> None:
    truth = [("###", quad(0, 0, 100, 20)), ("AB", quad(0, 50, 100, 20))]
    pred = result(("smudge", quad(10, 2, 80, 16)), ("AB", quad(0, 50, 100, 20)))
    acc = image_accuracy(truth, {}, pred)
    assert (acc.det_tp, acc.det_fp, acc.det_fn) == (1, 0, 0)
    assert acc.ref_chars == 2  # "###" is not text to read


def test_degenerate_and_self_intersecting_polygons() -> None:
    bowtie = ((0, 0), (100, 20), (100, 0), (0, 20))
    line = ((0, 0), (100, 0), (50, 0))
    det = detection_counts([quad(0, 0, 100, 20)], [bowtie, line])
    assert (det.tp, det.fp, det.fn) == (0, 2, 1)


def test_no_prediction_with_truth() -> None:
    det = detection_counts([quad(0, 0, 10, 10)], [])
    assert (det.precision, det.recall, det.hmean) == (1.0, 0.0, 0.0)


# --- key fields ------------------------------------------------------------------------------------

def test_field_read_uses_the_key_field_rule() -> None:
    # The rule itself is table-tested in test_keyfields.py; here: metrics and goldens share it.
    assert field_read("amount", "12345.67", ["小写", "¥12,345.67"])
    assert not field_read("amount", "12345.67", ["112,345.67"])
    assert field_read("date", "2024年3月5日", ["2024-03-05"])
    with pytest.raises(UserError, match="not a date"):
        field_read("date", "March 5", ["2024-03-05"])


def test_fields_in_image_accuracy() -> None:
    pred = result(("人民币（大写）壹万贰仟叁佰肆拾伍元陆角柒分", quad(0, 0, 100, 20)), ("REF TX20240305-0042", quad(0, 30, 100, 20)),
                  ("¥12,345.61", quad(0, 60, 100, 20)))
    fields = {"amount_words": "壹万贰仟叁佰肆拾伍元陆角柒分", "reference": "TX20240305-0042", "amount": "12345.67",
              "payee_account": ""}  # empty truth: not scored
    acc = image_accuracy([], fields, pred)
    assert dict(acc.fields) == {"amount_words": True, "reference": True, "amount": False}


# --- corpus ----------------------------------------------------------------------------------------

def test_corpus_accuracy_breakdown() -> None:
    a = ImageAccuracy(cer=0.1, edits=1, ref_chars=10, lines_exact=2, lines_total=3, det_tp=3, det_fp=0, det_fn=0,
                      fields={"amount": True, "date": False})
    b = ImageAccuracy(cer=0.5, edits=15, ref_chars=30, lines_exact=0, lines_total=2, det_tp=1, det_fp=1, det_fn=1,
                      fields={"amount": False})
    out = corpus_accuracy([("a", "icbc", ("scan", "seal"), a), ("b", None, ("scan",), b)])
    assert out["overall"]["cer"] == pytest.approx(16 / 40)  # micro: not the mean of 0.1 and 0.5
    assert out["overall"]["line_exact_rate"] == pytest.approx(2 / 5)
    assert out["overall"]["det"]["precision"] == pytest.approx(4 / 5)
    assert out["overall"]["field_accuracy"] == pytest.approx(1 / 3)
    assert set(out["by_template"]) == {"icbc", "(none)"}
    assert out["by_tag"]["scan"]["images"] == 2 and out["by_tag"]["seal"]["cer"] == pytest.approx(0.1)
    assert out["by_field"] == {"amount": {"correct": 1, "total": 2, "accuracy": 0.5},
                               "date": {"correct": 0, "total": 1, "accuracy": 0.0}}
    assert json.loads(canonical_json(out)) == out


def test_corpus_accuracy_empty() -> None:
    out = corpus_accuracy([])
    assert out["overall"]["images"] == 0 and out["overall"]["cer"] == 0.0
    assert out["overall"]["line_exact_rate"] is None
    canonical_json(out)
