"""Input files opened as files: a regular file, under a size cap, not a symlink out of its directory.

Goldens, `_approval.json`, manifests, label files and configs come from a repository or a corpus, and git
commits symlinks: `_approval.json -> /dev/zero` was read until memory ran out, a FIFO in its place hung the run.
The file is opened without blocking (a FIFO's open would wait for a writer) and judged by `fstat` of the open
descriptor, so what is read is what was checked.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from harness.util.errors import UserError

MiB = 1024 * 1024
CONFIG_MAX = 4 * MiB  # harness.toml, a field mapping
RECORD_MAX = 64 * MiB  # one golden, _meta.json, _approval.json (BN statistics per channel), a shard's report
LISTING_MAX = 1024 * MiB  # a manifest, a label file, results.jsonl: one line per image


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def _check_link(path: Path, within: Path | None) -> None:
    if not path.is_symlink():
        return
    home = os.path.realpath(within if within is not None else path.parent)
    target = os.path.realpath(path)
    if os.path.commonpath([home, target]) != home:
        raise UserError(f"{path}: a symlink to {target}, outside {home}; refusing to follow it")


def read_input(path: Path | str, limit: int, *, within: Path | None = None) -> bytes:
    """The bytes of `path`. FileNotFoundError passes through (callers decide what a missing file means); a
    special file, a symlink out of `within` (default: the file's own directory), more than `limit` bytes or an
    unreadable file is one UserError naming the path (and the errno)."""
    path = Path(path)
    _check_link(path, within)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror} (errno {e.errno})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{path}: {_kind(st.st_mode)}, not a regular file; refusing to read it")
        if st.st_size > limit:
            raise UserError(f"{path}: {st.st_size} bytes, larger than the {limit} this file may hold")
        chunks, size = [], 0
        while size <= limit:  # a file that grows while read is cut at the cap, not followed
            chunk = os.read(fd, min(MiB, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror} (errno {e.errno})") from None
    finally:
        os.close(fd)
    if size > limit:
        raise UserError(f"{path}: larger than the {limit} bytes this file may hold")
    return b"".join(chunks)


def read_input_text(path: Path | str, limit: int, *, within: Path | None = None, encoding: str = "utf-8") -> str:
    """`read_input` decoded; invalid text is one UserError naming the path and the byte."""
    data = read_input(path, limit, within=within)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
