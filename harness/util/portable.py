"""Machine paths out of reports, so that a report reads the same on every machine and shards merge.

A report is shared (CI artifacts, pull requests) and merged with shards run elsewhere; an absolute path names
one machine's layout. Each known root is written portably instead: paths inside the checkout (the directory
of harness.toml) relative to it, the model cache as `$OCR_HARNESS_CACHE`, a corpus, golden dir or model dir
outside the checkout as `<corpus>`, `<golden>`, `<det_model_dir>`, `<rec_model_dir>`, the Python installation
as `<python>`, the temp dir as `$TMPDIR` and the home dir as `~`. The most specific root wins.

A prefix counts only as whole path components on both sides (`NO.2023/tmp/0001` names no temp dir), and what
the OCR read is never rewritten: texts given to `keeping` stay as they are, alone or quoted inside a summary.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKOUT = ""  # the portable name of the checkout: its paths become relative


@dataclass(frozen=True)
class MachinePaths:
    prefixes: tuple[tuple[str, str], ...]  # (absolute prefix, portable name), longest first
    keep: frozenset[str] = frozenset()  # OCR texts (current, golden, ground truth): never rewritten

    def keeping(self, texts: Iterable[str]) -> MachinePaths:
        """The same roots, leaving `texts` untouched wherever they appear (only those a root could match)."""
        kept = frozenset(t for t in texts if "/" in t and self._pattern.search(t))
        return MachinePaths(self.prefixes, self.keep | kept)

    @classmethod
    def of(cls, named: Iterable[tuple[Path | str | None, str]]) -> MachinePaths:
        found: dict[str, str] = {}
        for path, name in named:
            if path is None:
                continue
            p = Path(path).expanduser()
            for variant in (str(p), str(p.resolve())):  # a symlinked /tmp or home shows up both ways
                variant = variant.rstrip("/")
                if variant.startswith("/") and variant not in found:
                    found[variant] = name
        return cls(tuple(sorted(found.items(), key=lambda kv: -len(kv[0]))))

    def text(self, s: str) -> str:
        if not self.prefixes or "/" not in s or s in self.keep:
            return s
        kept = [(m.start(), m.end()) for t in self.keep if t in s for m in re.finditer(re.escape(t), s)]
        if not kept:
            return self._pattern.sub(self._replace, s)
        return self._pattern.sub(lambda m: m.group(0) if any(a <= m.start() < b for a, b in kept)
                                 else self._replace(m), s)

    def scrub(self, obj: Any) -> Any:
        """A copy of a JSON-like value, or of a record of them (a frozen dataclass, such as the typed run report),
        with every string (keys too) made portable; a record stays a record of the same type, a tuple a tuple."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            return {self.text(k) if isinstance(k, str) else k: self.scrub(v) for k, v in obj.items()}
        if isinstance(obj, tuple):
            return tuple(self.scrub(v) for v in obj)
        if isinstance(obj, list):
            return [self.scrub(v) for v in obj]
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return dataclasses.replace(obj, **{f.name: self.scrub(getattr(obj, f.name))
                                               for f in dataclasses.fields(obj) if f.init})
        return obj

    @functools.cached_property
    def _pattern(self) -> re.Pattern[str]:
        # A prefix counts only as whole path components: /work/a must not match inside /work/ab, nor /tmp
        # inside NO.2023/tmp/0001 (a path starts a string or follows a character no path name ends with).
        alternatives = "|".join(f"({re.escape(prefix)})" for prefix, _ in self.prefixes)
        return re.compile(f"(?<![\\w.\\-/~$])(?:{alternatives})(?=/|$|[^\\w.\\-]|\\.(?![\\w\\-]))(/)?")

    def _replace(self, m: re.Match[str]) -> str:
        *roots, slash = m.groups()
        name = self.prefixes[next(i for i, g in enumerate(roots) if g is not None)][1]
        if name == CHECKOUT:
            return "" if slash else "."
        return name + (slash or "")


def for_run(*, checkout: Path, corpus_root: Path | None = None, golden_root: Path | None = None,
            cache_root: Path | None = None, det_model_dir: Path | None = None,
            rec_model_dir: Path | None = None) -> MachinePaths:
    """The roots of one run. A root inside the checkout gets no name of its own: its paths become relative."""
    home = checkout.expanduser().resolve()
    named = [(corpus_root, "<corpus>"), (golden_root, "<golden>"), (cache_root, "$OCR_HARNESS_CACHE"),
             (det_model_dir, "<det_model_dir>"), (rec_model_dir, "<rec_model_dir>"), (Path(sys.prefix), "<python>"),
             (Path(sys.base_prefix), "<python>"), (Path(tempfile.gettempdir()), "$TMPDIR"), (Path.home(), "~")]
    outside = [(p, name) for p, name in named if p is not None and not _inside(p, home)]
    return MachinePaths.of([(checkout, CHECKOUT), *outside])


def _inside(path: Path, root: Path) -> bool:
    return path.expanduser().resolve().is_relative_to(root) and root != Path("/")
