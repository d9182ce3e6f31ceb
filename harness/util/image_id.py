"""The one rule for image ids, shared by the corpus loader and the golden store.

An id names a golden file (`<golden_dir>/<set>/<id>.json`) and appears in every report, so both sides must
accept exactly the same ids: an image the corpus accepts but the store refuses would crash a run mid-way, and
one the store accepts but the corpus refuses could never be compared.
"""

from __future__ import annotations

from pathlib import PureWindowsPath

RESERVED = frozenset({"_meta"})  # the golden store's metadata file is `_meta.json`


def image_id_problem(image_id: object) -> str | None:
    """Why `image_id` is not a valid id, or None. Ids may nest with `/`; nothing may climb out of a directory,
    be absolute, hide (a leading `.` is reserved for the temp files of atomic writes) or hold control characters."""
    if not isinstance(image_id, str) or not image_id:
        return "must be a non-empty string"
    if any(ord(c) < 32 or ord(c) == 127 for c in image_id):
        return "control character"
    if "\\" in image_id or image_id.startswith("/") or PureWindowsPath(image_id).drive:
        return "must be a relative '/'-separated path (no leading '/', no '\\', no drive)"
    for part in image_id.split("/"):
        if part in ("", ".", ".."):
            return "empty, '.' or '..' path component"
        if part.startswith("."):
            return "a path component starts with '.'"
    if image_id in RESERVED:
        return f"{image_id!r} is reserved"
    return None
