"""Where `report merge` finds what the merging checkout decides (the golden store, the picture limits, the
corpus), and how it writes the merged run's files, as `run` writes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from harness.config import find_config, load_profile
from harness.corpus.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from harness.corpus.loader import read_image
from harness.golden.store import GoldenStore
from harness.model.catalogue import Catalogue
from harness.model.report import CheckLayout, RunReport
from harness.model.results import OcrResult
from harness.model.settings import Profile
from harness.report.formats import check_asked, needs_goldens
from harness.report.writer import write_reports
from harness.run.shards.merge import MergedRun
from harness.util import atomic
from harness.util.errors import ImageError


@dataclass(frozen=True)
class CheckoutSettings:
    """What the merging checkout decides for a merge: the golden store and the picture limits."""

    store: GoldenStore | None  # None: the golden check did not run, or the store is not here
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES


def checkout_settings(report: RunReport, config: Path | None, catalogue: Catalogue,
                      golden_dir: Path | None = None) -> CheckoutSettings:
    """The store and limits an unsharded run of the report's profile would use here: that profile as `config`
    (the merging checkout's harness.toml) defines it, `golden_dir` relative to the config's directory;
    `golden_dir` given (relative to the cwd) overrides it. Without a config, only an explicit `golden_dir` gives
    a store. A shard's own `golden_dir`, `golden_set` and limits are never used: a shard names no paths here."""
    name = report.profile["name"]
    if config is not None:
        profile, base = load_profile(config, name, catalogue)
    else:
        profile, base = Profile(name=name), Path.cwd()
    golden = report.checks.get("golden")
    store = None
    if golden is not None and not golden.skipped and (config is not None or golden_dir is not None):
        root = golden_dir.resolve() if golden_dir is not None else (base / profile.golden_dir).resolve()
        candidate = GoldenStore(root, profile.golden_name)
        store = candidate if candidate.directory.is_dir() else None
    return CheckoutSettings(store, profile.max_image_pixels, profile.max_image_bytes)


def corpus_root_for(report: RunReport, config: Path | None = None) -> Path | None:
    """The corpus root in the checkout that merges: the report's `corpus.root` (relative to the directory of
    harness.toml, as runs write it) under the directory of `config` (default: the nearest harness.toml upwards
    from the cwd). None when the report names a corpus outside its checkout (`<corpus>`) or it is not here."""
    text = str(report.corpus.get("root") or "")
    rel = PurePosixPath(text)
    if not text or rel.is_absolute() or PureWindowsPath(text).drive or text.startswith(("<", "$", "~")) \
            or ".." in rel.parts:
        return None
    found = config if config is not None else find_config()
    root = ((found.parent if found is not None else Path.cwd()) / rel).resolve()
    return root if root.is_dir() else None


def corpus_file(root: Path, file: str) -> Path | None:
    """A shard's image `file` inside `root`, or None: shard reports come from other machines, so an absolute
    path, a `..` or a symlink that leads out of the corpus is never read."""
    rel = PurePosixPath(file)
    if not file or "\\" in file or rel.is_absolute() or PureWindowsPath(file).drive or ".." in rel.parts:
        return None
    path = (root / rel).resolve()
    return path if path.is_relative_to(root.resolve()) and path.is_file() else None


def write_merged(out: Path, merged: MergedRun, layout: CheckLayout, *, formats: Mapping[str, Any] | None = None,
                 store: GoldenStore | None = None, corpus_root: Path | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Path]:
    """results.jsonl, then every report through `write_reports` (as `run` writes them). The HTML draws the
    pictures found inside `corpus_root` (see `corpus_root_for`), none when it is None, within the limits of the
    merging checkout's profile."""
    out.mkdir(parents=True, exist_ok=True)
    report = merged.report
    check_asked(formats or {})
    atomic.write_text(out / "results.jsonl", "".join(line + "\n" for line in merged.results))
    files = {img.id: path for img in report.images
             if corpus_root is not None and (path := corpus_file(corpus_root, img.file))}

    def load(image_id: str) -> Any:
        try:
            return read_image(files[image_id], max_pixels=max_pixels, max_bytes=max_bytes) \
                if image_id in files else None
        except ImageError:  # a missing picture must not cost the report
            return None

    goldens: dict[str, OcrResult] = {}
    if needs_goldens(formats or {}) and store is not None:
        goldens = {img.id: g.result for img in report.images if (g := store.load(img.id)) is not None}
    return write_reports(out, report, merged.current(), load, layout=layout, goldens=goldens, **(formats or {}))
