from __future__ import annotations

import re
from dataclasses import replace

import pytest
from builders import ocr_result, quad

from harness.golden.compare import cer, compare_image
from harness.golden.geometry import _max_assignment, match_lines, max_vertex_shift, polygon_iou
from harness.golden.summary import summarise
from harness.model.results import Line, canonical_json
from harness.model.settings import Tolerances

STRICT = Tolerances(text_max_cer=0.0, poly_max_shift_px=0.0, poly_min_iou=1.0, score_abs=0.0)
BANK = Line("中国工商银行", 0.5, quad(10, 10, 200, 20))
AMOUNT = Line("金额：¥1,234.50", 0.75, quad(10, 40, 200, 20))
DATE = Line("日期：2024-03-05", 0.25, quad(10, 70, 200, 20))
GOLDEN = ocr_result(BANK, AMOUNT, DATE)


def test_identical_passes() -> None:
    comp = compare_image(GOLDEN, GOLDEN, STRICT)
    assert comp and comp.passed
    assert comp.counts["identical"] == 3 and not comp.diffs
    assert comp.summary() == "slip: ok (3 lines: 3 identical, 0 within tolerance)"
    assert comp.required.to_dict() == {"text_max_cer": 0.0, "poly_max_shift_px": 0.0, "poly_min_iou": 1.0,
                                       "score_abs": 0.0, "blocking": 0}


def test_swapped_line_order_is_matched_by_geometry() -> None:
    comp = compare_image(GOLDEN, ocr_result(DATE, BANK, AMOUNT), STRICT)
    assert comp.passed
    assert [(d.golden_index, d.current_index) for d in comp.lines] == [(0, 1), (1, 2), (2, 0)]


def test_order_flip_after_a_one_pixel_move() -> None:
    # Two boxes on one row: a 1 px move makes the OCR list them the other way round.
    left, right = Line("户名", 0.5, quad(10, 10, 100, 20)), Line("张三", 0.5, quad(120, 10, 100, 20))
    moved_right = replace(right, poly=quad(120, 9, 100, 20))
    comp = compare_image(ocr_result(left, right), ocr_result(moved_right, left), Tolerances())
    assert comp.passed and comp.counts["within"] == 1
    d = next(d for d in comp.lines if d.kind == "within")
    assert d.golden_index == 1 and d.current_index == 0 and d.max_shift_px == 1.0


# -- text ---------------------------------------------------------------------------------------------------------


def test_text_cer_just_inside_and_just_outside() -> None:
    g = ocr_result(Line("ABCDEFGHIJ", 0.5, quad(0, 0, 200, 20)))
    c = ocr_result(Line("ABCDEFGHIX", 0.5, quad(0, 0, 200, 20)))  # 1 edit in 10: CER 0.1
    assert compare_image(g, c, replace(STRICT, text_max_cer=0.1)).passed
    comp = compare_image(g, c, replace(STRICT, text_max_cer=0.0999))
    assert not comp.passed and comp.lines[0].failed == ("text",)
    assert comp.required.text_max_cer == pytest.approx(0.1)
    assert comp.lines[0].to_dict()["golden_text"] == "ABCDEFGHIJ"
    assert comp.lines[0].to_dict()["current_text"] == "ABCDEFGHIX"


def test_cer_is_nfc_and_handles_empty_reference() -> None:
    assert cer("caf\u00e9", "cafe\u0301") == 0.0
    assert cer("", "") == 0.0
    assert cer("", "ab") == 2.0
    assert cer("abcd", "") == 1.0


# -- polygon -------------------------------------------------------------------------------------------------------


def test_poly_shift_just_inside_and_just_outside() -> None:
    g = ocr_result(Line("x", 0.5, quad(0, 0, 200, 20)))
    c = ocr_result(Line("x", 0.5, ((0, 0), (202, 0), (200, 20), (0, 20))))  # one vertex 2 px right
    ok = compare_image(g, c, replace(STRICT, poly_max_shift_px=2.0, poly_min_iou=0.0))
    assert ok.passed and ok.lines[0].kind == "within" and ok.lines[0].max_shift_px == 2.0
    bad = compare_image(g, c, replace(STRICT, poly_max_shift_px=1.999, poly_min_iou=0.0))
    assert not bad.passed and bad.lines[0].failed == ("poly",)
    assert bad.required.poly_max_shift_px == 2.0


