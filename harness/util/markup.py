"""Code spans that hold any text: the fence is one backtick longer than the longest run of backticks inside.

A fixed fence (`` ... ``) let a text holding two backticks close the span early, and what followed was read as
Markdown and HTML: an image id or a template name put raw `<img>` and headings into summary.md and the step
summary. CommonMark ends a span only at a backtick run of the fence's exact length, and strips one space on each
side, so a text beginning or ending with a backtick survives.
"""

from __future__ import annotations

import re

_RUNS = re.compile(r"`+")


def code_span(text: str) -> str:
    """`text` (already one line) as an inline code span no content can end early."""
    longest = max((len(m) for m in _RUNS.findall(text)), default=0)
    if longest == 0:
        return f"`{text}`" if text else "` `"
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}"
