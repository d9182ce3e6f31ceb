"""The one-line progress display of a run's inference passes on a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

Progress = Callable[[str, int, int, str], None]  # (pass label, images done, images in the pass, last image id)


def terminal_progress(stream: Any = sys.stderr) -> Progress | None:
    """A one-line progress display on a TTY; silent in CI and pipes."""
    if not stream.isatty() or os.environ.get("CI"):
        return None

    def show(label: str, done: int, total: int, image_id: str) -> None:
        width = 30
        filled = int(width * done / total)
        stream.write(f"\r{label:>8} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {image_id[:30]:<30}")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show
