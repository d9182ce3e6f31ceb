"""Canonical OCR results: the payload every check and golden compares, and its one JSON form."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from harness.util.values import number_problem, text_problem

Point = tuple[int, int]
REPORT_SCHEMA = "ocr-harness/report/1"  # report.json's own schema; renderers and `report merge` read it


@dataclass(frozen=True)
class Line:
    text: str
    score: float
    poly: tuple[Point, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "score": self.score, "poly": [list(p) for p in self.poly]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Line:
        return cls(text=str(d["text"]), score=float(d["score"]), poly=tuple((int(x), int(y)) for x, y in d["poly"]))


@dataclass(frozen=True)
class OcrResult:
    """What the deployed OCR read on one image. Timings are deliberately not part of it."""

    image_id: str
    width: int
    height: int
    lines: tuple[Line, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "width": self.width,
            "height": self.height,
            "lines": [line.to_dict() for line in self.lines],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OcrResult:
        return cls(
            image_id=str(d["image_id"]),
            width=int(d["width"]),
            height=int(d["height"]),
            lines=tuple(Line.from_dict(x) for x in d["lines"]),
        )

    @property
    def texts(self) -> list[str]:
        return [line.text for line in self.lines]


def reading_order(lines: list[Line]) -> tuple[Line, ...]:
    """Top-to-bottom, left-to-right; ties broken by every field so the order is total."""

    def key(line: Line) -> tuple[Any, ...]:
        ys = [p[1] for p in line.poly]
        xs = [p[0] for p in line.poly]
        return (min(ys), min(xs), max(ys), max(xs), line.poly, line.text, line.score)

    return tuple(sorted(lines, key=key))


def canonical_json(obj: Any) -> str:
    """Sorted keys, indent 2, UTF-8 text, shortest round-trip floats, trailing newline."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def canonical_line(obj: Any) -> str:
    """The same, on one line (JSONL)."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def result_problem(result: Any) -> str | None:
    """Why an engine's answer for one image cannot be a canonical result the reports hold (a NaN score, a
    lone surrogate in a text, a numpy scalar JSON cannot write), or None. Engines from `engine.factory` and
    services answer through here, so the image fails with this line instead of the report failing to write."""
    if not isinstance(result, OcrResult):
        return f"the engine returned a {type(result).__name__}, not an OcrResult"
    if not (_whole(result.width) and _whole(result.height)):
        return f"width and height must be whole numbers, got {result.width!r} x {result.height!r}"
    if not isinstance(result.lines, tuple | list):
        return f"lines must be a sequence, got a {type(result.lines).__name__}"
    for n, line in enumerate(result.lines):
        if not isinstance(line, Line):
            return f"lines[{n}] is a {type(line).__name__}, not a Line"
        if not isinstance(line.text, str):
            return f"lines[{n}].text is a {type(line.text).__name__}, not a string"
        if (why := text_problem(line.text)) is not None:
            return f"lines[{n}].text {why}"
        if not (isinstance(line.score, float) or _whole(line.score)):
            return f"lines[{n}].score is a {type(line.score).__name__}, not a number"
        if (why := number_problem(float(line.score))) is not None:
            return f"lines[{n}].score: {why}"
        if not all(isinstance(p, tuple | list) and len(p) == 2 and all(_whole(v) for v in p) for p in line.poly):
            return f"lines[{n}].poly must be [x, y] pairs of whole numbers"
    return None
