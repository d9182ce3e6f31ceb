"""The manifest's published JSON Schema (harness/schemas/manifest.schema.json) and the check against it.

The schema is what other tools (editors, a team's own CI) can validate against without the harness; the
harness's own parser (manifest.py) stays the authority for what a run reads, so `corpus validate` reports both.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from harness.util.errors import UserError
from harness.util.files import LISTING_MAX, read_input
from harness.util.jsonl import jsonl_lines

SCHEMA_NAME = "manifest.schema.json"


@cache
def manifest_schema() -> dict[str, Any]:
    """The schema as shipped in the package (also inside the wheel)."""
    text = resources.files("harness").joinpath("schemas", SCHEMA_NAME).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)  # a JSON object: the schema file the package ships
    return schema


def schema_problems(manifest: Path) -> list[str]:
    """One line per schema violation, `manifest.jsonl:12: $.lines[0].poly: why`; lines that are not JSON are
    left to the manifest parser, which names them too."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(manifest_schema())
    problems = []
    try:
        text = read_input(manifest, LISTING_MAX).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError, UserError):
        return []  # the parser reports an unreadable manifest
    for number, line in jsonl_lines(text):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        for error in sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path)):
            problems.append(f"{manifest}:{number}: schema: {error.json_path}: {error.message}")
    return problems
