"""Golden files on disk: `<root>/<profile>/<image-id>.json` plus `<root>/<profile>/_meta.json`.

Each golden names the stack that made it (`stack`: a short id into `_meta.json`'s `stacks` table), so a
partial refresh on another stack re-stamps only the goldens it rewrote. Goldens written before stack ids
existed carry none and belong to `_meta.json`'s `stack`, which is otherwise the stack of the latest refresh.

One golden per image, written so that `git diff` of a refresh reads like a changelog: sorted keys, one JSON
line per text line, floats in shortest round-trip form (`repr`), UTF-8 unescaped, trailing newline. Loading is
strict: a hand-edited file that is not valid, not this schema or not this profile ends as a `UserError`
naming the file and the problem. Every write is atomic (temp file in the same directory, fsync, `os.replace`),
so an interrupted refresh leaves each file either old or new.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.golden.approval import APPROVAL_NAME
from harness.model.results import Line, OcrResult, canonical_json
from harness.util import atomic
from harness.util.errors import UserError
from harness.util.files import RECORD_MAX, read_input
from harness.util.image_id import image_id_problem
from harness.util.values import no_constant, value_problem

SCHEMA_VERSION = 1
META_NAME = "_meta.json"
SUFFIX = ".json"

_LINE_KEYS = {"text", "score", "poly"}
_GOLDEN_KEYS = {"schema_version", "image_id", "width", "height", "lines", "image_sha256", "stack"}
_GOLDEN_REQUIRED = _GOLDEN_KEYS - {"image_sha256", "stack"}
_META_KEYS = {"schema_version", "profile", "stack", "harness_version", "created", "updated", "forced_refreshes"}


def stack_id(stack: Mapping[str, Any]) -> str:
    """A short, stable name for a stack record: the first 12 hex digits of its canonical JSON's sha256."""
    return hashlib.sha256(canonical_json(dict(stack)).encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Golden:
    """The approved output for one image; `image_sha256` ties it to the exact image bytes when known."""

    result: OcrResult
    image_sha256: str | None = None
    stack_id: str | None = None  # key into GoldenMeta.stacks; None: written before stacks were recorded per golden

    @property
    def image_id(self) -> str:
        return self.result.image_id


@dataclass(frozen=True)
class ForcedRefresh:
    """A refresh that wrote goldens for output that was not reproducible, with the reason given."""

    reason: str
    time: str
    ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "time": self.time, "ids": list(self.ids)}


@dataclass(frozen=True)
class GoldenMeta:
    """`_meta.json`: which profile and stack produced the goldens in this directory."""

    profile: str
    stack: Mapping[str, Any]
    harness_version: str
    created: str
    updated: str
    forced_refreshes: tuple[ForcedRefresh, ...] = field(default=())
    stacks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def stack_of(self, golden: Golden) -> Mapping[str, Any] | None:
        """The stack that made `golden`; None when its id is not in the table (an inconsistent set)."""
        if golden.stack_id is None:
            return self.stack
        return self.stacks.get(golden.stack_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "profile": self.profile,
            "stack": dict(self.stack),
            "stacks": {k: dict(v) for k, v in sorted(self.stacks.items())},
            "harness_version": self.harness_version,
            "created": self.created,
            "updated": self.updated,
            "forced_refreshes": [f.to_dict() for f in self.forced_refreshes],
        }


# ---------------------------------------------------------------------------------------------- file format


def dumps_golden(golden: Golden) -> str:
    """The one text form of a golden; `loads_golden(dumps_golden(g)) == g` and the bytes are stable."""
    top: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "image_id": golden.result.image_id,
        "width": golden.result.width,
        "height": golden.result.height,
    }
    if golden.image_sha256 is not None:
        top["image_sha256"] = golden.image_sha256
    if golden.stack_id is not None:
        top["stack"] = golden.stack_id
    rows = [_one_line(_line_dict(line)) for line in golden.result.lines]
    parts = []
    for key in sorted([*top, "lines"]):
        if key == "lines":
            body = "[]" if not rows else "[\n" + ",\n".join(f"    {r}" for r in rows) + "\n  ]"
        else:
            body = _one_line(top[key])
        parts.append(f"  {json.dumps(key)}: {body}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _line_dict(line: Line) -> dict[str, Any]:
    # float() so an int score still prints as 1.0; repr precision is json's own float form.
    return {"text": line.text, "score": float(line.score), "poly": [[int(x), int(y)] for x, y in line.poly]}


def _one_line(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))


