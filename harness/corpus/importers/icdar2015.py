"""ICDAR 2015: `gt_<name>.txt` files (one per image, `x1,y1,...,x4,y4,transcription`, `###` = don't care), the
image `<name>.(jpg|png|...)` in `--images` (default: the gt file's folder). The label path is one gt file or a
folder of them."""

from __future__ import annotations

from pathlib import Path

from harness.corpus.importers.labels import DONT_CARE, IMAGE_SUFFIXES, BadLabel, Entry, Line, label_lines, reader
from harness.util.errors import UserError


def _line(line: str) -> Line:
    parts = line.rstrip("\r\n").split(",", 8)
    if len(parts) < 9:
        raise BadLabel("expected x1,y1,x2,y2,x3,y3,x4,y4,transcription")
    coords = []
    for v in parts[:8]:
        try:
            coords.append(round(float(v.strip())))
        except ValueError:
            raise BadLabel(f"coordinate {v.strip()!r} is not a number") from None
    return Line(parts[8], tuple(zip(coords[0::2], coords[1::2], strict=True)))


@reader("icdar2015")
def read(label: Path, images: Path | None, errors: list[str]) -> list[Entry]:
    files = sorted(label.glob("gt_*.txt")) if label.is_dir() else [label]
    if not files:
        raise UserError(f"{label}: no gt_*.txt files")
    entries = []
    for gt in files:
        stem = gt.stem[3:] if gt.stem.startswith("gt_") else gt.stem
        folder = images or gt.parent
        source = next((folder / f"{stem}{s}" for s in IMAGE_SUFFIXES if (folder / f"{stem}{s}").is_file()), None)
        if source is None:
            errors.append(f"{gt}: no image {stem}.* in {folder}")
            continue
        entry = Entry(str(gt), source, folder, source.name)
        bad = False
        for where, text in label_lines(gt):
            try:
                line = _line(text)
            except BadLabel as e:
                errors.append(f"{where}: {e}")
                bad = True
                continue
            (entry.ignore if line.text == DONT_CARE else entry.lines).append(line)
        if not bad:
            entries.append(entry)
    return entries
