"""Reading a report.json back without trusting its shape: a report of another version (or a hand-made one) must
still render, so a missing or wrong-typed value reads as its default instead of raising."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def mapping(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def sequence(x: Any) -> Sequence[Any]:
    return x if isinstance(x, (list, tuple)) else ()


def strings(x: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in sequence(x))


def opt_str(x: Any) -> str | None:
    return None if x is None else str(x)


def count(x: Any, default: int = 0) -> int:
    return x if isinstance(x, int) and not isinstance(x, bool) else default


def opt_int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def number(x: Any, default: float = 0.0) -> float:
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else default


def opt_number(x: Any) -> float | None:
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def rest(d: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """The keys a reader does not know (a newer version's): kept aside and written back as they were."""
    return {str(k): v for k, v in d.items() if k not in known}
