from __future__ import annotations

import json

from harness.model.results import Line, OcrResult, canonical_json, reading_order


def test_reading_order_is_total_and_stable() -> None:
    a = Line("b", 0.5, ((10, 50), (90, 50), (90, 60), (10, 60)))
    b = Line("a", 0.9, ((10, 10), (90, 10), (90, 20), (10, 20)))
    c = Line("c", 0.9, ((100, 10), (190, 10), (190, 20), (100, 20)))
    assert reading_order([a, b, c]) == reading_order([c, a, b]) == (b, c, a)


def test_canonical_json_round_trips_byte_identical() -> None:
    r = OcrResult("slip/1", 800, 300, (Line("¥12,345.67", 0.9465013146400452, ((1, 2), (3, 2), (3, 4), (1, 4))),))
    text = canonical_json(r.to_dict())
    again = canonical_json(OcrResult.from_dict(json.loads(text)).to_dict())
    assert text == again
    assert "¥12,345.67" in text and text.endswith("\n")
    assert "0.9465013146400452" in text  # full precision, no rounding
