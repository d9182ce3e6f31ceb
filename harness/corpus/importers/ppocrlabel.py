"""PPOCRLabel's `Label.txt`: `path<TAB>[{"transcription", "points", "difficult"}, ...]`. PPOCRLabel writes
`folder/image.png` with Label.txt inside `folder/`; a path is looked up relative to the label file's folder
first, then relative to that folder's parent (PPOCRLabel's own layout). With `--images`, only there."""

from __future__ import annotations

from pathlib import Path

from harness.corpus.importers.labels import Entry, json_boxes, read_tab_file, reader


@reader("ppocrlabel")
def read(label: Path, images: Path | None, errors: list[str]) -> list[Entry]:
    roots = [images] if images else [label.parent, label.parent.parent]
    return read_tab_file(label, roots, json_boxes, errors, strip_label_folder=True)
