"""The rules every value that enters the harness meets, the same ones its writers enforce.

Canonical JSON is written with `allow_nan=False` and encoded as UTF-8, so a NaN or an infinity, or a string
holding a lone surrogate (JSON's `"\\ud800"` escape decodes to one), accepted at input was refused at output:
the run completed and its report could not be written. Decoders call these where a value enters, and name the
file (or the service) and the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def text_problem(text: str) -> str | None:
    """Why `text` cannot be written as UTF-8 (a lone surrogate), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"holds a lone surrogate U+{ord(text[e.start]):04X} at character {e.start} (not a Unicode character)"
    return None


def number_problem(value: float) -> str | None:
    """Why a float cannot be written as JSON (NaN or an infinity), or None."""
    return None if math.isfinite(value) else f"{value!r} is not a finite number"


def value_problem(value: Any, where: str = "") -> tuple[str, str] | None:
    """The first (field path, problem) inside a decoded JSON/TOML value: a key or string with a lone surrogate,
    a float that is not finite. Walks with its own stack: nesting that the decoder accepted never recurses here."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str):
            why = text_problem(v)
        elif isinstance(v, float):
            why = number_problem(v)
        elif isinstance(v, Mapping):
            why = None
            for k, item in reversed(list(v.items())):
                key = str(k)
                if (kw := text_problem(key)) is not None:
                    return (f"{path}.<key {shown_key(key)}>".lstrip("."), kw)
                stack.append((f"{path}.{shown_key(key)}" if path else shown_key(key), item))
        elif isinstance(v, list | tuple):
            why = None
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(v))))
        else:
            why = None
        if why is not None:
            return (path or "(top level)", why)
    return None


def shown_key(key: str) -> str:
    """A key as a message names it: quoted and escaped (one line, ASCII) unless it is a plain name."""
    # A key is input too: quoted and escaped (one line, ASCII) unless it is a plain name.
    return key if key.isidentifier() or (key.replace("-", "_").isidentifier() and key.isascii()) else json.dumps(key)


def printable(text: str) -> str:
    """`text` with lone surrogates written as `\\ud800`-style escapes: an error message quoting bad input stays
    writable."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def no_constant(name: str) -> Any:
    """json.loads(parse_constant=...): NaN, Infinity and -Infinity are not JSON numbers."""
    raise ValueError(f"{name} is not a number JSON allows")


def json_number(x: float | None) -> float | str | None:
    """Canonical JSON has no NaN/inf: they are written as strings."""
    if x is None or math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