def test_poly_iou_just_inside_and_just_outside() -> None:
    g = ocr_result(Line("x", 0.5, quad(0, 0, 100, 20)))
    c = ocr_result(Line("x", 0.5, quad(0, 0, 110, 20)))  # IoU 100/110
    iou = 100 / 110
    loose = replace(STRICT, poly_max_shift_px=10.0)
    assert compare_image(g, c, replace(loose, poly_min_iou=iou)).passed
    bad = compare_image(g, c, replace(loose, poly_min_iou=iou + 1e-9))
    assert bad.lines[0].failed == ("poly",)
    assert bad.required.poly_min_iou == pytest.approx(iou)


def test_vertex_order_is_canonicalised() -> None:
    p = quad(10, 10, 200, 20)
    rotated = p[2:] + p[:2]
    reversed_ring = tuple(reversed(p))
    assert max_vertex_shift(p, rotated) == 0.0
    assert max_vertex_shift(p, reversed_ring) == 0.0
    comp = compare_image(ocr_result(Line("x", 0.5, p)), ocr_result(Line("x", 0.5, rotated)), STRICT)
    assert comp.passed and comp.lines[0].kind == "within" and comp.lines[0].iou == 1.0


def test_polygon_iou_edge_cases() -> None:
    assert polygon_iou(quad(0, 0, 200, 20), quad(0, 0, 200, 20)) == 1.0
    assert polygon_iou(quad(0, 0, 200, 20), quad(1000, 0, 200, 20)) == 0.0
    flat = ((0, 0), (10, 0), (20, 0))
    assert polygon_iou(flat, quad(0, 0, 200, 20)) == 0.0
    bowtie = ((0, 0), (10, 10), (10, 0), (0, 10))  # self-intersecting: repaired, not a crash
    assert 0.0 <= polygon_iou(bowtie, quad(0, 0, 10, 10)) <= 1.0
    assert max_vertex_shift(quad(0, 0, 200, 20), ((0, 0), (200, 0), (200, 20), (100, 25), (0, 20))) > 0


# -- score ---------------------------------------------------------------------------------------------------------


def test_score_just_inside_and_just_outside() -> None:
    g = ocr_result(Line("x", 0.5, quad(0, 0, 200, 20)))
    c = ocr_result(Line("x", 0.75, quad(0, 0, 200, 20)))
    assert compare_image(g, c, replace(STRICT, score_abs=0.25)).passed
    bad = compare_image(g, c, replace(STRICT, score_abs=0.2499))
    assert bad.lines[0].failed == ("score",) and bad.lines[0].score_delta == 0.25
    assert bad.required.score_abs == 0.25


# -- missing, extra, matching -------------------------------------------------------------------------------------


def test_missing_and_extra_lines() -> None:
    extra = Line("备注", 0.5, quad(10, 200, 200, 20))
    comp = compare_image(GOLDEN, ocr_result(BANK, DATE, extra), Tolerances())
    kinds = {(d.kind, d.golden_index, d.current_index) for d in comp.lines}
    assert ("missing", 1, None) in kinds and ("extra", None, 2) in kinds
    assert comp.counts["missing"] == 1 and comp.counts["extra"] == 1 and not comp.passed
    assert comp.required.blocking == 2
    assert "1 missing, 1 extra of 3 golden lines" in comp.summary()


def test_below_match_min_iou_is_unmatched() -> None:
    g = ocr_result(Line("x", 0.5, quad(0, 0, 100, 20)))
    c = ocr_result(Line("x", 0.5, quad(80, 0, 100, 20)))  # IoU 20/180
    assert [d.kind for d in compare_image(g, c, replace(Tolerances(), match_min_iou=0.2)).lines] == ["missing", "extra"]
    assert [d.kind for d in compare_image(g, c, replace(Tolerances(), match_min_iou=0.1)).lines] == ["changed"]


