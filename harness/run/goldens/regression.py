"""The golden regression one image at a time, as the pytest plugin (harness.pytest_plugin) runs it: a plain
class over the same core as `ocr-harness run` and `golden refresh` (plan, worker, `judge_image`, and
harness.run.goldens.core for how goldens are made)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from harness.checks.golden_check import judge_image, open_store, preload
from harness.config import find_config, load_profile
from harness.corpus.loader import content_sha256
from harness.golden.compare import ImageComparison
from harness.golden.refresh import RefreshMode
from harness.golden.store import Golden
from harness.model.catalogue import Catalogue
from harness.model.corpus import CorpusItem
from harness.model.inference import ImageOutcome, ImageRequest
from harness.model.settings import Profile
from harness.run.goldens.approve import ApprovalResult, approve_full
from harness.run.goldens.core import check_may_write_goldens, golden_repeats, golden_stack, plan_golden_refresh
from harness.run.goldens.refresh import apply_refresh
from harness.run.pipeline.plan import plan
from harness.util.errors import UserError
from harness.execution.pool import make_worker
from harness.execution.worker import WorkerError, WorkerSpec


@dataclass(frozen=True)
class Options:
    """The --ocr-* options; None means the profile's own value."""

    profile: str = "release"
    config: Path | None = None
    regen: RefreshMode | None = None
    ids: tuple[str, ...] = ()
    golden_dir: Path | None = None

    @classmethod
    def from_pytest(cls, config: Any) -> Options:
        """From a `pytest.Config` (its --ocr-* options, harness.pytest_plugin)."""
        get = config.getoption
        return cls(profile=get("ocr_profile"), config=get("ocr_config"), regen=get("ocr_regen"),
                   ids=tuple(get("ocr_ids") or ()), golden_dir=get("ocr_golden_dir"))

    def resolve(self, start: Path, catalogue: Catalogue) -> tuple[Profile, Path]:
        """The profile as `ocr-harness` resolves it from the same flags, and the dir its paths are relative to."""
        if self.config is not None and not self.config.is_file():
            raise UserError(f"{self.config}: config file not found")
        profile, base = load_profile(self.config or find_config(start), self.profile, catalogue)
        changes: dict[str, Any] = {}
        if self.ids:
            changes["ids"] = self.ids
        if self.golden_dir is not None:
            changes["golden_dir"] = str(self.golden_dir.resolve())
        profile = profile.replace(**changes)
        profile.validate(catalogue)
        return profile, base

    def refresh_command(self, image_id: str, mode: RefreshMode) -> str:
        """The CLI command that refreshes this one golden (a dry run; `--yes` writes)."""
        args = ["ocr-harness", "golden", "refresh", "--profile", self.profile]
        if self.config is not None:
            args += ["--config", str(self.config)]
        if self.golden_dir is not None:
            args += ["--golden-dir", str(self.golden_dir)]
        return shlex.join([*args, "--id", image_id, f"--{mode}"])


@dataclass(frozen=True)
class Verdict:
    """One image against its golden; truthy when it passes. `regen` says what --ocr-regen did, if anything."""

    image_id: str
    passed: bool
    message: str
    comparison: ImageComparison | None = None
    regen: str | None = None

    def __bool__(self) -> bool:
        return self.passed


