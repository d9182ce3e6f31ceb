"""JSON Lines read the way the harness writes them: a record ends at "\\n" and nowhere else.

`str.splitlines()` also breaks at U+2028, U+2029, U+0085, \\x0b, \\x0c and \\x1c-\\x1e, which the writers
(`ensure_ascii=False`) leave raw inside strings: a reader built on it cut one record in two and named the wrong
line numbers. Every JSONL reader goes through `jsonl_lines`.
"""

from __future__ import annotations

_JSON_SPACE = " \t\r"  # what JSON itself calls whitespace around a value (besides "\n", the separator)


def jsonl_lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number, line) for every line holding more than JSON whitespace; a "\\r" before the
    "\\n" (a file saved on Windows) stays on the line, where JSON reads it as whitespace."""
    return [(n, line) for n, line in enumerate(text.split("\n"), start=1) if line.strip(_JSON_SPACE)]