def test_matching_maximises_total_iou_not_greedy() -> None:
    a, b = Line("A", 0.5, quad(0, 0, 100, 10)), Line("B", 0.5, quad(0, 0, 33, 10))
    x, y = Line("X", 0.5, quad(0, 0, 60, 10)), Line("Y", 0.5, quad(50, 0, 50, 10))
    # Greedy would take A-X (0.6) first and leave B unmatched; the optimum is A-Y (0.5) + B-X (0.55).
    assert sorted((i, j) for i, j, _ in match_lines([a, b], [x, y], 0.3)) == [(0, 1), (1, 0)]
    assert _max_assignment([[0.6, 0.5], [0.55, 0.0]]) == [(0, 1), (1, 0)]
    assert _max_assignment([[0.6], [0.55], [0.1]]) == [(0, 0)]


def test_image_size_change_fails() -> None:
    comp = compare_image(GOLDEN, ocr_result(BANK, AMOUNT, DATE, size=(801, 300)), Tolerances())
    assert not comp.passed and comp.size_changed and "800x300 -> 801x300" in comp.summary()


def test_different_images_are_a_bug() -> None:
    with pytest.raises(ValueError):
        compare_image(GOLDEN, ocr_result(image_id="other"), Tolerances())


# -- key fields ----------------------------------------------------------------------------------------------------


KEYS = {"amount": "1234.50", "date": "2024年3月5日", "payer_account": "6222 0212 3456 7890"}


def test_cer_keeps_whitespace_so_regrouping_is_a_change() -> None:
    assert cer("601743707102007566", "6017 4370 7102 0075 66") > 0


def test_decimal_point_dropped_is_critical_under_a_relaxed_tolerance() -> None:
    dropped = replace(AMOUNT, text="金额：¥1,23450")  # CER 1/13: inside the nightly's 0.35
    comp = compare_image(GOLDEN, ocr_result(BANK, dropped, DATE), replace(Tolerances(), text_max_cer=0.35),
                         {"amount": "1234.50"})
    assert not comp.passed and comp.critical_fields == ("amount",)
    regrouped = replace(AMOUNT, text="金额：￥1234.50")
    assert compare_image(GOLDEN, ocr_result(BANK, regrouped, DATE), replace(Tolerances(), text_max_cer=0.35),
                         {"amount": "1234.50"}).passed


def test_key_value_lost_is_critical_even_within_text_tolerance() -> None:
    broken = replace(AMOUNT, text="金额：¥1,284.50")  # CER 1/13, inside a 0.1 text tolerance
    comp = compare_image(GOLDEN, ocr_result(BANK, broken, DATE), replace(Tolerances(), text_max_cer=0.1),
                         {"amount": "1,234.50"})
    d = comp.lines[1]
    assert d.kind == "changed" and d.critical and d.key_fields == ("amount",) and d.failed == ("text",)
    assert comp.critical_fields == ("amount",) and comp.counts["critical"] == 1
    assert comp.summary().startswith("slip: FAIL CRITICAL amount")
    assert "[CRITICAL: amount]" in d.describe()


def test_missing_key_line_is_critical_and_names_the_field() -> None:
    comp = compare_image(GOLDEN, ocr_result(BANK, AMOUNT), Tolerances(), {"date": "2024-03-05", "amount": "9.99"})
    missing = [d for d in comp.lines if d.kind == "missing"]
    assert len(missing) == 1 and missing[0].critical and missing[0].key_fields == ("date",)


def test_key_line_that_only_moved_is_not_critical() -> None:
    moved = replace(AMOUNT, poly=quad(14, 40, 200, 20))
    comp = compare_image(GOLDEN, ocr_result(BANK, moved, DATE), Tolerances(), KEYS)
    d = comp.lines[1]
    assert d.kind == "changed" and d.failed == ("poly",) and not d.critical and d.key_fields == ("amount",)
    # Same value written differently is not a loss: separators and currency marks are normalised away.
    respelled = replace(AMOUNT, text="金额：RMB1234.50")
    comp = compare_image(GOLDEN, ocr_result(BANK, respelled, DATE), replace(Tolerances(), text_max_cer=0.5), KEYS)
    assert comp.passed and not comp.critical_fields