def loads_golden(text: str, source: str) -> Golden:
    """Parse and validate a golden; every problem is a `UserError` starting with `source`."""
    raw = _parse_json(text, source)
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a JSON object at the top level, got {_kind(raw)}")
    _check_schema(raw, source)
    _check_keys(raw, _GOLDEN_KEYS, _GOLDEN_REQUIRED, "", source)
    image_id = _typed(raw, "image_id", str, "", source)
    width = _typed(raw, "width", int, "", source)
    height = _typed(raw, "height", int, "", source)
    sha = raw.get("image_sha256")
    if sha is not None and not isinstance(sha, str):
        raise UserError(f"{source}: image_sha256: expected a string, got {_kind(sha)}")
    lines_raw = raw["lines"]
    if not isinstance(lines_raw, list):
        raise UserError(f"{source}: lines: expected a list, got {_kind(lines_raw)}")
    sid = raw.get("stack")
    if sid is not None and not isinstance(sid, str):
        raise UserError(f"{source}: stack: expected a stack id string, got {_kind(sid)}")
    lines = tuple(_parse_line(item, f"lines[{i}]", source) for i, item in enumerate(lines_raw))
    return Golden(OcrResult(image_id, width, height, lines), sha, sid)


def _parse_line(item: Any, where: str, source: str) -> Line:
    if not isinstance(item, dict):
        raise UserError(f"{source}: {where}: expected an object, got {_kind(item)}")
    _check_keys(item, _LINE_KEYS, _LINE_KEYS, f"{where}.", source)
    text = _typed(item, "text", str, f"{where}.", source)
    score = item["score"]
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise UserError(f"{source}: {where}.score: expected a number, got {_kind(score)}")
    poly = item["poly"]
    ok = isinstance(poly, list) and len(poly) >= 3 and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in p)
        for p in poly
    )
    if not ok:
        raise UserError(f"{source}: {where}.poly: expected a list of at least 3 [x, y] integer pairs")
    return Line(text=text, score=float(score), poly=tuple((p[0], p[1]) for p in poly))


