"""Key fields (amounts, account numbers, dates, references): one rule for "this line reads that value".

Used by the golden comparison, the batch-path, variation and parity checks (through `compare_image`) and the
accuracy metrics, so a value that one of them counts as read is read for all of them.

A line reads a value only when it carries it as a whole token, after NFKC (full-width ￥１２．３ and their
ASCII forms are the same reading):

- amount: every number token in the line is parsed as a decimal; grouping separators (`,` or a space before
  each group of three digits) and currency marks may differ, the digits, the decimal point and the sign may
  not. '¥1,234.50' reads 1234.50; '¥123,450', '8277,549' and '1,234.5O' do not (the point moved; bad
  grouping is no number; a letter glued to the digits is a misread digit). A token is never cut out of a longer number: '112,345.67' does not read 12,345.67.
- date: yyyy-mm-dd, yyyy/mm/dd, yyyy.mm.dd (one separator throughout), yyyy年m月d日 or yyyymmdd, compared as
  dates, never cut out of a longer digit run.
- account: the digit string, grouping spaces or hyphens allowed between any digits, no digit directly before
  or after: '6017 4370 7102 0075 66' reads 601743707102007566.
- text (amount in words, references, anything else): casefolded, whitespace removed, found as a substring
  that does not cut through a longer ASCII word/number or a run of Chinese capital numerals.

The kind comes from the field name (`field_kind`).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Kind = Literal["amount", "date", "account", "text"]

_SIGNS = "-−"
# A number token: not cut from a longer number, and not glued to a letter ('1,234.5O': an O read for a 0),
# except a currency code.
_AMOUNT = re.compile(r"(?<![\d.,])(\d{1,3}(?:(?:,| )\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
                     r"(?!\d|[.,]\d|(?!RMB|CNY)[A-Za-z])", re.IGNORECASE)
_DATE_SPACE = re.compile(r"\s*([-/.年月日])\s*")
_DATES = (
    re.compile(r"(?<!\d)(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{4})()年(\d{1,2})月(\d{1,2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{4})()(\d{2})(\d{2})(?!\d)"),
)
_WHITESPACE = re.compile(r"\s+")
_CJK_NUMERALS = set("零壹贰叁肆伍陆柒捌玖拾佰仟万亿")


class KeyValueError(ValueError):
    """A ground-truth key value that its kind cannot parse (a date that is no date, an amount with no number)."""


def field_kind(name: str) -> Kind:
    """'date', 'amount', 'account' or 'text', from the field name (amount_words is text)."""
    if "date" in name:
        return "date"
    if name.endswith("_words"):
        return "text"
    if "amount" in name:
        return "amount"
    if "account" in name:
        return "account"
    return "text"


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def amounts_in(text: str) -> list[Decimal]:
    """Every number token of the text as a signed decimal (see the module docstring)."""
    s = _nfkc(text)
    out = []
    for m in _AMOUNT.finditer(s):
        value = Decimal(m.group(1).replace(",", "").replace(" ", ""))
        i = m.start()
        # A minus sign counts only where it cannot be a hyphen inside a code or a date ('2020-12').
        if i > 0 and s[i - 1] in _SIGNS and (i == 1 or not s[i - 2].isalnum()):
            value = -value
        out.append(value)
    return out


def dates_in(text: str) -> set[dt.date]:
    """Every valid date written in the text."""
    # Spaces go only around separators: removing all would run "2024-02-30 2024-02-29" together.
    s = _DATE_SPACE.sub(r"\1", _nfkc(text))
    found = set()
    for pattern in _DATES:
        for m in pattern.finditer(s):
            try:
                found.add(dt.date(int(m.group(1)), int(m.group(3)), int(m.group(4))))
            except ValueError:
                continue
    return found


def _digits(text: str) -> str:
    return "".join(ch for ch in _nfkc(text) if ch.isdigit())


def _text(text: str) -> str:
    return _WHITESPACE.sub("", _nfkc(text)).casefold()


@dataclass(frozen=True)
class KeyValue:
    """One ground-truth key value, parsed once by its kind."""

    name: str
    raw: str
    kind: Kind
    amount: Decimal | None = None
    date: dt.date | None = None
    digits: str = ""
    text: str = ""

    @classmethod
    def parse(cls, name: str, raw: str) -> KeyValue | None:
        """None for an empty value (not scored); KeyValueError for one its kind cannot parse."""
        if not _WHITESPACE.sub("", raw).strip("-/.:"):
            return None
        kind = field_kind(name)
        if kind == "amount":
            found = amounts_in(raw)
            if len(found) != 1:
                raise KeyValueError(f"key field {name!r}: {raw!r} is not one amount")
            return cls(name, raw, kind, amount=found[0])
        if kind == "date":
            dates = dates_in(raw)
            if len(dates) != 1:
                raise KeyValueError(f"key field {name!r}: {raw!r} is not a date "
                                    "(yyyy-mm-dd, yyyy/mm/dd, yyyy.mm.dd, yyyy年m月d日 or yyyymmdd)")
            return cls(name, raw, kind, date=next(iter(dates)))
        if kind == "account":
            digits = _digits(raw)
            if not digits:
                raise KeyValueError(f"key field {name!r}: {raw!r} has no digits")
            return cls(name, raw, kind, digits=digits)
        return cls(name, raw, kind, text=_text(raw))

    def read_by(self, line: str) -> bool:
        """Whether `line` carries this value as a whole token."""
        if self.kind == "amount":
            return self.amount in amounts_in(line)
        if self.kind == "date":
            return self.date in dates_in(line)
        if self.kind == "account":
            return _account_in(self.digits, _nfkc(line))
        return _text_in(self.text, line)


def _account_in(digits: str, line: str) -> bool:
    pattern = r"(?<!\d)" + r"[ \-]?".join(digits) + r"(?!\d)"
    return re.search(pattern, line) is not None


def _joins(a: str, b: str) -> bool:
    """Whether two adjacent characters belong to one token (so a match may not split them)."""
    return (a.isascii() and a.isalnum() and b.isascii() and b.isalnum()) or (a in _CJK_NUMERALS and b in _CJK_NUMERALS)


def _text_in(needle: str, line: str) -> bool:
    """`needle` (whitespace-free) in `line`, whitespace in the line ignored, without cutting a token."""
    if not needle:
        return False
    s = _nfkc(line).casefold()
    for m in re.finditer(r"\s*".join(map(re.escape, needle)), s):
        cut_before = m.start() > 0 and _joins(s[m.start() - 1], needle[0])
        cut_after = m.end() < len(s) and _joins(needle[-1], s[m.end()])
        if not cut_before and not cut_after:
            return True
    return False


def parse_fields(fields: dict[str, str] | None) -> dict[str, KeyValue]:
    """Every non-empty ground-truth field, parsed; KeyValueError names the first one that cannot be."""
    out = {}
    for name, raw in (fields or {}).items():
        value = KeyValue.parse(name, raw)
        if value is not None:
            out[name] = value
    return out
