from decimal import Decimal

import pytest

from harness.corpus.amounts import amount_in_words, format_figure, normalised, to_fen

CASES = [
    ("12345.67", "壹万贰仟叁佰肆拾伍元陆角柒分"),
    ("10005", "壹万零伍元整"),
    ("0.05", "伍分"),
    ("0.50", "伍角整"),
    ("0.55", "伍角伍分"),
    ("0", "零元整"),
    ("100000", "壹拾万元整"),
    ("10.10", "壹拾元壹角整"),
    ("10", "壹拾元整"),
    ("1,000,000.01", "壹佰万元零壹分"),
    ("1409.50", "壹仟肆佰零玖元伍角整"),
    ("6007.14", "陆仟零柒元壹角肆分"),
    ("16409.02", "壹万陆仟肆佰零玖元零贰分"),
    ("325.04", "叁佰贰拾伍元零肆分"),
    ("1680.32", "壹仟陆佰捌拾元叁角贰分"),
    ("107000.53", "壹拾万柒仟元伍角叁分"),
    ("100100000", "壹亿零壹拾万元整"),
    ("100000001", "壹亿零壹元整"),
    ("2000000000", "贰拾亿元整"),
    ("1010101.01", "壹佰零壹万零壹佰零壹元零壹分"),
    ("99999999.99", "玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
]


@pytest.mark.parametrize(("amount", "words"), CASES)
def test_amount_in_words(amount: str, words: str) -> None:
    assert amount_in_words(amount) == words


def test_accepts_decimal_and_int() -> None:
    assert amount_in_words(Decimal("10005.00")) == amount_in_words(10005) == "壹万零伍元整"


@pytest.mark.parametrize("bad", ["1.234", "-1", "abc", "NaN", "1e30"])
def test_rejects_bad_amounts(bad: str) -> None:
    with pytest.raises(ValueError):
        to_fen(bad)


def test_normalised_and_figures() -> None:
    assert normalised("12,345.6") == "12345.60"
    assert format_figure("12345.67", "yen_grouped") == "¥12,345.67"
    assert format_figure("12345.67", "rmb_plain") == "RMB 12345.67"
    assert format_figure("12345.67", "fullwidth_yen_plain") == "￥12345.67"
    assert format_figure("1000000", "cny_grouped") == "CNY 1,000,000.00"
