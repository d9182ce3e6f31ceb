"""manifest.jsonl: one JSON object per image. Parsing collects every problem with its file:line.

Required per record: `file` (aliases `path`, `image`), relative to the manifest's directory. Optional: `id`
(default: `file` without its extension), `sha256`, `template`, `tags`, `lines` [{text, poly}], `fields`,
`subsets`. A poly is a list of >= 3 [x, y] points, or an [x0, y0, x1, y1] box. Unknown keys are ignored, so
a corpus may carry more than the harness reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from harness.keyfields import KeyValue, KeyValueError
from harness.model.corpus import TruthLine
from harness.util.errors import UserError
from harness.util.files import LISTING_MAX, read_input
from harness.util.jsonl import jsonl_lines
from harness.util.values import no_constant, value_problem

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class Record:
    where: str  # "manifest.jsonl:12", for messages
    id: str
    file: str
    sha256: str | None
    template: str | None
    tags: tuple[str, ...]
    truth: tuple[TruthLine, ...]
    fields: Mapping[str, str]
    subsets: tuple[str, ...]


class _Bad(Exception):
    pass


def _str_list(record: dict[str, Any], key: str) -> tuple[str, ...]:
    value = record.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _Bad(f"'{key}' must be a list of non-empty strings")
    return tuple(dict.fromkeys(value))  # de-duplicated, order kept


def _point(value: Any) -> tuple[int, int]:
    if (not isinstance(value, list | tuple) or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
        raise _Bad(f"a poly point must be [x, y] numbers, got {value!r}")
    return (round(value[0]), round(value[1]))


def _poly(value: Any) -> tuple[tuple[int, int], ...]:
    if isinstance(value, list) and len(value) == 4 and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                           for v in value):
        x0, y0, x1, y1 = (round(v) for v in value)
        return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
    if not isinstance(value, list) or len(value) < 3:
        raise _Bad("'poly' must be >= 3 [x, y] points or an [x0, y0, x1, y1] box")
    return tuple(_point(p) for p in value)


def _truth(record: dict[str, Any]) -> tuple[TruthLine, ...]:
    lines = record.get("lines", [])
    if not isinstance(lines, list):
        raise _Bad("'lines' must be a list")
    out = []
    for number, line in enumerate(lines):
        if not isinstance(line, dict) or not isinstance(line.get("text"), str):
            raise _Bad(f"lines[{number}] must be an object with a string 'text'")
        try:
            out.append(TruthLine(line["text"], _poly(line.get("poly"))))
        except _Bad as e:
            raise _Bad(f"lines[{number}]: {e}") from None
    return tuple(out)


def _fields(record: dict[str, Any]) -> Mapping[str, str]:
    value = record.get("fields", {})
    if not isinstance(value, dict):
        raise _Bad("'fields' must be an object")
    out: dict[str, str] = {}
    for key, v in value.items():
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise _Bad(f"fields.{key} must be a string or a number")
        out[key] = v if isinstance(v, str) else str(v)
        try:  # a key value the harness cannot read by its kind would fail every check that uses it
            KeyValue.parse(key, out[key])
        except KeyValueError as e:
            raise _Bad(str(e)) from None
    return MappingProxyType(out)


def _record(where: str, record: Any) -> Record:
    if not isinstance(record, dict):
        raise _Bad("a record must be a JSON object")
    file = next((record[k] for k in ("file", "path", "image") if k in record), None)
    if not isinstance(file, str) or not file:
        raise _Bad("'file' (the image path) must be a non-empty string")
    item_id = record.get("id", str(PurePosixPath(file).with_suffix("")))
    if not isinstance(item_id, str) or not item_id:
        raise _Bad("'id' must be a non-empty string")
    sha = record.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not _SHA256.match(sha)):
        raise _Bad("'sha256' must be 64 hex digits")
    template = record.get("template")
    if template is not None and not isinstance(template, str):
        raise _Bad("'template' must be a string")
    return Record(where, item_id, file, sha.lower() if sha else None, template, _str_list(record, "tags"),
                  _truth(record), _fields(record), _str_list(record, "subsets"))


def _loads(line: str) -> Any:
    value = json.loads(line, parse_constant=no_constant)
    if (bad := value_problem(value)) is not None:  # the run's reports could not hold it
        raise _Bad(f"{bad[0]}: {bad[1]}")
    return value


def parse_manifest(path: Path) -> tuple[list[Record], list[str]]:
    """Every well-formed record, and one line per malformed one ("manifest.jsonl:12: ...")."""
    records: list[Record] = []
    errors: list[str] = []
    try:
        text = read_input(path, LISTING_MAX).decode("utf-8-sig")  # tolerate a BOM from Windows editors
    except UserError as e:  # a FIFO, a device, a symlink out of the corpus, too large
        return [], [str(e)]
    except UnicodeDecodeError as e:
        return [], [f"{path}: not UTF-8 text ({e})"]
    except OSError as e:
        return [], [f"{path}: cannot read ({e.strerror})"]
    for number, line in jsonl_lines(text):
        where = f"{path}:{number}"
        try:
            records.append(_record(where, _loads(line)))
        except json.JSONDecodeError as e:
            errors.append(f"{where}: invalid JSON ({e.msg} at column {e.colno})")
        except RecursionError:  # json's decoder recurses per level: deep nesting is bad input, not a bug
            errors.append(f"{where}: invalid JSON (nested too deeply)")
        except _Bad as e:
            errors.append(f"{where}: {e}")
        except ValueError as e:  # NaN, Infinity
            errors.append(f"{where}: invalid JSON ({e})")
    return records, errors
