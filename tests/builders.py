"""What tests build over and over, built one way: a profile's TOML, a box, an OCR result, an image's outcome.

A test then says only what its case is about (the two checks it turns off, the line it moves by a pixel), and a
change to one of these formats is made here once. A profile is written as TOML text because that is what a user
writes and what `load_profile` reads: the text is checked to parse back to exactly the values given, so a
profile built here means what its arguments say.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

from conftest import CORPUS, ROOT

from harness.model.inference import ImageOutcome
from harness.model.results import Line, OcrResult

Poly = tuple[tuple[int, int], ...]
Value = str | bool | int | float | Path | Sequence["Value"] | Mapping[str, "Value"]
Table = Mapping[str, Value]
SLIP_SIZE = (800, 300)  # width, height of a bank slip of the corpus


def quad(x: int, y: int, w: int, h: int) -> Poly:
    """An axis-aligned box as the engine reports one: its corners clockwise from the top left."""
    return ((x, y), (x + w, y), (x + w, y + h), (x, y + h))


def ocr_result(*lines: Line, image_id: str = "slip", size: tuple[int, int] = SLIP_SIZE) -> OcrResult:
    """What the engine read on one image: `lines` in the order given, on an image of `size` (width, height)."""
    return OcrResult(image_id, size[0], size[1], tuple(lines))


def image_outcome(result: OcrResult, *, predict_s: tuple[float, ...]) -> ImageOutcome:
    """An image the engine read, giving `result`; `predict_s`: the seconds its predict calls took."""
    return ImageOutcome(result.image_id, runs=(result,), predict_s=predict_s)


def profile_toml(name: str = "t", *, extends: str | None = None, corpus: Path | None = CORPUS,
                 golden_dir: Path | None = None, golden_set: str | None = None, top: Table | None = None,
                 engine: Table | None = None, checks: Table | None = None, tolerances: Table | None = None,
                 executor: Table | None = None) -> str:
    """`[profiles.<name>]` and its tables as TOML text, on the committed corpus unless told. A key left None is
    not written (the default, or the profile it extends, holds). `top` holds the profile's other keys (`subset`,
    `ids`, `workers`, ...); a mapping among a table's values is a table below it (`engine={"http": {...}}` is
    `[profiles.t.engine.http]`)."""
    profile: dict[str, Value] = {k: v for k, v in (("extends", extends), ("corpus", corpus),
                                                   ("golden_dir", golden_dir), ("golden_set", golden_set))
                                 if v is not None}
    profile.update(top or {})
    profile.update({k: v for k, v in (("engine", engine), ("checks", checks), ("tolerances", tolerances),
                                      ("executor", executor)) if v is not None})
    text = "".join(_table(f"profiles.{_key(name)}", profile))
    parsed = tomllib.loads(text)["profiles"][name]
    if parsed != _plain(profile):
        raise ValueError(f"profile {name!r} does not read back as given: {parsed!r}")
    return text


def write_profiles(directory: Path, *profiles: str, bundled: bool = False) -> Path:
    """`directory`/harness.toml holding `profiles` (profile_toml's texts); `bundled`: after the committed
    harness.toml's own profiles, so these may extend them (`extends = "nightly"`)."""
    head = (ROOT / "harness.toml").read_text(encoding="utf-8").rstrip("\n") + "\n\n" if bundled else ""
    text = head + "".join(profiles)
    tomllib.loads(text)  # a profile named twice (here, or as a bundled one) fails here, not in the harness
    path = directory / "harness.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _table(header: str, table: Table) -> list[str]:
    """The table's header and its keys, then its tables (a key after a header belongs to that header)."""
    lines = [f"[{header}]\n"]
    lines += [f"{_key(k)} = {_value(v)}\n" for k, v in table.items() if not isinstance(v, Mapping)]
    for k, v in table.items():
        if isinstance(v, Mapping):
            lines += _table(f"{header}.{_key(k)}", v)
    return lines


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _string(key)


def _value(v: Value) -> str:
    if isinstance(v, bool):  # before int: a bool is an int
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)  # TOML writes inf and nan as Python does
    if isinstance(v, Path):
        return _string(v.as_posix())
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, Mapping):
        raise TypeError("a table inside a list has no TOML form here")
    return "[" + ", ".join(_value(x) for x in v) + "]"


def _string(s: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, and TOML wants DEL escaped too."""
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _plain(v: Value) -> object:
    """`v` as tomllib reads it back: paths as posix strings, sequences as lists, mappings as dicts."""
    if isinstance(v, Path):
        return v.as_posix()
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, str | bool | int | float):
        return v
    return [_plain(x) for x in v]
