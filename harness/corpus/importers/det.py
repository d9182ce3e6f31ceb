"""PaddleOCR's detection training labels: PPOCRLabel's line format, paths relative to `--images` (default: the
label file's folder)."""

from __future__ import annotations

from pathlib import Path

from harness.corpus.importers.labels import Entry, json_boxes, read_tab_file, reader


@reader("det")
def read(label: Path, images: Path | None, errors: list[str]) -> list[Entry]:
    return read_tab_file(label, [images or label.parent], json_boxes, errors)
