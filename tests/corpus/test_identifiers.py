import numpy as np
import pytest

from harness.corpus.identifiers import account_number, card_number, group4, is_luhn_valid, luhn_check_digit


@pytest.mark.parametrize("number", ["79927398713", "4539578763621486", "4111111111111111", "6011 0009 9013 9424"])
def test_known_valid_numbers(number: str) -> None:
    assert is_luhn_valid(number)


@pytest.mark.parametrize("number", ["79927398710", "4539578763621487", "", "1", "12a4"])
def test_invalid_numbers(number: str) -> None:
    assert not is_luhn_valid(number)


def test_check_digit_textbook() -> None:
    assert luhn_check_digit("7992739871") == "3"


def test_generated_cards_are_valid_and_sized() -> None:
    rng = np.random.default_rng(7)
    for length in range(16, 20):
        for _ in range(20):
            card = card_number(rng, length)
            assert len(card) == length and card.startswith("62") and is_luhn_valid(card)
            assert is_luhn_valid(group4(card))
    acct = account_number(rng, 17)
    assert len(acct) == 17 and acct[0] != "0"
    with pytest.raises(ValueError):
        card_number(rng, 15)


def test_group4() -> None:
    assert group4("6222021234567890123") == "6222 0212 3456 7890 123"
