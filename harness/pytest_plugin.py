"""pytest entry: the golden regression as one test per selected corpus image.

A thin shell, like syrupy's: options, one session fixture, one parametrising hook. The work is done by
`GoldenRegression`, a plain class over the same core as `ocr-harness run` and `golden refresh` (plan, worker,
`judge_image`, `plan_refresh`/`apply_refresh`).

- Test ids come from the profile's corpus selection (subset, tags, ids; `--ocr-id` narrows it), read at
  collection without loading a model.
- Each pytest process starts ONE persistent worker on its first golden test and reuses it: under
  `pytest-xdist -n N` every xdist worker has its own, and a model is never loaded per test.
- `--ocr-regen new-only|failed|all` means what `ocr-harness golden refresh --<mode> --yes` means, per image:
  output that differs across repeats is never written (that test fails and says so). As with
  pytest-regressions' `--force-regen`, a failing test still fails in the run that regenerates its golden;
  the next run passes.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from harness.checks.determinism import first_divergence
from harness.checks.golden_check import judge_image, open_store, preload
from harness.config import Profile, find_config, load_profile
from harness.corpus.loader import CorpusItem, content_sha256, load_corpus
from harness.environment import stack
from harness.errors import UserError
from harness.golden.compare import ImageComparison
from harness.golden.refresh import MODES, RefreshMode, apply_refresh, plan_refresh
from harness.golden.store import Golden
from harness.runner import plan
from harness.backends import check_may_write_goldens, make_worker
from harness.worker import ImageOutcome, ImageRequest, WorkerError, WorkerSpec

_IDS = pytest.StashKey[list[str]]()


@dataclass(frozen=True)
class Options:
    """The --ocr-* options; None means the profile's own value."""

    profile: str = "release"
    config: Path | None = None
    regen: RefreshMode | None = None
    ids: tuple[str, ...] = ()
    golden_dir: Path | None = None

    @classmethod
    def from_pytest(cls, config: pytest.Config) -> Options:
        get = config.getoption
        return cls(profile=get("ocr_profile"), config=get("ocr_config"), regen=get("ocr_regen"),
                   ids=tuple(get("ocr_ids") or ()), golden_dir=get("ocr_golden_dir"))

    def resolve(self, start: Path) -> tuple[Profile, Path]:
        """The profile as `ocr-harness` resolves it from the same flags, and the dir its paths are relative to."""
        if self.config is not None and not self.config.is_file():
            raise UserError(f"{self.config}: config file not found")
        profile, base = load_profile(self.config or find_config(start), self.profile)
        changes: dict[str, Any] = {}
        if self.ids:
            changes["ids"] = self.ids
        if self.golden_dir is not None:
            changes["golden_dir"] = str(self.golden_dir.resolve())
        profile = profile.replace(**changes)
        profile.validate()
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
        self.profile = profile
        self.options = options
        self.plan = plan(profile, base, log_dir=log_dir)  # corpus, model pack: checked before any model loads
        self.items: dict[str, CorpusItem] = {it.id: it for it in self.plan.items}
        self.store = open_store(profile, base)
        self.goldens: dict[str, Golden] = preload(self.store, list(self.items))
        engine = profile.golden_engine()
        self.engine = engine
        # A golden is only as good as its reproducibility: regenerating repeats like `golden refresh` does.
        self.repeats = max(2, profile.checks.repeats) if options.regen else 1
        log = str(log_dir / "worker-pytest.log") if log_dir is not None else None
        self._worker = make_worker(WorkerSpec(settings=engine, dirs=self.plan.dirs, max_pixels=profile.max_image_pixels,
                                              label="pytest", log_path=log), profile.image_timeout_s)
        self._load_error: str | None = None
        self._stack: dict[str, Any] | None = None

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
        golden = self.goldens.get(image_id)  # as it was when the session started: a regenerated test still fails
        comp = changed = None
        if golden is not None:
            comp, changed = judge_image(item, outcome.runs[0], golden, self.profile, content_sha256(item))
        message = self._message(image_id, comp, regen)
        return Verdict(image_id, bool(comp) and not changed, f"{changed}\n{message}" if changed else message, comp,
                       regen)

    def _regenerate(self, item: CorpusItem, outcome: ImageOutcome) -> str | None:
        """`golden refresh --<mode> --yes` for this image; returns what was done (None: nothing to do)."""
        try:
            check_may_write_goldens(self.profile)
        except UserError as e:
            return f"golden NOT regenerated: {e}"
        mode = cast(RefreshMode, self.options.regen)
        current = {item.id: outcome.runs[0]}
        reproducible = all(first_divergence(outcome.runs[0], r) is None for r in outcome.runs[1:])
        refresh = plan_refresh(self.store, current, mode, self.profile.tolerances, {item.id: reproducible},
                               image_sha256={item.id: sha} if (sha := content_sha256(item)) else {},
                               key_texts={item.id: dict(item.fields)} if item.fields else {})
        (entry,) = refresh.items
        if entry.action == "refused":
            return f"golden NOT regenerated ({entry.note}): fix the nondeterminism first"
        if not entry.writes:
            return None
        if self._stack is None:
            self._stack = stack(self.engine, self.plan.dirs.file_hashes(), dict(self.plan.backend_facts))
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


# --- pytest hooks -------------------------------------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ocr-harness", "ocr-harness golden regression (tests using `ocr_image_id`)")
    group.addoption("--ocr-profile", default="release", help="profile in harness.toml (default: release)")
    group.addoption("--ocr-config", type=Path, default=None,
                    help="harness.toml (default: nearest one upwards from the rootdir)")
    group.addoption("--ocr-regen", choices=MODES, default=None,
                    help="regenerate goldens as `ocr-harness golden refresh --<mode> --yes` would; "
                         "failing tests still fail in this run")
    group.addoption("--ocr-id", dest="ocr_ids", action="append", default=None,
                    help="only this image id (repeatable)")
    group.addoption("--ocr-golden-dir", type=Path, default=None, help="golden root dir (overrides the profile)")


def selected_ids(config: pytest.Config) -> list[str]:
    """The ids the golden tests are parametrised with: the corpus selection, without loading a model."""
    if _IDS not in config.stash:
        try:
            profile, base = Options.from_pytest(config).resolve(config.rootpath)
            corpus = load_corpus((base / profile.corpus).resolve(), subset=profile.subset, tags=profile.tags,
                                 ids=profile.ids)
        except UserError as e:  # this module fails to collect, with the one line the CLI would print
            raise pytest.Collector.CollectError(f"ocr-harness: error: {e}") from None
        config.stash[_IDS] = [it.id for it in corpus.items]
    return config.stash[_IDS]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ocr_image_id" in metafunc.fixturenames:
        ids = selected_ids(metafunc.config)
        metafunc.parametrize("ocr_image_id", ids, ids=ids)


@pytest.fixture(scope="session")
def ocr_golden(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GoldenRegression]:
    """One `GoldenRegression` (and so one model load) per pytest process."""
    options = Options.from_pytest(request.config)
    try:
        profile, base = options.resolve(request.config.rootpath)
        session = GoldenRegression(profile, base, options, log_dir=tmp_path_factory.mktemp("ocr-worker"))
    except UserError as e:
        pytest.fail(f"ocr-harness: {e}", pytrace=False)
    try:
        yield session
    finally:
        session.close()