def _parse_json(text: str, source: str) -> Any:
    try:
        raw = json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise UserError(f"{source}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except RecursionError:  # json's decoder recurses per nesting level: bad input, not a bug
        raise UserError(f"{source}: invalid JSON: nested too deeply") from None
    except ValueError as e:  # NaN, Infinity: accepted here, the report's canonical JSON refused them
        raise UserError(f"{source}: invalid JSON: {e}") from None
    if (bad := value_problem(raw)) is not None:  # 1e999 (an infinity), "\ud800" (a lone surrogate)
        raise UserError(f"{source}: {bad[0]}: {bad[1]}")
    return raw


def _check_schema(raw: dict[str, Any], source: str) -> None:
    if "schema_version" not in raw:
        raise UserError(f"{source}: schema_version: missing (expected {SCHEMA_VERSION})")
    version = raw["schema_version"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise UserError(
            f"{source}: schema_version {version!r} is not supported (expected {SCHEMA_VERSION}); "
            "regenerate the goldens with this harness version"
        )


def _check_keys(raw: dict[str, Any], allowed: set[str], required: set[str], where: str, source: str) -> None:
    missing = sorted(required - raw.keys())
    if missing:
        raise UserError(f"{source}: {where}{missing[0]}: missing")
    unknown = sorted(raw.keys() - allowed)
    if unknown:
        raise UserError(f"{source}: {where}{unknown[0]}: unknown key (expected {', '.join(sorted(allowed))})")


def _typed(raw: dict[str, Any], key: str, kind: type, where: str, source: str) -> Any:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise UserError(f"{source}: {where}{key}: expected {kind.__name__}, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def dumps_meta(meta: GoldenMeta) -> str:
    return canonical_json(meta.to_dict())


def loads_meta(text: str, source: str) -> GoldenMeta:
    raw = _parse_json(text, source)
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a JSON object at the top level, got {_kind(raw)}")
    _check_schema(raw, source)
    _check_keys(raw, _META_KEYS | {"stacks"}, _META_KEYS, "", source)
    for key in ("profile", "harness_version", "created", "updated"):
        _typed(raw, key, str, "", source)
    _typed(raw, "stack", dict, "", source)
    forced_raw = _typed(raw, "forced_refreshes", list, "", source)
    forced = []
    for i, item in enumerate(forced_raw):
        where = f"forced_refreshes[{i}]."
        if not isinstance(item, dict):
            raise UserError(f"{source}: forced_refreshes[{i}]: expected an object, got {_kind(item)}")
        _check_keys(item, {"reason", "time", "ids"}, {"reason", "time", "ids"}, where, source)
        ids = _typed(item, "ids", list, where, source)
        if not all(isinstance(x, str) for x in ids):
            raise UserError(f"{source}: {where}ids: expected a list of image ids")
        reason = _typed(item, "reason", str, where, source)
        forced.append(ForcedRefresh(reason, _typed(item, "time", str, where, source), tuple(ids)))
    stacks = raw.get("stacks", {})
    if not isinstance(stacks, dict) or not all(isinstance(v, dict) for v in stacks.values()):
        raise UserError(f"{source}: stacks: expected an object of stack records")
    return GoldenMeta(raw["profile"], raw["stack"], raw["harness_version"], raw["created"], raw["updated"],
                      tuple(forced), stacks)


# ---------------------------------------------------------------------------------------------- ids and paths


def check_image_id(image_id: str) -> None:
    """The corpus loader's rule (harness.util.image_id): an id either side refuses cannot name a golden."""
    why = image_id_problem(image_id)
    if why:
        raise UserError(f"image id {image_id!r}: {why}")


def _check_profile_name(profile: str) -> None:
    if not profile or "/" in profile or "\\" in profile or profile.startswith(".") or "\x00" in profile:
        raise UserError(f"profile name {profile!r} cannot name a golden directory")


# ---------------------------------------------------------------------------------------------- the store


class GoldenStore:
    """The goldens of one profile. Nothing is read until asked; the profile in `_meta.json` is checked first."""

    def __init__(self, root: Path, profile: str) -> None:
        _check_profile_name(profile)
        self.root = Path(root)
        self.profile = profile
        self.directory = self.root / profile
        self._meta: GoldenMeta | None = None
        self._meta_read = False

    def __repr__(self) -> str:
        return f"GoldenStore({str(self.root)!r}, {self.profile!r})"

    @property
    def meta_path(self) -> Path:
        return self.directory / META_NAME

    def path_for(self, image_id: str) -> Path:
        check_image_id(image_id)
        *dirs, name = image_id.split("/")
        return self.directory.joinpath(*dirs, name + SUFFIX)

    def meta(self) -> GoldenMeta | None:
        """`_meta.json`, or None for a directory that has none yet; a foreign profile's directory is refused."""
        if not self._meta_read:
            self._meta = self._read_meta()
            self._meta_read = True
        return self._meta

    def _read_meta(self) -> GoldenMeta | None:
        path = self.meta_path
        text = _read_text(path, self.directory)
        if text is None:
            return None
        meta = loads_meta(text, str(path))
        if meta.profile != self.profile:
            raise UserError(
                f"{path}: these goldens were made for profile {meta.profile!r}, not {self.profile!r}; "
                f"use --profile {meta.profile} or point golden_dir elsewhere"
            )
        return meta

    def ids(self) -> list[str]:
        """Every image id that has a golden, sorted."""
        self.meta()
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.rglob(f"*{SUFFIX}"):
            rel = path.relative_to(self.directory)
            if rel.as_posix() in (META_NAME, APPROVAL_NAME) or any(part.startswith(".") for part in rel.parts) or not path.is_file():
                continue
            found.append(rel.as_posix()[: -len(SUFFIX)])
        return sorted(found)

    def leftovers(self) -> list[str]:
        """Temp files of an interrupted write (harness.util.atomic's `.<name>.<random>.tmp`), relative, sorted: a
        killed refresh leaves them, and `git add` would pick them up."""
        if not self.directory.is_dir():
            return []
        return sorted(p.relative_to(self.directory).as_posix() for p in self.directory.rglob(".*.tmp")
                      if p.is_file() or p.is_symlink())

    def remove_leftovers(self) -> list[str]:
        """Deletes `leftovers()` (a refresh does, before it writes); returns what it removed."""
        found = self.leftovers()
        for rel in found:
            (self.directory / rel).unlink(missing_ok=True)
        return found

    def has(self, image_id: str) -> bool:
        return self.path_for(image_id).is_file()

    def load(self, image_id: str) -> Golden | None:
        """The golden for `image_id`, or None when there is none."""
        self.meta()
        path = self.path_for(image_id)
        text = _read_text(path, self.directory)
        if text is None:
            return None
        golden = loads_golden(text, str(path))
        if golden.image_id != image_id:
            raise UserError(f"{path}: image_id {golden.image_id!r} does not match its file name ({image_id!r})")
        return golden

    def load_all(self) -> Iterator[Golden]:
        for image_id in self.ids():
            golden = self.load(image_id)
            if golden is not None:
                yield golden

    def write(self, golden: Golden) -> Path:
        path = self.path_for(golden.image_id)
        atomic.write_text(path, dumps_golden(golden))
        return path

    def remove(self, image_id: str) -> bool:
        """Delete one golden (an orphan, say); True if there was one."""
        path = self.path_for(image_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def write_meta(self, meta: GoldenMeta) -> None:
        if meta.profile != self.profile:
            raise ValueError(f"meta for profile {meta.profile!r} written to the store of {self.profile!r}")
        atomic.write_text(self.meta_path, dumps_meta(meta))
        self._meta, self._meta_read = meta, True


def _read_text(path: Path, within: Path) -> str | None:
    try:
        return read_input(path, RECORD_MAX, within=within).decode("utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