def test_empty_key_value_is_ignored() -> None:
    comp = compare_image(GOLDEN, ocr_result(BANK, DATE), Tolerances(), {"reference": " - "})
    assert not comp.critical_fields


# -- report payloads -----------------------------------------------------------------------------------------------


def test_to_dict_is_json_and_lists_changed_lines() -> None:
    changed = replace(AMOUNT, text="金额：¥1,234.80", score=0.5)
    comp = compare_image(GOLDEN, ocr_result(DATE, changed, BANK), Tolerances(), KEYS)
    payload = comp.to_dict()
    canonical_json(payload)  # JSON-able, no NaN
    assert payload["passed"] is False and len(payload["lines"]) == 1
    line = payload["lines"][0]
    assert line["golden_index"] == 1 and line["current_index"] == 1
    assert line["golden_text"] == "金额：¥1,234.50" and line["current_text"] == "金额：¥1,234.80"
    assert line["failed"] == ["text", "score"] and line["critical"] is True
    assert payload["required_tolerances"]["score_abs"] == 0.25


def test_minimum_required_tolerances_over_several_lines() -> None:
    c = ocr_result(
        replace(BANK, score=0.5 + 2**-10),
        replace(AMOUNT, poly=((10, 40), (213, 44), (210, 60), (10, 60))),  # one vertex moves 5 px
        replace(DATE, text="日期：2024-03-06"),
    )
    comp = compare_image(GOLDEN, c, Tolerances())
    r = comp.required
    assert r.score_abs == 2**-10 and r.poly_max_shift_px == 5.0 and r.text_max_cer == 1 / 13
    assert comp.lines[1].iou is not None and r.poly_min_iou == comp.lines[1].iou < 1.0 and r.blocking == 0
    needed = Tolerances(text_max_cer=r.text_max_cer, poly_max_shift_px=r.poly_max_shift_px,
                        poly_min_iou=r.poly_min_iou, score_abs=r.score_abs)
    assert compare_image(GOLDEN, c, needed).passed


def test_summarise_ranks_critical_first_and_rounds_tolerances_outward() -> None:
    key = {"amount": "1234.50"}
    comps = {k: compare_image(replace(GOLDEN, image_id=k), replace(v_cur, image_id=k), tol, kt)
             for k, (v_cur, tol, kt) in {
                 "crit": (ocr_result(BANK, replace(AMOUNT, text="金额：¥1,234.5O"), DATE), Tolerances(), key),
                 "ok": (GOLDEN, Tolerances(), None),
                 "moved": (ocr_result(replace(BANK, poly=quad(13, 10, 200, 20)), replace(DATE, score=0.3), AMOUNT),
                           Tolerances(), None),
                 "gone": (ocr_result(BANK), Tolerances(), None),
             }.items()}
    s = summarise(comps)
    assert not s and s.images == 4 and s.passed == 1 and s.failed == 3
    assert [row.image_id for row in s.worst] == ["crit", "gone", "moved"]
    assert s.counts == {"text": 1, "poly": 1, "score": 1, "missing": 2, "extra": 0, "critical": 1}
    assert s.critical_fields == {"amount": 1}
    canonical_json(s.to_dict())
    md = s.to_markdown()
    assert "**Goldens: 1 of 4 images match.**" in md and "| crit | amount | 1 | 0 | 0 | text |" in md
    printed = dict(re.findall(r"(text_max_cer|poly_max_shift_px|poly_min_iou|score_abs) ([0-9.e+-]+)",
                              s.tolerance_line()))
    assert float(printed["score_abs"]) >= s.required.score_abs
    assert float(printed["poly_min_iou"]) <= s.required.poly_min_iou
    assert float(printed["text_max_cer"]) >= s.required.text_max_cer
    assert "pass under no tolerance" in s.tolerance_line()


def test_summarise_all_passing() -> None:
    s = summarise({"a": compare_image(GOLDEN, GOLDEN, Tolerances())})
    assert s and s.worst == () and "1 of 1 images match" in s.to_markdown()
