"""`corpus import`: the label files PaddleOCR users already have, turned into a harness corpus.

Formats (`--from`):
- ppocrlabel: PPOCRLabel's `Label.txt`, `path<TAB>[{"transcription", "points", "difficult"}, ...]`. PPOCRLabel
  writes `folder/image.png` with Label.txt inside `folder/`; a path is looked up relative to the label file's
  folder first, then relative to that folder's parent (PPOCRLabel's own layout).
- det: PaddleOCR's detection training labels: the same line format, paths relative to `--images`.
- rec: PaddleOCR's recognition labels, `path<TAB>text`: one cropped line per image, its poly the whole image.
- icdar2015: `gt_<name>.txt` files (one per image, `x1,y1,...,x4,y4,transcription`, `###` = don't care), the
  image `<name>.(jpg|png|...)` in `--images` (default: the gt file's folder).

Don't-care regions (`###`, `difficult: true`) are not ground-truth lines: they go to the record's `ignore`
list, so they are kept but never scored as text.

Everything is parsed and checked before anything is written; every bad line is one message `file:line: why`.
The checks are `corpus validate`'s own: ids (after the extension is stripped: `x.png` and `x.jpg` are one id),
the image decoded by the reader runs use (pixels, bytes, decompression bombs), and no path or symlink that
leads out of the image folder. Images are then copied one at a time, hashed as they stream, so memory does not
grow with the corpus. The output directory is built next to its final place and renamed into it, so a failed
import leaves nothing.

`--force` replaces only what an import writes: a directory holding nothing but `manifest.jsonl`, `images/` and
the import's marker file (which older imports did not write); never one that holds the labels or the images
being imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from harness.corpus.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, read_image
from harness.keyfields import KeyValue, KeyValueError
from harness.util.atomic import write_text
from harness.util.errors import ImageError, UserError
from harness.util.files import CONFIG_MAX, LISTING_MAX, read_input, read_input_text
from harness.util.image_id import image_id_problem
from harness.util.jsonl import jsonl_lines
from harness.util.values import no_constant, value_problem

FORMATS = ("ppocrlabel", "det", "rec", "icdar2015")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
DONT_CARE = "###"
# In every directory an import writes: what lets a later `--force` know the directory is a replaceable import.
MARKER = ".ocr-harness-import"
_CHUNK = 1 << 20

Point = tuple[int, int]


@dataclass(frozen=True)
class Line:
    text: str
    poly: tuple[Point, ...]


@dataclass
class Entry:
    """One image as the label file describes it."""

    where: str  # "Label.txt:3", for messages
    source: Path  # the image file
    root: Path  # the folder it was found in; the file (and any symlink) must stay inside it
    rel: str  # its path inside the corpus (posix), also the id without extension
    lines: list[Line] = field(default_factory=list)
    ignore: list[Line] = field(default_factory=list)


@dataclass(frozen=True)
class FieldRule:
    """One key field: a regex over each transcription; group 1 (or the whole match) is the value."""

    name: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class ImportResult:
    out: Path
    images: int
    lines: int
    ignored: int
    missing_fields: tuple[str, ...]  # "id: field 'amount' not found", per image


class _Bad(Exception):
    pass


# ---------------------------------------------------------------- field mapping


def parse_field_rules(specs: Sequence[str], mapping_file: Path | None) -> list[FieldRule]:
    """`--field name=REGEX` flags and a TOML/JSON `{name = "regex"}` file; bad regexes are UserErrors."""
    raw: dict[str, tuple[str, str]] = {}  # name -> (regex, where)
    if mapping_file is not None:
        try:
            text = read_input_text(mapping_file, CONFIG_MAX)
            data = json.loads(text) if mapping_file.suffix == ".json" else tomllib.loads(text)
        except OSError as e:
            raise UserError(f"{mapping_file}: cannot read ({e.strerror})") from None
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
            raise UserError(f"{mapping_file}: invalid {mapping_file.suffix.lstrip('.') or 'TOML'}: {e}") from None
        except RecursionError:
            raise UserError(f"{mapping_file}: nested too deeply") from None
        data = data.get("fields", data) if isinstance(data, dict) else data
        if not isinstance(data, dict):
            raise UserError(f"{mapping_file}: expected a table of field name = regex")
        for name, regex in data.items():
            if not isinstance(regex, str):
                raise UserError(f"{mapping_file}: field {name!r}: the regex must be a string")
            raw[name] = (regex, f"{mapping_file}: field {name!r}")
    for spec in specs:
        name, sep, regex = spec.partition("=")
        if not sep or not name.strip() or not regex:
            raise UserError(f"--field {spec!r}: expected NAME=REGEX")
        raw[name.strip()] = (regex, f"--field {name.strip()}")
    rules = []
    for name, (regex, where) in raw.items():
        try:
            pattern = re.compile(regex)
        except re.error as e:
            raise UserError(f"{where}: invalid regex {regex!r} ({e})") from None
        if pattern.groups > 1:
            raise UserError(f"{where}: regex {regex!r} has {pattern.groups} groups; use one (the value) or none")
        rules.append(FieldRule(name, pattern))
    return rules


def extract_fields(rules: Sequence[FieldRule], lines: Sequence[Line], where: str) -> tuple[dict[str, str], list[str]]:
    """The fields found in the transcriptions, and the names not found. A value its kind cannot read, or two
    different values for one field, is an error: a wrong ground truth would fail every check that uses it."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for rule in rules:
        values = []
        for line in lines:
            for m in rule.pattern.finditer(line.text):
                value = (m.group(1) if rule.pattern.groups else m.group(0)) or ""
                if value.strip() and value not in values:
                    values.append(value)
        if not values:
            missing.append(rule.name)
            continue
        if len(values) > 1:
            raise _Bad(f"{where}: field {rule.name!r} matches {len(values)} different values "
                       f"({', '.join(map(repr, values[:3]))}); make its regex specific to one line")
        try:
            KeyValue.parse(rule.name, values[0])
        except KeyValueError as e:
            raise _Bad(f"{where}: {e}") from None
        found[rule.name] = values[0]
    return found, missing


