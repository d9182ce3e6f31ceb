"""What every label format reads into (Entry, Line), the registry of formats, and the parsing the formats share:
the `path<TAB>label` line files and PPOCRLabel's JSON boxes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from harness.util.errors import UserError
from harness.util.files import LISTING_MAX, read_input
from harness.util.jsonl import jsonl_lines
from harness.util.values import no_constant, value_problem

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
DONT_CARE = "###"

Point = tuple[int, int]


@dataclass(frozen=True)
class Line:
    text: str
    poly: tuple[Point, ...]  # empty: the whole image (a rec crop), set on import once its size is known


@dataclass
class Entry:
    """One image as the label file describes it."""

    where: str  # "Label.txt:3", for messages
    source: Path  # the image file
    root: Path  # the folder it was found in; the file (and any symlink) must stay inside it
    rel: str  # its path inside the corpus (posix), also the id without extension
    lines: list[Line] = field(default_factory=list)
    ignore: list[Line] = field(default_factory=list)


class BadLabel(Exception):
    """One bad line or image: reported as `where: why`, with every other problem, before anything is written."""


# A format's reader: (label file or folder, --images or None, the problems found so far) -> the entries read.
# A bad line is appended to the problems and skipped; a label path that cannot be read at all is a UserError.
Reader = Callable[[Path, Path | None, list[str]], list[Entry]]
_READERS: dict[str, Reader] = {}


def reader(name: str) -> Callable[[Reader], Reader]:
    """Registers a label format's reader under its `--from` name."""
    def register(read: Reader) -> Reader:
        if name in _READERS:
            raise ValueError(f"label format {name!r} registered twice")
        _READERS[name] = read
        return read
    return register


def formats() -> tuple[str, ...]:
    return tuple(_READERS)


def read_labels(fmt: str, label: Path, images: Path | None, errors: list[str]) -> list[Entry]:
    if fmt not in _READERS:
        raise UserError(f"unknown format {fmt!r} (expected one of: {', '.join(_READERS)})")
    if not label.exists():
        raise UserError(f"{label}: no such file or directory")
    return _READERS[fmt](label, images, errors)


def number(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadLabel(f"{what} must be a number, got {value!r}")
    return round(value)


def _points(value: object) -> tuple[Point, ...]:
    if not isinstance(value, list) or len(value) < 3:
        raise BadLabel(f"'points' must be a list of >= 3 [x, y] points, got {value!r}")
    out = []
    for p in value:
        if not isinstance(p, list | tuple) or len(p) != 2:
            raise BadLabel(f"a point must be [x, y], got {p!r}")
        out.append((number(p[0], "x"), number(p[1], "y")))
    return tuple(out)


def _split_tab(line: str) -> tuple[str, str]:
    path, sep, rest = line.partition("\t")
    if not sep or not path.strip():
        raise BadLabel("expected 'image path<TAB>label'")
    return path.strip(), rest


def json_boxes(text: str, entry: Entry) -> None:
    """PPOCRLabel's (and det labels') `[{"transcription", "points", "difficult"}, ...]` into `entry`."""
    try:
        boxes = json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise BadLabel(f"invalid JSON after the tab ({e.msg} at column {e.colno})") from None
    except RecursionError:  # json's decoder recurses per level: bad input, not a bug
        raise BadLabel("invalid JSON after the tab (nested too deeply)") from None
    except ValueError as e:  # NaN, Infinity
        raise BadLabel(f"invalid JSON after the tab ({e})") from None
    if (bad := value_problem(boxes)) is not None:  # the manifest written from it could not hold it
        raise BadLabel(f"label {bad[0]}: {bad[1]}")
    if not isinstance(boxes, list):
        raise BadLabel("the label must be a JSON list of boxes")
    for n, box in enumerate(boxes):
        if not isinstance(box, dict) or not isinstance(box.get("transcription"), str):
            raise BadLabel(f"box {n} must be an object with a string 'transcription'")
        try:
            line = Line(box["transcription"], _points(box.get("points")))
        except BadLabel as e:
            raise BadLabel(f"box {n}: {e}") from None
        difficult = box.get("difficult", False)
        if not isinstance(difficult, bool):
            raise BadLabel(f"box {n}: 'difficult' must be true or false")
        (entry.ignore if difficult or line.text == DONT_CARE else entry.lines).append(line)


def label_lines(path: Path) -> Iterator[tuple[str, str]]:
    """(where, line) for every non-empty line of a label file."""
    try:
        text = read_input(path, LISTING_MAX).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    for n, line in jsonl_lines(text):
        yield f"{path}:{n}", line


def _rel(image: str) -> str:
    p = PurePosixPath(image.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise BadLabel(f"image path {image!r} must be relative and stay inside the image folder")
    return p.as_posix()


def read_tab_file(path: Path, roots: Sequence[Path], parse: Callable[[str, Entry], None], errors: list[str], *,
                  strip_label_folder: bool = False) -> list[Entry]:
    """A `path<TAB>label` file: each image looked up in `roots` in turn, its label parsed into its entry by
    `parse`. `strip_label_folder`: a path found beside the label file's folder that starts with that folder
    ('slips/x.png' in slips/Label.txt, PPOCRLabel's layout) has the id 'x'."""
    if path.is_dir():
        raise UserError(f"{path}: expected a label file, got a directory")
    entries: dict[str, Entry] = {}
    for where, line in label_lines(path):
        try:
            image, label = _split_tab(line)
            rel = _rel(image)
            root = next((r for r in roots if (r / rel).is_file()), None)
            if root is None:
                raise BadLabel(f"image {image!r} not found (looked in {', '.join(str(r) for r in roots)})")
            source = root / rel
            parts = PurePosixPath(rel).parts
            if strip_label_folder and root != roots[0] and len(parts) > 1 and parts[0] == path.parent.name:
                rel = PurePosixPath(*parts[1:]).as_posix()
            if rel in entries:
                raise BadLabel(f"image {image!r} listed twice (first at {entries[rel].where})")
            entry = Entry(where, source, root, rel)
            parse(label, entry)
            entries[rel] = entry
        except BadLabel as e:
            errors.append(f"{where}: {e}")
    return list(entries.values())
