"""One shard run's files as `report merge` reads them: report.json and results.jsonl from another machine or job,
read as untrusted input (harness.report.shard_input) and then as the typed run report."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.model.report import RunReport
from harness.report.shard_input import check_results_line, read_report
from harness.util.errors import UserError
from harness.util.files import LISTING_MAX, read_input
from harness.util.jsonl import jsonl_lines


@dataclass(frozen=True)
class ShardRun:
    """One shard's report.json and results.jsonl lines (one per image, in the report's image order)."""

    source: str  # the directory, for messages
    data: Mapping[str, Any]  # report.json as read: input, checked (validate_shards) before the merge reads it
    results: tuple[str, ...]

    @functools.cached_property
    def report(self) -> RunReport:
        """The shard's typed run report, read from `data` once (merge reads it per image: reading it per access
        made a merge quadratic in the images of a shard)."""
        return RunReport.from_dict(self.data)

    @classmethod
    def read(cls, directory: Path) -> ShardRun:
        report = read_report(directory / "report.json", f"{directory}: no report.json (is it the --out of a "
                                                         "`ocr-harness run --shard K/N`?)")
        try:
            lines = jsonl_lines(read_input(directory / "results.jsonl", LISTING_MAX).decode("utf-8"))
        except (OSError, UnicodeDecodeError):
            raise UserError(f"{directory}: no readable results.jsonl") from None
        where = directory / "results.jsonl"
        return cls(str(directory), report, tuple(check_results_line(line, f"{where}:{n}")
                                                 for n, line in lines))

    @property
    def shard(self) -> tuple[int, int]:
        k, n = self.data["corpus"]["shard"]
        return int(k), int(n)

    @property
    def label(self) -> str:
        return "{}/{} ({})".format(*self.shard, self.source)