class GoldenRegression:
    """Current output of each image against its golden, through one persistent worker (started on first use)."""

    def __init__(self, profile: Profile, base: Path, options: Options, *, log_dir: Path | None = None) -> None:
        self.options = options
        self.plan = plan(profile, base, log_dir=log_dir)  # corpus, model pack: checked before any model loads
        profile = self.plan.profile  # with the names its model dirs declare
        self.profile = profile
        self.items: dict[str, CorpusItem] = {it.id: it for it in self.plan.items}
        self.store = open_store(profile, base)
        self.goldens: dict[str, Golden] = preload(self.store, list(self.items))
        engine = profile.golden_engine()
        self.engine = engine
        self.repeats = golden_repeats(profile) if options.regen else 1  # regenerating repeats like refresh does
        log = str(log_dir / "worker-pytest.log") if log_dir is not None else None
        self._worker = make_worker(WorkerSpec(settings=engine, dirs=self.plan.dirs, max_pixels=profile.max_image_pixels,
                                              max_bytes=profile.max_image_bytes,
                                              label="pytest", log_path=log), profile.image_timeout_s)
        self._load_error: str | None = None
        self._stack: dict[str, Any] | None = None
        self._regenerated: dict[str, ImageOutcome] = {}  # what --ocr-regen judged, for the approval record

    @property
    def worker_pid(self) -> int | None:
        return self._worker.pid

    @property
    def model_loads(self) -> int:
        return len(self._worker.load_s)

    def close(self) -> None:
        self._worker.close()

    def _infer(self, item: CorpusItem) -> ImageOutcome:
        if self._load_error is None:
            try:
                (outcome,) = self._worker.infer([ImageRequest(item.id, str(item.path), item.sha256)], self.repeats)
                return outcome
            except WorkerError as e:  # the model did not load: every later test fails fast with the same reason
                self._load_error = str(e)
        return ImageOutcome(item.id, error=self._load_error)

    def check(self, image_id: str) -> Verdict:
        """Run the image through the session's worker and judge it."""
        item = self.items[image_id]
        return self.judge(image_id, ImageOutcome(image_id, error=item.problem) if item.problem else self._infer(item))

    def judge(self, image_id: str, outcome: ImageOutcome) -> Verdict:
        """The verdict on one inference outcome (all its repeats), regenerating the golden first if asked."""
        item = self.items[image_id]
        if not outcome.ok:
            return Verdict(image_id, False, f"{image_id}: did not run: {outcome.error}")
        regen = self._regenerate(item, outcome) if self.options.regen else None
        if self.options.regen:
            self._regenerated[image_id] = outcome
        golden = self.goldens.get(image_id)  # as it was when the session started: a regenerated test still fails
        comp = changed = None
        if golden is not None:
            comp, changed = judge_image(item, outcome.runs[0], golden, self.profile, content_sha256(item))
        message = self._message(image_id, comp, regen)
        return Verdict(image_id, bool(comp) and not changed, f"{changed}\n{message}" if changed else message, comp,
                       regen)

    def approve(self) -> ApprovalResult:
        """After the session's tests: `--ocr-regen all` over every selected image is a full approval and writes the
        approval record (speed baseline, BN reference) as `golden refresh --all --yes` does; any other
        regeneration keeps it and says so (one line per section). Nothing without --ocr-regen."""
        if not self.options.regen:
            return ApprovalResult(())
        missing = [i for i in self.items if i not in self._regenerated]
        if self.options.regen != "all":
            why = f"--ocr-regen {self.options.regen} is a partial regeneration; only --ocr-regen all rewrites it"
        elif missing:
            why = (f"--ocr-regen all ran {len(self._regenerated)} of the {len(self.items)} selected images in this "
                   "process (a -k/-x selection or an xdist worker): only a regeneration of every image rewrites it")
        else:
            why = ""
        return approve_full(self.plan, self._regenerated, not why, why)

    def _regenerate(self, item: CorpusItem, outcome: ImageOutcome) -> str | None:
        """`golden refresh --<mode> --yes` for this image; returns what was done (None: nothing to do)."""
        try:
            check_may_write_goldens(self.profile)
        except UserError as e:
            return f"golden NOT regenerated: {e}"
        mode = cast(RefreshMode, self.options.regen)
        refresh = plan_golden_refresh(self.store, {item.id: outcome}, {item.id: item}, mode, self.profile)
        (entry,) = refresh.items
        if entry.action == "refused":
            return f"golden NOT regenerated ({entry.note}): fix the nondeterminism first"
        if not entry.writes:
            return None
        if self._stack is None:
            self._stack = golden_stack(self.plan)
        apply_refresh(refresh, self.store, self._stack)
        what = "written (new)" if entry.action == "new" else "regenerated (changed)"
        return f"golden {what}: {self.store.path_for(item.id)}; the next run compares with it"

    def _message(self, image_id: str, comp: ImageComparison | None, regen: str | None) -> str:
        if comp is None:
            lines = [f"{image_id}: no golden in {self.store.directory}"]
            if not regen:
                lines.append(f"to create it: {self.options.refresh_command(image_id, 'new-only')} --yes "
                             "(or pytest --ocr-regen new-only)")
        else:
            lines = [comp.summary()]
            if comp.size_changed:
                lines.append("  image size {}x{} -> {}x{}".format(*comp.golden_size, *comp.current_size))
            lines += [f"  {d.describe()}" for d in comp.failures]
            within = len(comp.diffs) - len(comp.failures)
            if within:
                lines.append(f"  (and {within} lines that moved within tolerance)")
            if not comp.passed:
                lines.append(f"to accept deliberately: {self.options.refresh_command(image_id, 'failed')} "
                             "(dry run; add --yes to write), or pytest --ocr-regen failed")
        if regen:
            lines.append(f"--ocr-regen {self.options.regen}: {regen}")
        return "\n".join(lines)
