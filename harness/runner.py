"""One harness run: corpus -> workers -> checks -> report dict. The CLI and the pytest entry both call `execute`.

Data flows one way: this module runs inference and checks; report renderers only read the dict it returns.
Everything that can be wrong with the inputs (config, corpus, goldens, model pack) is checked before a model
loads, so a usage error costs seconds, not minutes.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import hashlib
import importlib.util
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends import main_workers, make_worker, preflight, resolve_models
from harness.checks import registry
from harness.checks.paddle_child import ChildError
from harness.checks.retries import FAILED, judge_retries
from harness.corpus.loader import load_corpus
from harness.environment import environment, node_id, stack
from harness.model.corpus import Corpus, CorpusItem
from harness.model.inference import ImageOutcome, ImageRequest
from harness.model.modeldirs import ModelDirs
from harness.model.outcome import CheckResult, ImageCheck, from_images, skipped
from harness.model.report import ImageRecord, RunReport
from harness.model.results import canonical_line
from harness.model.settings import EngineSettings, Profile
from harness.backends.pack import cache_root
from harness.sampling import sample_info, sample_note, stratified_sample
from harness.util.errors import UserError
from harness.util.portable import MachinePaths, for_run
from harness.worker import NoWorkerHere, Worker, WorkerError, WorkerSpec, workers_cancelled

if TYPE_CHECKING:
    from harness.backends.local import LocalWorker
    from harness.checks.registry import CheckSpec

Progress = Callable[[str, int, int, str], None]
FIRST_SHARD_KEY = "judged_on_shard"  # a model-level check's details on shards > 1: the shard that judges it


@dataclass(frozen=True)
class RunPlan:
    """Everything resolved before inference: what to run, on what, with which models."""

    profile: Profile
    base: Path
    corpus: Corpus
    items: tuple[CorpusItem, ...]
    dirs: ModelDirs
    shard: tuple[int, int] | None = None
    log_dir: Path | None = None
    shard_source: Mapping[str, Any] | None = None  # `run --shard auto`: the engine and variables it was read from
    backend_facts: Mapping[str, Any] = field(default_factory=dict)  # what a service reported in the preflight


class WorkerPool:
    """Loaded workers kept across the passes of one run. A pass that `keep`s leaves its live workers loaded; a
    pass that `reuse`s takes idle ones with the same engine settings instead of loading the models again (the
    main pass keeps its workers only when a check will take them: several-per-call). Other passes get new
    workers (the fresh-process pass must never see a used one). `close()` stops every worker kept."""

    def __init__(self) -> None:
        self._idle: list[tuple[EngineSettings, Worker | LocalWorker]] = []
        self._lock = threading.Lock()
        self.started = 0  # workers this pool made: model loads, for the report's phase timings
        self.make: Callable[[WorkerSpec, float], Any] = make_worker  # the executor's (main_executor)

    def take(self, spec: WorkerSpec, timeout_s: float, reuse: bool = False) -> Worker | LocalWorker:
        with self._lock:
            if reuse:
                for i, (settings, w) in enumerate(self._idle):
                    if settings == spec.settings:
                        return self._idle.pop(i)[1]
            self.started += 1
        return self.make(spec, timeout_s)

    def give(self, w: Worker | LocalWorker, keep: bool = False) -> None:
        if not (keep and w.alive):  # a dead worker would restart, and load, uncounted in the next pass
            w.close()
            return
        with self._lock:
            self._idle.append((w.spec.settings, w))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        errors = []
        for _, w in idle:  # every one, whatever another's close raised
            try:
                w.close()
            except Exception as e:
                errors.append(e)
        if errors:
            raise errors[0]


@dataclass
class RunState:
    outcomes: dict[str, ImageOutcome] = field(default_factory=dict)
    checks: dict[str, CheckResult] = field(default_factory=dict)
    load_s: list[float] = field(default_factory=list)
    extra_paths: dict[str, dict[str, ImageOutcome]] = field(default_factory=dict)
    accuracy: dict[str, Any] | None = None  # corpus level; the per-image rows below let `report merge` re-aggregate
    image_accuracy: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)  # wall time per inference path and check
    prepared: dict[str, Any] | None = None  # per check: what it read before any model loaded (prepare_checks)
    progress: Progress | None = None
    pool: WorkerPool = field(default_factory=WorkerPool)
    executor: dict[str, Any] | None = None  # a distributed executor's slots and nodes, for the report's environment

    @contextlib.contextmanager
    def phase(self, label: str, images: int, calls_per_image: int = 1) -> Iterator[None]:
        """Times one phase of the run for the report's `timing.phases` (what `ocr-harness plan` predicts from);
        an inference pass (images > 0) also records the workers it started (0: it reused loaded ones)."""
        t0, started = time.perf_counter(), self.pool.started
        try:
            yield
        finally:
            self.phases[label] = {"wall_s": time.perf_counter() - t0, "images": images,
                                  "calls_per_image": calls_per_image}
            if images:
                self.phases[label]["workers_started"] = self.pool.started - started


def shard_items(items: Sequence[CorpusItem], shard: tuple[int, int] | None) -> tuple[CorpusItem, ...]:
    """Deterministic split by image id (stable across machines and Python hash seeds)."""
    if shard is None:
        return tuple(items)
    k, n = shard
    import zlib

    return tuple(it for it in items if zlib.crc32(it.id.encode("utf-8")) % n == k - 1)


def plan(profile: Profile, base: Path, *, shard: tuple[int, int] | None = None, log_dir: Path | None = None,
         shard_source: Mapping[str, Any] | None = None) -> RunPlan:
    corpus = load_corpus((base / profile.corpus).resolve(), subset=profile.subset, tags=profile.tags, ids=profile.ids)
    items = shard_items(corpus.items, shard)
    if not items:
        raise UserError(f"{corpus.root}: shard {shard[0]}/{shard[1]} selects no images" if shard else
                        f"{corpus.root}: no images selected")
    require_executor(profile)
    dirs = resolve_models(profile.engine, base, profile.model_cache)
    facts = preflight(profile.engine, f"profiles.{profile.name}.engine")  # a service: reachable, and its settings
    return RunPlan(profile=profile, base=base, corpus=corpus, items=items, dirs=dirs, shard=shard, log_dir=log_dir,
                   shard_source=shard_source, backend_facts=facts)


def stack_sample(p: RunPlan) -> tuple[RunPlan, dict[str, Any]]:
    """The plan restricted to the profile's stack sample (drawn from the whole selection, so every shard uses
    the same one), and what the report says about it."""
    whole = stratified_sample(p.corpus.items, p.profile.checks.stack_sample)
    chosen = {id(it) for it in whole}
    info = sample_info(whole, sum(1 for it in p.corpus.items if it.problem is None))
    return dataclasses.replace(p, items=tuple(it for it in p.items if id(it) in chosen)), info


def with_sample(check: CheckResult, info: dict[str, Any]) -> CheckResult:
    if info["size"] == info["of"]:
        return check
    return dataclasses.replace(check, summary=check.summary + sample_note(info),
                               details={**check.details, "sample": info})


def _requests(items: Sequence[CorpusItem]) -> list[ImageRequest]:
    return [ImageRequest(image_id=it.id, path=str(it.path), sha256=it.sha256) for it in items]


def _spec(p: RunPlan, settings: EngineSettings, label: str) -> WorkerSpec:
    log = str(p.log_dir / f"worker-{label}.log") if p.log_dir else None
    return WorkerSpec(settings=settings, dirs=p.dirs, max_pixels=p.profile.max_image_pixels,
                      max_bytes=p.profile.max_image_bytes, label=label, log_path=log)


def infer_all(p: RunPlan, settings: EngineSettings, label: str, repeats: int, workers: int = 1,
              progress: Progress | None = None, load_s: list[float] | None = None,
              into: dict[str, ImageOutcome] | None = None, group: int = 1,
              pool: WorkerPool | None = None, reuse: bool = False, keep: bool = False) -> dict[str, ImageOutcome]:
    """Every usable image through persistent workers, `group` images per predict call (1: the service path).

    Calls are made of consecutive usable images, whatever the worker count, so batch-mates never depend on it.
    Outcomes are filled into `into` (a new dict by default) as images finish, so a cancelled run still has them.
    Workers come from `pool` (`reuse`: loaded ones with the same settings if it has them; `keep`: left loaded in
    it afterwards), else new ones closed at the end."""
    usable = [it for it in p.items if it.problem is None]
    out = into if into is not None else {}
    out.update({it.id: ImageOutcome(it.id, error=it.problem) for it in p.items if it.problem})
    if not usable:
        return out
    lock = threading.Lock()
    done = [0]
    errors: list[BaseException] = []
    stop = threading.Event()
    started: list[Worker] = []

    def stopping() -> bool:
        return stop.is_set() or workers_cancelled()

    # One queue of calls for every worker: a worker that is done takes the next call, so no core idles while the
    # other works through a static share (which worker reads an image must not matter; the checks prove it).
    pending = collections.deque(usable[i:i + group] for i in range(0, len(usable), group))

    def next_call() -> list[CorpusItem] | None:
        with lock:
            return pending.popleft() if pending else None

    source = pool if pool is not None else WorkerPool()

    def drive(wlabel: str, settled: threading.Event) -> None:
        try:
            w = source.take(_spec(p, settings, wlabel), p.profile.image_timeout_s, reuse)
            healthy = False
            loads = len(w.load_s)  # a reused worker's earlier loads belong to the pass that made them
            try:
                started.append(w)
                load_error: str | None = None
                while (call := next_call()) is not None:
                    if stopping():
                        break
                    requests = _requests(call)
                    if load_error is None:
                        try:
                            results = w.infer(requests, repeats=repeats)
                        except NoWorkerHere as e:
                            with lock:
                                if drivers[0] > 1:  # the others take this call and the rest
                                    drivers[0] -= 1
                                    pending.appendleft(call)
                                    break
                            load_error = str(e)
                        except WorkerError as e:  # the model did not load: this worker's images fail, no retry
                            load_error = str(e)
                    if load_error is not None:
                        results = [ImageOutcome(r.image_id, error=load_error) for r in requests]
                    if not all(res.ok for res in results) and stopping():
                        break  # killed by the cancellation: says nothing about these images
                    with lock:
                        for res in results:
                            out[res.image_id] = res
                            done[0] += 1
                            if progress:
                                progress(label, done[0], len(usable), res.image_id)
                if load_s is not None:
                    load_s.extend(w.load_s[loads:])
                healthy = load_error is None and not stopping()
            finally:
                source.give(w, keep and healthy)
        except BaseException as e:  # surfaced in the calling thread
            errors.append(e)
        finally:
            settled.set()

    n = max(1, min(workers, len(pending)))
    drivers = [n]  # drive threads still taking calls
    # Waited for through events, not Thread.join: a join interrupted by a signal marks a still running thread
    # as stopped (CPython 3.11), and the outcomes must be settled before a cancelled run reports them.
    settled = [threading.Event() for _ in range(n)]
    threads = [threading.Thread(target=drive, args=(f"{label}-{i}" if n > 1 else label, ev))
               for i, ev in enumerate(settled)]
    for t in threads:
        t.start()
    try:
        for ev in settled:
            ev.wait()
    except BaseException:  # cancelled (or interrupted): stop this pass's workers, let the threads settle
        stop.set()
        for w in list(started):
            if isinstance(w, Worker):  # a process to kill; an in-process client stops with its thread
                w.kill_process()
        for ev in settled:
            ev.wait()
        raise
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


def inference_check(p: RunPlan, outcomes: Mapping[str, ImageOutcome]) -> CheckResult:
    per_image = {i: ImageCheck(o.ok, o.error or f"{len(o.runs[0].lines)} lines") for i, o in outcomes.items()}
    check = from_images("inference", per_image, FAILED)
    if p.profile.engine.backend != "http":
        return check
    return judge_retries(check, outcomes, p.profile.engine.http.max_retry_rate)


def execute(p: RunPlan, *, progress: Progress | None = None,
            extra_checks: Sequence[Callable[[RunPlan, RunState], None]] = (),
            state: RunState | None = None) -> tuple[dict[str, Any], RunState]:
    """Run inference and every registered check (harness.checks.registry) that applies to the profile, then
    `extra_checks`; returns the report dict and the raw state for renderers.

    `state` is filled as the run goes: a caller that passes one still has what finished if the run stops."""
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    prof, checks = p.profile, p.profile.checks
    state = state if state is not None else RunState()
    state.progress = progress
    if state.prepared is None:
        state.prepared = prepare_checks(p)
    with main_executor(p, state) as drivers:
        try:
            with state.phase("main", len(usable_items(p)), checks.repeats):
                # Ray actors are not kept: idle, they would hold the CPUs the next pass's actors need.
                infer_all(p, prof.engine, "main", checks.repeats, drivers, progress, state.load_s,
                          into=state.outcomes, pool=state.pool,
                          keep=keeps_main_workers(prof) and prof.executor.kind == "local")
            run_checks(p, state)
            for hook in extra_checks:
                hook(p, state)
        finally:
            state.pool.close()
    report = build_report(p, state, started, time.perf_counter() - t0)
    return report, state


@contextlib.contextmanager
def main_executor(p: RunPlan, state: RunState) -> Iterator[int]:
    """Where the run's workers come from, and how many calls the main pass keeps in flight: local worker
    processes (`workers`), or Ray actors (`[executor] kind = "ray"`, `slots`) for every pass that takes its
    workers from the run's pool."""
    if p.profile.executor.kind == "local":
        yield main_workers(p.profile)
        return
    # Ray is an optional, heavy dependency: imported only when a profile chooses it.
    from harness import ray_executor

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
    if profile.engine.backend == "http":
        raise UserError(f"{where}: \"ray\" runs worker processes; the http backend has none (it calls a service)")


