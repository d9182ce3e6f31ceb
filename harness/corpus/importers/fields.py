"""Key fields of an imported corpus: `--field name=REGEX` flags and a mapping file, read over each image's
transcriptions; a value its kind cannot read is an error (harness.keyfields)."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.corpus.importers.labels import BadLabel, Line
from harness.keyfields import KeyValue, KeyValueError
from harness.util.errors import UserError
from harness.util.files import CONFIG_MAX, read_input_text


@dataclass(frozen=True)
class FieldRule:
    """One key field: a regex over each transcription; group 1 (or the whole match) is the value."""

    name: str
    pattern: re.Pattern[str]


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
            raise BadLabel(f"{where}: field {rule.name!r} matches {len(values)} different values "
                       f"({', '.join(map(repr, values[:3]))}); make its regex specific to one line")
        try:
            KeyValue.parse(rule.name, values[0])
        except KeyValueError as e:
            raise BadLabel(f"{where}: {e}") from None
        found[rule.name] = values[0]
    return found, missing