# ---------------------------------------------------------------- readers


def _number(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"{what} must be a number, got {value!r}")
    return round(value)


def _points(value: object) -> tuple[Point, ...]:
    if not isinstance(value, list) or len(value) < 3:
        raise _Bad(f"'points' must be a list of >= 3 [x, y] points, got {value!r}")
    out = []
    for p in value:
        if not isinstance(p, list | tuple) or len(p) != 2:
            raise _Bad(f"a point must be [x, y], got {p!r}")
        out.append((_number(p[0], "x"), _number(p[1], "y")))
    return tuple(out)


def _split_tab(line: str) -> tuple[str, str]:
    path, sep, rest = line.partition("\t")
    if not sep or not path.strip():
        raise _Bad("expected 'image path<TAB>label'")
    return path.strip(), rest


def _json_boxes(text: str, entry: Entry) -> None:
    try:
        boxes = json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise _Bad(f"invalid JSON after the tab ({e.msg} at column {e.colno})") from None
    except RecursionError:  # json's decoder recurses per level: bad input, not a bug
        raise _Bad("invalid JSON after the tab (nested too deeply)") from None
    except ValueError as e:  # NaN, Infinity
        raise _Bad(f"invalid JSON after the tab ({e})") from None
    if (bad := value_problem(boxes)) is not None:  # the manifest written from it could not hold it
        raise _Bad(f"label {bad[0]}: {bad[1]}")
    if not isinstance(boxes, list):
        raise _Bad("the label must be a JSON list of boxes")
    for number, box in enumerate(boxes):
        if not isinstance(box, dict) or not isinstance(box.get("transcription"), str):
            raise _Bad(f"box {number} must be an object with a string 'transcription'")
        try:
            line = Line(box["transcription"], _points(box.get("points")))
        except _Bad as e:
            raise _Bad(f"box {number}: {e}") from None
        difficult = box.get("difficult", False)
        if not isinstance(difficult, bool):
            raise _Bad(f"box {number}: 'difficult' must be true or false")
        (entry.ignore if difficult or line.text == DONT_CARE else entry.lines).append(line)