def keeps_main_workers(profile: Profile) -> bool:
    """Whether a check that runs for `profile` takes the main pass's loaded workers afterwards."""
    return any(spec.reuses_main_workers and spec.applies(profile) for spec in registry.specs())


def prepare_checks(p: RunPlan) -> dict[str, Any]:
    """What each check that will run reads before any model loads (goldens, a reference's models)."""
    return {spec.name: spec.prepare(p) for spec in registry.specs()
            if spec.prepare and spec.applies(p.profile) and not spec.left_to_first_shard(p.shard)}


def run_checks(p: RunPlan, state: RunState) -> None:
    """Every registered check in registration order: run when it applies to the profile, else recorded as
    skipped with the reason (or left out, for a check that only exists for some backends)."""
    for spec in registry.specs():
        if spec.absent_unless is not None and not spec.absent_unless(p.profile):
            continue
        why = spec.skip_reason(p.profile)
        if why is None and spec.left_to_first_shard(p.shard):
            state.checks[spec.name] = left_to_first_shard(spec.name, p.shard)
            continue
        state.checks[spec.name] = skipped(spec.name, why) if why is not None else _run_one(spec, p, state)


def left_to_first_shard(name: str, shard: tuple[int, int]) -> CheckResult:
    """A model-level check on shard K > 1: not run, because shard 1 judges it (it reads the models, which every
    shard shares); `report merge` takes shard 1's verdict (harness.report.merge)."""
    return CheckResult(name, True, f"skipped: judged on shard 1/{shard[1]} only (a model-level check)",
                       skipped=True, details={FIRST_SHARD_KEY: [1, shard[1]]})


