"""Card and account numbers as banks print them: Luhn-valid card numbers, account numbers, grouping."""

from __future__ import annotations

import numpy as np


def luhn_check_digit(partial: str) -> str:
    """The digit that makes `partial + digit` pass the Luhn check."""
    total = 0
    # Walking from the right, the digit next to the (missing) check digit is doubled first.
    for offset, char in enumerate(reversed(partial)):
        digit = int(char)
        if offset % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def is_luhn_valid(number: str) -> bool:
    digits = number.replace(" ", "")
    if len(digits) < 2 or not digits.isdigit():
        return False
    return luhn_check_digit(digits[:-1]) == digits[-1]


def _digits(rng: np.random.Generator, count: int) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, size=count))


# Issuer prefixes in the UnionPay 62 range; invented, they identify no real issuer's product.
_CARD_PREFIXES = ("621700", "622208", "623668", "621483", "622848", "625911", "628288")


def card_number(rng: np.random.Generator, length: int) -> str:
    """A Luhn-valid debit card number of 16-19 digits."""
    if not 16 <= length <= 19:
        raise ValueError(f"card numbers have 16-19 digits, not {length}")
    prefix = _CARD_PREFIXES[int(rng.integers(len(_CARD_PREFIXES)))]
    partial = prefix + _digits(rng, length - len(prefix) - 1)
    return partial + luhn_check_digit(partial)


def account_number(rng: np.random.Generator, length: int) -> str:
    """A settlement account number: no check digit rule, never starts with 0."""
    if not 16 <= length <= 19:
        raise ValueError(f"account numbers here have 16-19 digits, not {length}")
    return str(int(rng.integers(1, 10))) + _digits(rng, length - 1)


def group4(number: str) -> str:
    """6222 0212 3456 7890 123: how receipts often print long numbers."""
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
