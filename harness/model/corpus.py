"""A loaded corpus as every layer above reads it: the selected images, their ground truth and key fields
(harness.corpus reads and validates the files)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType


@dataclass(frozen=True)
class TruthLine:
    text: str
    poly: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class CorpusItem:
    id: str
    path: Path
    sha256: str | None
    template: str | None
    tags: tuple[str, ...]
    truth: tuple[TruthLine, ...]  # empty when there is no ground truth
    fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    problem: str | None = None  # found at load time: this image fails, the run goes on


@dataclass(frozen=True)
class Corpus:
    root: Path
    items: tuple[CorpusItem, ...]
    has_manifest: bool
    subsets: dict[str, tuple[str, ...]]
    selection_is_complete: bool  # nothing filtered out: only then can a golden without an image be judged
