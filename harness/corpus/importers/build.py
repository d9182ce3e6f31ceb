"""The import itself, the same for every format: each entry checked as `corpus validate` checks a corpus (ids
after the extension is stripped: `x.png` and `x.jpg` are one id; the image decoded by the reader runs use, with its
pixel, byte and decompression-bomb limits; no path or symlink that leads out of the image folder), then the images
copied one at a time, hashed as they stream, so memory does not grow with the corpus. The output directory is built
next to its final place and renamed into it, so a failed import leaves nothing.

`--force` replaces only what an import writes: a directory holding nothing but `manifest.jsonl`, `images/` and
the import's marker file (which older imports did not write); never one that holds the labels or the images
being imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from harness.corpus.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, read_image
from harness.corpus.importers.fields import FieldRule, extract_fields
from harness.corpus.importers.labels import BadLabel, Entry, Line, formats, read_labels
from harness.util.atomic import write_text
from harness.util.errors import ImageError, UserError
from harness.util.image_id import image_id_problem

# In every directory an import writes: what lets a later `--force` know the directory is a replaceable import.
MARKER = ".ocr-harness-import"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ImportResult:
    out: Path
    images: int
    lines: int
    ignored: int
    missing_fields: tuple[str, ...]  # "id: field 'amount' not found", per image


@dataclass(frozen=True)
class _Checked:
    """One image that passed every check: its record, and where its bytes come from."""

    record: dict[str, Any]  # its manifest.jsonl line, as JSON
    source: Path
    rel: str


def _checked_size(entry: Entry, max_pixels: int, max_bytes: int) -> tuple[int, int]:
    """(width, height) as a run will see the image, or BadLabel: the same reader and limits `corpus validate` uses."""
    if not entry.source.resolve().is_relative_to(entry.root.resolve()):
        what = "a symlink" if entry.source.is_symlink() or any(
            p.is_symlink() for p in entry.source.parents if p.is_relative_to(entry.root)) else "a path"
        raise BadLabel(f"image {entry.rel!r} is {what} that leads outside the image folder {entry.root}")
    try:
        pixels = read_image(entry.source, max_pixels=max_pixels, max_bytes=max_bytes)
    except ImageError as e:
        raise BadLabel(f"image {e}") from None
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
        raise BadLabel(f"unsafe id {item_id!r} ({why})")
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
    if fmt not in formats():
        raise UserError(f"unknown format {fmt!r} (expected one of: {', '.join(formats())})")
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
        except BadLabel as e:
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
