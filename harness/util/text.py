"""Text forms and the one character error rate that the golden comparison and the accuracy metrics share.

Two forms of a text, for two questions:
- `exact_form` (NFC): did the reading change at all? Golden and path comparisons use it, so a new space inside
  an account number is a change (within tolerance or not), never invisible.
- `accuracy_form` (NFKC, whitespace removed): how well does the reading match the ground truth? Full-width
  （：￥１ and their ASCII forms look alike on a slip and PP-OCR emits either; grouping spaces vary between
  writers and detectors.

Both are measured in grapheme clusters (a base character plus its combining marks, variation selectors and ZWJ
sequences), as dinglehopper does; for Chinese slips that is one cluster per code point.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from rapidfuzz.distance import Levenshtein

Form = Callable[[str], str]
_WHITESPACE = re.compile(r"\s+")


def exact_form(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def accuracy_form(text: str) -> str:
    return _WHITESPACE.sub("", unicodedata.normalize("NFKC", text))


def _extends_cluster(ch: str) -> bool:
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors
        or 0xE0100 <= cp <= 0xE01EF
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji skin tones
        or cp == 0x200D
    )


def graphemes(text: str, form: Form = accuracy_form) -> tuple[str, ...]:
    """Grapheme clusters of the text in `form` (an approximation of UAX #29 that needs no extra dependency)."""
    out: list[str] = []
    joined = False
    for ch in form(text):
        if out and (joined or _extends_cluster(ch)):
            out[-1] += ch
        else:
            out.append(ch)
        joined = ch == "\u200d"
    return tuple(out)


def edit_distance(reference: str, hypothesis: str, form: Form = accuracy_form) -> int:
    """Levenshtein distance over grapheme clusters of both texts in `form`."""
    return int(Levenshtein.distance(graphemes(reference, form), graphemes(hypothesis, form)))


def cer(reference: str, hypothesis: str, form: Form = accuracy_form) -> float:
    """Edits / reference clusters. An empty reference divides by 1, so '' -> 'ab' is 2.0: no tolerance in
    0..1 passes a line that appeared from nothing."""
    if form(reference) == form(hypothesis):
        return 0.0
    return edit_distance(reference, hypothesis, form) / max(len(graphemes(reference, form)), 1)
