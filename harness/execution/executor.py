"""Where a run's workers come from: local worker processes, or Ray actors (`[executor] kind = "ray"`,
harness.execution.ray_executor) for every pass that takes its workers from the run's pool."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator

from harness.backends import main_workers, runs_in_workers
from harness.execution.pool import make_worker
from harness.execution.state import RunPlan, RunState
from harness.model.settings import Profile
from harness.util.errors import UserError


@contextlib.contextmanager
def main_executor(p: RunPlan, state: RunState) -> Iterator[int]:
    """The executor for the block, and how many calls the main pass keeps in flight: local worker processes
    (`workers`), or Ray actors (`slots`)."""
    if p.profile.executor.kind == "local":
        yield main_workers(p.profile)
        return
    # Ray is an optional, heavy dependency: imported only when a profile chooses it.
    from harness.execution import ray_executor

    settings = p.profile.executor
    with ray_executor.ray_session(settings.address):
        ex = ray_executor.RayExecutor(settings, str(p.base), p.profile.model_cache, p.dirs.file_hashes(),
                                      p.profile.engine.resolved_threads())
        state.pool.make = ex.make_worker
        slots = ex.slots
        state.executor = ex.info(slots)
        try:
            yield slots
        finally:
            state.pool.close()  # before the session ends: the actors must go while the cluster is there
            state.pool.make = make_worker
            state.executor = ex.info(slots)  # now with every node that served


def require_executor(profile: Profile) -> None:
    """Before any model loads: the chosen executor can run (Ray installed, a backend that runs in workers)."""
    if profile.executor.kind != "ray":
        return
    where = f"profiles.{profile.name}.executor.kind"
    if importlib.util.find_spec("ray") is None:
        raise UserError(f'{where}: "ray" needs Ray, which is not installed: pip install "ocr-harness[ray]"')
    if not runs_in_workers(profile.engine):
        raise UserError(f"{where}: \"ray\" runs worker processes; the {profile.engine.backend} backend has none "
                        "(it calls a service)")