def _label_lines(path: Path) -> Iterator[tuple[str, str]]:
    """(where, line) for every non-empty line of a label file."""
    try:
        text = read_input(path, LISTING_MAX).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    for number, line in jsonl_lines(text):
        yield f"{path}:{number}", line


def _rel(image: str) -> str:
    p = PurePosixPath(image.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise _Bad(f"image path {image!r} must be relative and stay inside the image folder")
    return p.as_posix()


def _read_tab_file(path: Path, roots: Sequence[Path], parse: str, errors: list[str]) -> list[Entry]:
    entries: dict[str, Entry] = {}
    for where, line in _label_lines(path):
        try:
            image, label = _split_tab(line)
            rel = _rel(image)
            root = next((r for r in roots if (r / rel).is_file()), None)
            if root is None:
                raise _Bad(f"image {image!r} not found (looked in {', '.join(str(r) for r in roots)})")
            source = root / rel
            parts = PurePosixPath(rel).parts
            if root != roots[0] and parse == "ppocrlabel" and len(parts) > 1 and parts[0] == path.parent.name:
                rel = PurePosixPath(*parts[1:]).as_posix()  # 'slips/x.png' in slips/Label.txt: the id is 'x'

            if rel in entries:
                raise _Bad(f"image {image!r} listed twice (first at {entries[rel].where})")
            entry = Entry(where, source, root, rel)
            if parse == "rec":
                if not label.strip():
                    raise _Bad("empty transcription")
                entry.lines.append(Line(label.rstrip("\r\n"), ()))  # poly: the whole image, set on import
            else:
                _json_boxes(label, entry)
            entries[rel] = entry
        except _Bad as e:
            errors.append(f"{where}: {e}")
    return list(entries.values())


def _read_icdar(path: Path, images: Path | None, errors: list[str]) -> list[Entry]:
    files = sorted(path.glob("gt_*.txt")) if path.is_dir() else [path]
    if not files:
        raise UserError(f"{path}: no gt_*.txt files")
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
        for where, line in _label_lines(gt):
            parts = line.rstrip("\r\n").split(",", 8)
            try:
                if len(parts) < 9:
                    raise _Bad("expected x1,y1,x2,y2,x3,y3,x4,y4,transcription")
                coords = []
                for v in parts[:8]:
                    try:
                        coords.append(round(float(v.strip())))
                    except ValueError:
                        raise _Bad(f"coordinate {v.strip()!r} is not a number") from None
                poly = tuple(zip(coords[0::2], coords[1::2], strict=True))
                text = parts[8]
                (entry.ignore if text == DONT_CARE else entry.lines).append(Line(text, poly))
            except _Bad as e:
                errors.append(f"{where}: {e}")
                bad = True
        if not bad:
            entries.append(entry)
    return entries


def read_labels(fmt: str, label: Path, images: Path | None, errors: list[str]) -> list[Entry]:
    if not label.exists():
        raise UserError(f"{label}: no such file or directory")
    if fmt == "icdar2015":
        return _read_icdar(label, images, errors)
    if label.is_dir():
        raise UserError(f"{label}: expected a label file, got a directory")
    if fmt == "ppocrlabel":
        roots = [images] if images else [label.parent, label.parent.parent]
    else:
        roots = [images or label.parent]
    return _read_tab_file(label, roots, fmt, errors)


# ---------------------------------------------------------------- import


@dataclass(frozen=True)
class _Checked:
    """One image that passed every check: its record, and where its bytes come from."""

    record: dict[str, Any]  # its manifest.jsonl line, as JSON
    source: Path
    rel: str


def _checked_size(entry: Entry, max_pixels: int, max_bytes: int) -> tuple[int, int]:
    """(width, height) as a run will see the image, or _Bad: the same reader and limits `corpus validate` uses."""
    if not entry.source.resolve().is_relative_to(entry.root.resolve()):
        what = "a symlink" if entry.source.is_symlink() or any(
            p.is_symlink() for p in entry.source.parents if p.is_relative_to(entry.root)) else "a path"
        raise _Bad(f"image {entry.rel!r} is {what} that leads outside the image folder {entry.root}")
    try:
        pixels = read_image(entry.source, max_pixels=max_pixels, max_bytes=max_bytes)
    except ImageError as e:
        raise _Bad(f"image {e}") from None
    height, width = pixels.shape[:2]  # after EXIF orientation, as the engine reads it
    return width, height


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _record(entry: Entry, rules: Sequence[FieldRule], subsets: Sequence[str], missing: list[str],
            max_pixels: int, max_bytes: int) -> _Checked:
    item_id = str(PurePosixPath(entry.rel).with_suffix(""))
    if why := image_id_problem(item_id):
        raise _Bad(f"unsafe id {item_id!r} ({why})")
    width, height = _checked_size(entry, max_pixels, max_bytes)
    lines = [Line(ln.text, ln.poly or ((0, 0), (width, 0), (width, height), (0, height))) for ln in entry.lines]
    fields, not_found = extract_fields(rules, lines, entry.where)
    missing.extend(f"{item_id}: field {name!r} not found ({entry.where})" for name in not_found)
    record: dict[str, Any] = {
        "id": item_id,
        "file": f"images/{entry.rel}",
        "sha256": _file_sha256(entry.source),
        "lines": [{"text": ln.text, "poly": [list(p) for p in ln.poly]} for ln in lines],
        "fields": fields,
        "subsets": list(subsets),
    }
    if entry.ignore:
        record["ignore"] = [{"text": ln.text, "poly": [list(p) for p in ln.poly]} for ln in entry.ignore]
    return _Checked(record, entry.source, entry.rel)


def _duplicate_ids(entries: Sequence[Entry], errors: list[str]) -> list[Entry]:
    """Entries whose id (the path without its extension) no other entry has; the others are errors, every copy
    named, as `corpus validate` would name them."""
    by_id: dict[str, list[Entry]] = {}
    for entry in entries:
        by_id.setdefault(str(PurePosixPath(entry.rel).with_suffix("")), []).append(entry)
    for item_id, same in by_id.items():
        if len(same) > 1:
            errors.append(f"{same[1].where}: duplicate id {item_id!r}: "
                          + " and ".join(f"{e.rel!r} ({e.where})" for e in same) + " differ only in extension")
    return [e for e in entries if len(by_id[str(PurePosixPath(e.rel).with_suffix(""))]) == 1]


def import_corpus(fmt: str, label: Path, out: Path, *, images: Path | None = None,
                  rules: Sequence[FieldRule] = (), subsets: Sequence[str] = ("full",),
                  force: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
                  max_bytes: int = DEFAULT_MAX_BYTES) -> ImportResult:
    """Reads, checks and writes the corpus `out/` (manifest.jsonl + images/); UserError lists every bad line."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    protected = [label, *([images] if images is not None else [])]
    _check_out(out, force, protected)
    errors: list[str] = []
    entries = _duplicate_ids(read_labels(fmt, label, images, errors), errors)
    protected += [p for e in entries for p in (e.source, e.root)]
    _check_out(out, force, protected)
    checked: list[_Checked] = []
    missing: list[str] = []
    for entry in entries:
        try:
            checked.append(_record(entry, rules, subsets, missing, max_pixels, max_bytes))
        except _Bad as e:
            errors.append(str(e) if str(e).startswith(entry.where) else f"{entry.where}: {e}")
        except OSError as e:
            errors.append(f"{entry.where}: image {entry.rel!r} cannot be read ({e.strerror})")
    if errors:
        raise ImportErrors(errors)
    if not checked:
        raise UserError(f"{label}: no labelled images")
    _write(out, checked, force, protected)
    return ImportResult(out, len(checked), sum(len(c.record["lines"]) for c in checked),
                        sum(len(c.record.get("ignore", [])) for c in checked), tuple(missing))


def _fresh(out: Path) -> bool:
    """An empty directory, or one holding only the empty manifest `ocr-harness init` writes."""
    if not out.is_dir():
        return False
    return all(p.name == "manifest.jsonl" and p.is_file() and p.stat().st_size == 0 for p in out.iterdir())


def _foreign(out: Path) -> list[str]:
    """What in `out` an import did not write: anything beside `manifest.jsonl`, `images/` and the marker (an
    older import wrote no marker). Empty: `--force` may replace it. Symlinks count as foreign: replacing one
    would delete only the link, but what it names was never ours to judge."""
    ours = {"manifest.jsonl": Path.is_file, "images": Path.is_dir, MARKER: Path.is_file}
    return sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir()
                  if p.name not in ours or p.is_symlink() or not ours[p.name](p))


def _check_out(out: Path, force: bool, protected: Sequence[Path]) -> None:
    """UserError unless `out` is new, fresh, or (with force) a replaceable import holding none of `protected`."""
    if out.is_symlink():
        raise UserError(f"{out}: is a symlink; give --out as a real directory")
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    real = out.resolve()
    for path in protected:
        if path.exists() and (path.resolve().is_relative_to(real) or path.absolute().is_relative_to(out.absolute())):
            raise UserError(f"{out}: holds {path}, which this import reads; write the corpus to a new directory")
    if _fresh(out):
        return
    if not force:
        raise UserError(f"{out}: exists and is not empty (pass --force to replace a corpus an import wrote there)")
    if foreign := _foreign(out):
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise UserError(f"{out}: --force replaces only a corpus an import wrote (manifest.jsonl, images/, "
                        f"{MARKER}); it also holds {shown}: remove it yourself or choose a new --out")


class ImportErrors(UserError):
    """Every bad line at once; the first line of str() is a count, the rest one problem each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the labels; nothing written")
        self.problems = problems


def _copy(item: _Checked, target: Path) -> None:
    """Streams one image into the new corpus, hashing it on the way: a file changed since it was checked is an
    error, not a manifest that lies about it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with item.source.open("rb") as src, target.open("xb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    os.chmod(target, 0o644)
    if digest.hexdigest() != item.record["sha256"]:
        raise UserError(f"{item.source}: changed while it was imported; run the import again")


def _write(out: Path, checked: Sequence[_Checked], force: bool, protected: Sequence[Path]) -> None:
    """Builds the corpus in a sibling temp dir, then renames it into place: all or nothing."""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    old: Path | None = None
    try:
        for item in checked:
            _copy(item, tmp / "images" / item.rel)
        text = "".join(json.dumps(c.record, ensure_ascii=False, sort_keys=True) + "\n" for c in checked)
        write_text(tmp / "manifest.jsonl", text)
        write_text(tmp / MARKER, "Written by `ocr-harness corpus import`: `--force` may replace this directory.\n")
        os.chmod(tmp, 0o755)
        if out.exists() or out.is_symlink():
            _check_out(out, force, protected)  # again: it may have been filled since the first check
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        with contextlib.suppress(OSError):
            if old is not None and not out.exists():  # moved aside but not replaced: the old corpus goes back
                os.replace(old, out)
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise


def summary(result: ImportResult) -> str:
    return (f"wrote {result.images} images, {result.lines} lines ({result.ignored} don't-care regions kept as "
            f"'ignore') and manifest.jsonl to {result.out}")
