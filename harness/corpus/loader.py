"""Loading a corpus: a manifest.jsonl with ground truth, or a plain directory of images.

Corpus-level mistakes (no such path, a broken manifest, an unknown subset, an empty selection) are UserErrors.
Item-level problems found without decoding (missing file, path escaping the root, duplicate or unsafe id) are
recorded on the item: that image fails, the run goes on. Nothing is skipped silently.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from harness.corpus.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, read_image
from harness.corpus.manifest import Record, parse_manifest
from harness.model.corpus import Corpus, CorpusItem
from harness.util.errors import ImageError, UserError
from harness.util.image_id import image_id_problem

__all__ = ["load_corpus", "read_image", "validate_corpus"]

MANIFEST_NAME = "manifest.jsonl"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"})


@dataclass(frozen=True)
class _Scan:
    root: Path
    items: tuple[CorpusItem, ...]
    has_manifest: bool
    subsets: dict[str, tuple[str, ...]]
    errors: tuple[str, ...]  # corpus-level: the manifest's malformed lines


def content_sha256(item: CorpusItem) -> str | None:
    """The image's sha256: the manifest's (reading verifies the file against it) or the file's own; None when
    the file cannot be read (that image fails elsewhere)."""
    if item.sha256:
        return item.sha256
    digest = hashlib.sha256()
    try:
        with item.path.open("rb") as fh:  # in chunks: a huge file costs no memory here (reading it refuses it)
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _unsafe_id(item_id: str) -> str | None:
    # Ids become file names of goldens and reports: the golden store accepts exactly the same ones.
    why = image_id_problem(item_id)
    return f"unsafe id {item_id!r} ({why})" if why else None


def _path_problem(root: Path, rel: str) -> str | None:
    try:
        return _path_check(root, rel)
    except OSError as e:  # a name too long for the file system (found by fuzzing), a loop: that image's problem
        return f"cannot use path {rel[:80]!r}{'...' if len(rel) > 80 else ''}: {e.strerror}"


def _path_check(root: Path, rel: str) -> str | None:
    if PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute() or PureWindowsPath(rel).drive:
        return f"absolute path {rel!r} not allowed (paths are relative to the corpus root)"
    candidate = root / rel
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root.resolve()):
        what = "symlink points" if candidate.is_symlink() or any(
            p.is_symlink() for p in candidate.parents if p.is_relative_to(root)) else "path"
        return f"{what} outside the corpus root: {rel!r}"
    if not candidate.exists():
        return "broken symlink" if candidate.is_symlink() else f"missing file {rel!r}"
    if not candidate.is_file():
        return f"not a regular file: {rel!r}"
    return None


def _mark_duplicates(items: list[CorpusItem], where: Sequence[str]) -> list[CorpusItem]:
    seen: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        seen.setdefault(item.id, []).append(index)
    out = list(items)
    for item_id, indexes in seen.items():
        if len(indexes) < 2:
            continue
        places = ", ".join(where[i] for i in indexes)
        for i in indexes:
            # Every copy fails: which one was meant cannot be known, and a result must not depend on order.
            out[i] = _with_problem(out[i], f"duplicate id {item_id!r} ({places})")
    return out


def _with_problem(item: CorpusItem, problem: str) -> CorpusItem:
    if item.problem:
        return item
    return CorpusItem(item.id, item.path, item.sha256, item.template, item.tags, item.truth, item.fields, problem)


def _from_manifest(manifest: Path) -> _Scan:
    root = manifest.parent
    records, errors = parse_manifest(manifest)
    items = []
    for r in records:
        items.append(_item(root, r))
    items = _mark_duplicates(items, [r.where.rsplit("/", 1)[-1] for r in records])
    subsets: dict[str, list[str]] = {}
    for r in records:
        for name in r.subsets:
            subsets.setdefault(name, []).append(r.id)
    return _Scan(root, tuple(items), True, {k: tuple(dict.fromkeys(v)) for k, v in subsets.items()}, tuple(errors))


def _item(root: Path, r: Record) -> CorpusItem:
    problem = _unsafe_id(r.id) or _path_problem(root, r.file)
    return CorpusItem(r.id, root / r.file, r.sha256, r.template, r.tags, r.truth, r.fields, problem)


def _from_directory(root: Path) -> _Scan:
    items: list[CorpusItem] = []
    rels: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # Hidden directories (.git, .cache) are not corpus content.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in list(dirnames):
            if (here / d).is_symlink():
                dirnames.remove(d)  # never followed; said out loud when it leads outside
                rel = (here / d).relative_to(root).as_posix()
                if not (here / d).resolve().is_relative_to(root.resolve()):
                    items.append(CorpusItem(rel, here / d, None, None, (), (), problem=(
                        f"symlinked directory points outside the corpus root: {rel!r}")))
                    rels.append(rel)
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            rel = (here / name).relative_to(root).as_posix()
            item_id = str(PurePosixPath(rel).with_suffix(""))
            problem = _unsafe_id(item_id) or _path_problem(root, rel)
            items.append(CorpusItem(item_id, root / rel, None, None, (), (), problem=problem))
            rels.append(rel)
    return _Scan(root, tuple(_mark_duplicates(items, rels)), False, {}, ())


def _scan(path: Path) -> _Scan:
    if not path.exists():
        raise UserError(f"corpus not found: {path}")
    if path.is_file():
        return _from_manifest(path)
    if (path / MANIFEST_NAME).is_file() or os.path.lexists(path / MANIFEST_NAME):
        # A FIFO, a device or a dangling link named manifest.jsonl is refused by the manifest reader, naming it,
        # instead of the directory being scanned as a corpus without one.
        return _from_manifest(path / MANIFEST_NAME)
    return _from_directory(path)


def _names(values: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def load_corpus(path: Path, *, subset: str | None = None, tags: Sequence[str] = (),
                ids: Sequence[str] = ()) -> Corpus:
    """The selected items of a corpus (subset AND any-of tags AND ids), in manifest/directory order."""
    scan = _scan(path)
    if scan.errors:
        more = f" (and {len(scan.errors) - 1} more; run `ocr-harness corpus validate`)" if len(scan.errors) > 1 else ""
        raise UserError(f"bad manifest: {scan.errors[0]}{more}")
    if not scan.items:
        raise UserError(f"no images in corpus {path}" + ("" if scan.has_manifest else
                                                          f" (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"))
    selected = list(scan.items)
    if subset is not None:
        if subset not in scan.subsets:
            known = ", ".join(sorted(scan.subsets)) or "none defined"
            raise UserError(f"unknown subset {subset!r} in {path} (known: {known})")
        wanted = set(scan.subsets[subset])
        selected = [i for i in selected if i.id in wanted]
    if tags:
        all_tags = {t for i in scan.items for t in i.tags}
        unknown = [t for t in tags if t not in all_tags]
        if unknown:
            raise UserError(f"unknown tag {_names(unknown)} in {path} (known: {', '.join(sorted(all_tags)) or 'none'})")
        selected = [i for i in selected if set(i.tags) & set(tags)]
    if ids:
        all_ids = {i.id for i in scan.items}
        unknown = [i for i in ids if i not in all_ids]
        if unknown:
            raise UserError(f"unknown id {_names(unknown)} in {path}")
        wanted = set(ids)
        selected = [i for i in selected if i.id in wanted]
    if not selected:
        raise UserError(f"empty selection from {path} (subset={subset!r}, tags={list(tags)}, ids={list(ids)})")
    return Corpus(scan.root, tuple(selected), scan.has_manifest, scan.subsets,
                  selection_is_complete=len(selected) == len(scan.items))


def validate_corpus(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES) -> list[str]:
    """Every problem at once, one line each naming the item; empty when the corpus is sound."""
    try:
        scan = _scan(path)
    except UserError as e:
        return [str(e)]
    problems = list(scan.errors)
    if not scan.items and not scan.errors:
        problems.append(f"no images in corpus {path}")
    for item in scan.items:
        if item.problem:
            problems.append(f"{item.id}: {item.problem}")
            continue
        try:
            read_image(item.path, expected_sha256=item.sha256, max_pixels=max_pixels, max_bytes=max_bytes)
        except ImageError as e:
            problems.append(f"{item.id}: {e}")
    return problems