def _run_one(spec: CheckSpec, p: RunPlan, state: RunState) -> CheckResult:
    """A child check (audit, probe, bn_drift run Paddle in a child process) that dies, by a signal, an exception
    or a timeout, fails that check with the reason, and the run goes on to its other checks and reports."""
    try:
        with state.phase(spec.name, 0) if spec.timed else contextlib.nullcontext():
            result = spec.run(p, state)
    except ChildError as e:
        if not spec.child:
            raise
        reason = machine_paths(p).text(str(e)).strip()
        return CheckResult(spec.name, False, f"{spec.name} did not run: {reason.splitlines()[0]}",
                           details={"error": reason})
    if result.name != spec.name:
        raise ValueError(f"check {spec.name!r} returned a result named {result.name!r}")
    return result


def usable_items(p: RunPlan) -> list[CorpusItem]:
    return [it for it in p.items if it.problem is None]


def timing_summary(predict_s: Sequence[float], load_s: Sequence[float], wall_s: float,
                   phases: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The report's `timing` from per-image predict times (each image's median over repeats); shared with
    `report merge`, which re-aggregates the per-image times of its shards."""
    per_image = sorted(predict_s)
    return {
        "images": len(per_image),
        "predict_median_s": statistics.median(per_image) if per_image else None,
        "predict_p90_s": per_image[min(len(per_image) - 1, int(0.9 * len(per_image)))] if per_image else None,
        "model_load_s": statistics.median(load_s) if load_s else None,
        "wall_s": wall_s,
        "phases": {k: dict(v) for k, v in sorted((phases or {}).items())},
    }


def selection_info(corpus: Corpus) -> dict[str, Any]:
    """The corpus selection before sharding: every shard of one run reports the same, which is how
    `report merge` recognises shards of one corpus and knows how many images make the whole."""
    digest = hashlib.sha256()
    for it in corpus.items:
        digest.update((canonical_line([it.id, _relative(it.path, corpus.root), it.sha256]) + "\n").encode("utf-8"))
    return {"images": len(corpus.items), "complete": corpus.selection_is_complete, "sha256": digest.hexdigest()}


def _selection_index(p: RunPlan) -> list[int | None]:
    """Each planned item's position in the corpus selection, of which `p.items` is a subsequence (by position,
    not id: duplicate ids are distinct, failing items)."""
    out: list[int | None] = []
    n = 0
    for it in p.items:
        while n < len(p.corpus.items) and p.corpus.items[n] != it:
            n += 1
        out.append(n if n < len(p.corpus.items) else None)
        n += 1
    return out


def image_record(it: CorpusItem, index: int | None, file: str, state: RunState, node: str | None = None) -> ImageRecord:
    """One image of the report: its verdict under every check that judged it, its measurements, and where it
    ran (`node`, harness.environment.node_id, and the worker's pid)."""
    out = state.outcomes.get(it.id)
    per_check = {name: c.per_image[it.id].to_dict() for name, c in state.checks.items() if it.id in c.per_image}
    ran = out is not None and out.ok
    return ImageRecord(
        id=it.id, index=index, file=file, template=it.template, tags=it.tags,
        passed=all(c["passed"] for c in per_check.values()), error=out.error if out is not None else "not run",
        checks=per_check,
        timings=({"predict_s": statistics.median(out.predict_s), "read_s": out.read_s,
                  "repeats_s": list(out.predict_s)} if out is not None and ran else {}),
        lines=len(out.runs[0].lines) if out is not None and ran else 0,
        accuracy=state.image_accuracy[it.id].to_dict() if it.id in state.image_accuracy else None,
        judged_on={"node": (out.node if out is not None and out.node else node),
                   "worker_pid": out.worker_pid if out is not None else None}
        if node is not None else None)


def run_report(p: RunPlan, state: RunState, started: dt.datetime, wall_s: float) -> RunReport:
    """The typed report of what `state` holds (harness.model.report); `build_report` is it as written."""
    node = node_id()
    images = [image_record(it, index, _relative(it.path, p.corpus.root), state, node)
              for it, index in zip(p.items, _selection_index(p), strict=True)]
    env = environment()
    if state.executor is not None:
        env["executor"] = state.executor
    env.update({"onednn": p.profile.engine.enable_mkldnn, "cpu_threads": p.profile.engine.resolved_threads()}
               if p.profile.engine.backend == "paddle" else {"backend": p.profile.engine.backend})
    return RunReport(
        passed=all(c.passed for c in state.checks.values()),
        started_at=started.isoformat(timespec="seconds"),
        duration_s=wall_s,
        profile={"name": p.profile.name, "settings": p.profile.settings_dict()},
        environment=env,
        stack=stack(p.profile.engine, p.dirs.file_hashes(), dict(p.backend_facts)),
        corpus={"root": _display_path(p.corpus.root, p.base), "subset": p.profile.subset, "selected": len(p.items),
                "complete": p.corpus.selection_is_complete and p.shard is None, "has_manifest": p.corpus.has_manifest,
                "shard": list(p.shard) if p.shard else None, "selection": selection_info(p.corpus),
                **({"shard_source": dict(p.shard_source)} if p.shard_source is not None else {})},
        checks={name: c.to_dict() for name, c in state.checks.items()},
        images=tuple(images),
        accuracy=state.accuracy,
        timing=timing_summary([statistics.median(o.predict_s) for o in state.outcomes.values() if o.ok],
                              state.load_s, wall_s, state.phases),
    )


def build_report(p: RunPlan, state: RunState, started: dt.datetime, wall_s: float) -> dict[str, Any]:
    """report.json of a finished run: the typed report, serialised, with no machine path in it."""
    return report_paths(p, state).scrub(run_report(p, state, started, wall_s).to_dict())


def report_paths(p: RunPlan, state: RunState) -> MachinePaths:
    """`machine_paths` that leave every text the OCR read (any path, golden, ground truth) as it was read."""
    results = [o.runs for o in state.outcomes.values()]
    results += [o.runs for path in state.extra_paths.values() for o in path.values()]
    texts = {line.text for runs in results for r in runs for line in r.lines}
    golden = (state.prepared or {}).get("golden")
    texts.update(line.text for g in getattr(golden, "goldens", {}).values() for line in g.result.lines)
    texts.update(t.text for it in p.items for t in it.truth or ())
    return machine_paths(p).keeping(texts)


def machine_paths(p: RunPlan) -> MachinePaths:
    """This run's absolute roots and their portable names (harness.util.portable): no report names a machine path."""
    golden = Path(p.profile.golden_dir)
    cache = cache_root(p.profile.model_cache).resolve()
    det, rec = (d if p.dirs.source != "service" and not d.resolve().is_relative_to(cache) else None
                for d in (p.dirs.det, p.dirs.rec))
    return for_run(checkout=p.base, corpus_root=p.corpus.root,
                   golden_root=golden if golden.is_absolute() else p.base / golden,
                   cache_root=cache, det_model_dir=det, rec_model_dir=rec)


def _display_path(path: Path, base: Path) -> str:
    """Relative to the config's directory when inside it, so reports read the same on every checkout."""
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def terminal_progress(stream: Any = sys.stderr) -> Progress | None:
    """A one-line progress display on a TTY; silent in CI and pipes."""
    import os

    if not stream.isatty() or os.environ.get("CI"):
        return None

    def show(label: str, done: int, total: int, image_id: str) -> None:
        width = 30
        filled = int(width * done / total)
        stream.write(f"\r{label:>8} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {image_id[:30]:<30}")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show
