"""PaddleOCR's recognition labels, `path<TAB>text`: one cropped line per image, its poly the whole image."""

from __future__ import annotations

from pathlib import Path

from harness.corpus.importers.labels import BadLabel, Entry, Line, read_tab_file, reader


def _transcription(label: str, entry: Entry) -> None:
    if not label.strip():
        raise BadLabel("empty transcription")
    entry.lines.append(Line(label.rstrip("\r\n"), ()))  # poly: the whole image, set on import


@reader("rec")
def read(label: Path, images: Path | None, errors: list[str]) -> list[Entry]:
    return read_tab_file(label, [images or label.parent], _transcription, errors)
