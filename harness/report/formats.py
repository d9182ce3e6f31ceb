"""The report formats written beside report.json and results.jsonl, one module each (junit, markdown, html,
history), each declaring one `ReportFormat`: its name, the files it writes into --out, the `run` / `report merge`
flag that asks for it and its writer. harness.report.writer registers the built-in ones and writes every
registered format a run asked for; the CLI adds each format's flag from here. A new format is its module and its
line in the writer's list.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.model.report import RunReport
from harness.model.results import OcrResult

ImageLoader = Callable[[str], "np.ndarray | None"]  # image id -> its decoded picture, None when it cannot be shown


@dataclass(frozen=True)
class Rendering:
    """What a format's writer is handed: the typed report and what the pictures are drawn from."""

    out: Path  # the run's --out
    report: RunReport
    results: Mapping[str, OcrResult]  # each image's first result
    image_loader: ImageLoader
    goldens: Mapping[str, OcrResult] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportFormat:
    name: str  # its key in write_reports' {kind: path} and in the formats a run asks for
    # (what to render, the flag's value or None) -> {kind: path} of what it wrote
    write: Callable[[Rendering, Any], dict[str, Path]]
    files: tuple[str, ...] = ()  # what it writes into --out: every run removes them first
    flag: str | None = None  # "--html": written only when asked; None: always written
    flag_help: str = ""
    flag_file: bool = False  # the flag names a file (`--history FILE`) rather than switching the format on
    # Before anything is written or run: a flag value it could not write to is one clear error (exit 2).
    check: Callable[[Any], object] | None = None
    needs_goldens: bool = False  # it draws the goldens (a merge loads them only when such a format is asked for)
    complete_only: bool = False  # not written for a run that stopped early (a trend compares finished runs)

    @property
    def dest(self) -> str:
        return self.name


_FORMATS: dict[str, ReportFormat] = {}


def register(fmt: ReportFormat) -> ReportFormat:
    """Adds a format; a name registered twice is a bug in whichever module did it."""
    if fmt.name in _FORMATS and _FORMATS[fmt.name] is not fmt:
        raise ValueError(f"report format {fmt.name!r} is registered twice")
    _FORMATS[fmt.name] = fmt
    return fmt


def formats() -> tuple[ReportFormat, ...]:
    """Every registered format, in the order they are written."""
    return tuple(_FORMATS.values())


def wanted(fmt: ReportFormat, asked: Mapping[str, Any]) -> Any:
    """The value a run asked `fmt` with (True for a format without a flag); None or False: not written."""
    return True if fmt.flag is None else asked.get(fmt.name)


def check_asked(asked: Mapping[str, Any]) -> None:
    """Every asked format's own check of its flag's value, before anything runs."""
    for fmt in formats():
        value = wanted(fmt, asked)
        if fmt.check is not None and value not in (None, False):
            fmt.check(value)


def needs_goldens(asked: Mapping[str, Any]) -> bool:
    return any(fmt.needs_goldens and wanted(fmt, asked) not in (None, False) for fmt in formats())


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Each format's flag on a command that writes reports (`run`, `report merge`)."""
    for fmt in formats():
        if fmt.flag is None:
            continue
        if fmt.flag_file:
            parser.add_argument(fmt.flag, dest=fmt.dest, type=Path, help=fmt.flag_help)
        else:
            parser.add_argument(fmt.flag, dest=fmt.dest, action="store_true", help=fmt.flag_help)


def asked_by(args: argparse.Namespace) -> dict[str, Any]:
    """The formats a command line asked for: {name: the flag's value}."""
    return {fmt.name: getattr(args, fmt.dest) for fmt in formats() if fmt.flag is not None}
