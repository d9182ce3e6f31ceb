"""pytest entry: the golden regression as one test per selected corpus image.

A thin shell, like syrupy's: options, one session fixture, one parametrising hook. The work is done by
`GoldenRegression` (harness.run.goldens.regression), a plain class over the same core as `ocr-harness run` and
`golden refresh` (harness.run.goldens.core: the golden engine, the repeat floor, the reproducibility refusal).

- Test ids come from the profile's corpus selection (subset, tags, ids; `--ocr-id` narrows it), read at
  collection without loading a model.
- Each pytest process starts ONE persistent worker on its first golden test and reuses it: under
  `pytest-xdist -n N` every xdist worker has its own, and a model is never loaded per test.
- `--ocr-regen new-only|failed|all` means what `ocr-harness golden refresh --<mode> --yes` means, per image:
  output that differs across repeats is never written (that test fails and says so). As with
  pytest-regressions' `--force-regen`, a failing test still fails in the run that regenerates its golden;
  the next run passes. `--ocr-regen all` over every selected image in one process is a full approval: at the end
  of the session it also writes the golden set's approval record (speed baseline, BN reference) through the
  same code as the CLI (harness.run.goldens.approve); a partial regeneration keeps the record and says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends import builtin as builtin_backends
from harness.backends import registry as backend_registry
from harness.checks import builtin, registry
from harness.corpus.loader import load_corpus
from harness.golden.refresh import MODES
from harness.run.goldens.approve import ApprovalResult
from harness.run.goldens.regression import GoldenRegression, Options, Verdict
from harness.model.catalogue import Catalogue
from harness.util.errors import UserError

__all__ = ["GoldenRegression", "Options", "Verdict", "ocr_golden", "pytest_addoption", "pytest_generate_tests",
           "pytest_terminal_summary", "selected_ids"]

_IDS = pytest.StashKey[list[str]]()
_APPROVAL = pytest.StashKey[ApprovalResult]()  # what the session's end did to the approval record


# --- pytest hooks -------------------------------------------------------------------------------------------------

def _catalogue() -> Catalogue:
    """The composition root's catalogue, loaded where it is first needed: a bad plug-in check module fails
    collection with one line, not pytest's start."""
    registry.load(builtin)
    backend_registry.load(builtin_backends)
    return registry.catalogue()


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


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    approval = config.stash.get(_APPROVAL, None)
    if approval is None:
        return
    for line in approval.lines:
        terminalreporter.write_line(f"ocr-harness: {line}")
    incomplete = approval.incomplete()
    if incomplete:
        terminalreporter.write_line(f"ocr-harness: {incomplete}", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    approval = session.config.stash.get(_APPROVAL, None)
    if approval is not None and approval.incomplete() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # --ocr-regen all that left the record incomplete


def selected_ids(config: pytest.Config) -> list[str]:
    """The ids the golden tests are parametrised with: the corpus selection, without loading a model."""
    if _IDS not in config.stash:
        try:
            profile, base = Options.from_pytest(config).resolve(config.rootpath, _catalogue())
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
        profile, base = options.resolve(request.config.rootpath, _catalogue())
        session = GoldenRegression(profile, base, options, log_dir=tmp_path_factory.mktemp("ocr-worker"))
    except UserError as e:
        pytest.fail(f"ocr-harness: {e}", pytrace=False)
    try:
        yield session
    finally:
        session.close()
    # After the worker is gone: the BN reference captures in a worker of its own. Printed in the terminal summary
    # (teardown output is captured).
    request.config.stash[_APPROVAL] = session.approve()
