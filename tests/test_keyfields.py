"""The one key-field rule, table-driven: what counts as reading an amount, a date, an account, a reference."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from harness.keyfields import KeyValue, KeyValueError, amounts_in, dates_in, field_kind, parse_fields

# (field, truth value, line read, read?) - the first block is the table.
CASES = [
    ("amount", "6.41", "641", False),
    ("amount", "12,345.67", "112,345.67", False),
    ("amount", "12,345.67", "123,456.7", False),
    ("amount", "48,865.14", "4,886,514", False),
    ("date", "2021.07.28", "22,107.28", False),
    ("payee_account", "601743707102007566", "6017 4370 7102 0075 66", True),
    ("amount", "¥1,234.50", "￥1234.50", True),
    # the planted decimal fault of the end-to-end test
    ("amount", "6.41", "¥641", False),
    ("amount", "82775.49", "￥8277,549", False),
    ("amount", "43921488.92", "￥4392148,892", False),
    # amounts: grouping and currency marks may differ, digits, point and sign may not
    ("amount", "12345.67", "小写金额 ¥12,345.67", True),
    ("amount", "12345.67", "RMB 12 345.67", True),
    ("amount", "12345.67", "CNY12,345.67元", True),
    ("amount", "12345.67", "￥１２，３４５．６７", True),
    ("amount", "5500000.00", "￥5,500,000.00", True),
    ("amount", "1234.50", "1234.5", True),  # the same decimal number
    ("amount", "12345.67", "金额 12345.61", False),
    ("amount", "12345.67", "12345.678", False),
    ("amount", "12345.67", "12345", False),
    ("amount", "12345.67", "1,2345.67", False),  # bad grouping is no number
    ("amount", "6.41", "-6.41", False),  # sign
    ("amount", "6.41", "P4650-6.41", True),  # a hyphen inside a code is no sign
    # dates: any of the written forms, compared as dates, never cut from a longer digit run
    ("date", "2024-03-05", "日期：2024年3月5日", True),
    ("date", "2024-03-05", "2024/03/05", True),
    ("date", "2024-03-05", "2024.3.5", True),
    ("date", "2024-03-05", "交易日 20240305", True),
    ("date", "2024-03-05", "2024 - 03 - 05", True),
    ("date", "2024年3月5日", "2024-03-05", True),
    ("date", "2024-03-05", "2024-03-06", False),
    ("date", "2024-03-05", "流水号 120240305", False),
    ("date", "2024-03-05", "2024/03.05", False),  # mixed separators are not a date
    ("date", "2020-12-02", "2020-12-0216:33", False),  # glued to a time: the day is cut
    ("date", "2024-03-05", "2024年3月51日", False),
    # accounts: digit strings, grouping spaces or hyphens anywhere, no digit directly around
    ("payer_account", "6222 0212 3456 7890", "付款账号 6222021234567890", True),
    ("payer_account", "6222 0212 3456 7890", "6222-0212-3456-7890", True),
    ("payer_account", "6222021234567890", "６２２２０２１２３４５６７８９０", True),
    ("payer_account", "6222 0212 3456 7890", "62220212345678901", False),
    ("payer_account", "6222 0212 3456 7890", "622202123456789", False),
    ("payer_account", "6222021234567890", "6222 0212 3456 7809", False),
    # text (references, amounts in words): whole tokens, whitespace ignored
    ("reference", "TX20240305-0042", "REF TX20240305-0042", True),
    ("reference", "2020120275894232", "No.2020120275894232", True),
    ("reference", "2020120275894232", "No.20201202758942321", False),
    ("reference", "2020120275894232", "No.2020 1202 7589 4232", True),
    ("amount_words", "柒万元整", "人民币柒万元整", True),
    ("amount_words", "柒万元整", "壹拾柒万元整", False),  # cut from a longer run of numerals
    ("amount_words", "壹万贰仟叁佰肆拾伍元陆角柒分", "人民币（大写）壹万贰仟叁佰肆拾伍元陆角柒分", True),
]


@pytest.mark.parametrize(("name", "truth", "line", "read"), CASES, ids=[f"{c[0]}:{c[1]}->{c[2]}" for c in CASES])
def test_reads(name: str, truth: str, line: str, read: bool) -> None:
    key = KeyValue.parse(name, truth)
    assert key is not None and key.read_by(line) is read


def test_kinds() -> None:
    assert [field_kind(n) for n in ("amount", "amount_words", "payer_account", "date", "reference")] == \
        ["amount", "text", "account", "date", "text"]


def test_values_are_parsed_by_kind() -> None:
    assert amounts_in("¥1,234.50 and 7") == [Decimal("1234.50"), Decimal("7")]
    assert dates_in("2024-02-30 2024-02-29") == {dt.date(2024, 2, 29)}
    assert KeyValue.parse("payee_account", "6222-0212").digits == "62220212"


def test_empty_values_are_not_scored_and_bad_ones_are_named() -> None:
    assert parse_fields({"reference": " - ", "amount": "1.00"}).keys() == {"amount"}
    with pytest.raises(KeyValueError, match="'date'.*not a date"):
        KeyValue.parse("date", "March 5")
    with pytest.raises(KeyValueError, match="'amount'.*not one amount"):
        KeyValue.parse("amount", "1.00 or 2.00")
    with pytest.raises(KeyValueError, match="'payer_account'.*no digits"):
        KeyValue.parse("payer_account", "n/a")


def test_a_letter_glued_to_the_digits_is_a_misread_digit() -> None:
    key = KeyValue.parse("amount", "1234.50")
    assert key is not None
    assert not key.read_by("金额：¥1,234.5O")
    assert key.read_by("1,234.50RMB") and key.read_by("1,234.50 元")
