"""The Ray executor (harness.execution.ray_executor) on a real local Ray cluster shared by this module's tests: results
equal to the local executor's, a native crash fails one image with its signal, SIGTERM leaves an incomplete report
and no actor or worker process, the cluster listens on loopback only; and Ray is never imported unless chosen."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builders import Value, profile_toml, write_profiles
from conftest import CORPUS, ROOT, CliRun, run_cli
from harness.backends.registry import PLUGINS_ENV
from harness.checks.registry import catalogue
from harness.config import load_profile
from harness.environment import NODE_SALT_ENV, node_id
from harness.corpus.loader import load_corpus
from harness.backends import resolve_models
from harness.model.settings import EngineSettings
from harness.util.errors import UserError
from harness.backends.pack import cache_root

TESTS = Path(__file__).resolve().parents[1]
SAME = ["slip_0001", "slip_0002", "slip_0003"]  # smoke-subset slips compared with the local executor
ABORTS = "slip_0005"  # planted SIGABRT (faults.AbortingEngine reads FAULT_IDS in the cluster's environment)


def config(tmp_path: Path, factory: str | None = None, executor: str = "ray", address: str | None = None,
           results_only: bool = False, image_timeout_s: float = 300) -> Path:
    """results_only: one pass and no check beyond reading each image (no goldens, accuracy or mutation hash)."""
    engine: dict[str, Value] = {"cpu_threads": 1, **({"factory": factory} if factory else {})}
    checks: dict[str, Value] = {"repeats": 1, "audit": False}
    if results_only:
        checks.update(goldens=False, accuracy=False, mutation=False)
    return write_profiles(tmp_path, profile_toml(
        golden_dir=ROOT / "golden", golden_set="default", top={"image_timeout_s": image_timeout_s}, engine=engine,
        checks=checks, executor={"kind": executor, **({"address": address} if address else {})}))


class Cluster:
    def __init__(self, proc: subprocess.Popen[str], address: str, env: dict[str, str], marks: Path) -> None:
        self.proc, self.address, self.env, self.marks = proc, address, env, marks

    @contextlib.contextmanager
    def held(self, leave: int = 0) -> Iterator[None]:
        """Every CPU of the cluster but `leave` taken by another driver's actor for the block (as another job's)."""
        self.ask(f"hold {leave}", "held")
        try:
            yield
        finally:
            self.ask("free", "freed")

    def ask(self, line: str, answer: str | None = None) -> str:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert select.select([self.proc.stdout], [], [], 120)[0], f"the test cluster did not answer {line!r}"
        got = self.proc.stdout.readline().strip()
        assert answer is None or got == answer, got
        return got

    def actors(self, state: str) -> int:
        """How many of the harness's actors are in `state` on the cluster (Ray's own actor table)."""
        return int(self.ask(f"actors {state}"))

    def pids(self) -> set[int]:
        """The cluster's processes: the holder and every descendant."""
        children: dict[int, list[int]] = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(d.name))
        out, todo = set(), [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.add(pid)
            todo += children.get(pid, [])
        return out


@contextlib.contextmanager
def start_cluster(tmp: pytest.TempPathFactory, name: str, *second_node_cache: str) -> Iterator[Cluster]:
    home = tmp.mktemp("ray-home")  # Ray writes ~/.ray/auth_token
    temp = Path(f"/tmp/ohr-{os.getpid()}-{name}")  # short: Ray's unix socket paths must stay under 108 bytes
    temp.mkdir(exist_ok=True)
    marks = tmp.mktemp("ray-marks")
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(TESTS), "FAULT_IDS": ABORTS,
           "FAULT_MARK_DIR": str(marks), "RAY_AUTH_MODE": "token", "OCR_HARNESS_CACHE": str(cache_root(None))}
    # The cluster's processes salt their node id differently from the driver's (which runs with `env`): an image's
    # judged_on.node then proves that the cluster's node judged it, not the driver's fallback.
    proc = subprocess.Popen([sys.executable, str(TESTS / "ray_cluster.py"), str(temp), *second_node_cache],
                            env={**env, NODE_SALT_ENV: "the test cluster's own salt"},
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        address = proc.stdout.readline().strip() if proc.stdout else ""
        assert address, "the test cluster did not start"
        yield Cluster(proc, address, env, marks)
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with start_cluster(tmp_path_factory, "one") as c:
        yield c


def run_on(cluster: Cluster, tmp_path: Path, cfg: Path, *args: str) -> CliRun:
    out = tmp_path / "out"
    return run_cli(["run", "--config", str(cfg), "--profile", "t", "--out", str(out), "--ray-address",
                    cluster.address, *args], env=cluster.env, out=out)


def ids_args(ids: list[str]) -> list[str]:
    return [a for i in ids for a in ("--id", i)]


@pytest.fixture(scope="module")
def fault_run(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """One Ray run of the smoke slips SAME plus ABORTS, with an engine that aborts natively on ABORTS, and a check
    pass after the main one (cross_process: new actors, while the main pass's are gone)."""
    tmp = tmp_path_factory.mktemp("ray-run")
    return run_on(cluster, tmp, config(tmp, "faults:AbortingEngine"), "--cross-process", *ids_args([*SAME, ABORTS]))


@pytest.mark.slow
def test_ray_results_are_bit_identical_to_the_local_executor(cluster: Cluster, fault_run: CliRun,
                                                             tmp_path: Path) -> None:
    # The whole smoke subset: SAME from fault_run, the rest in one more Ray run; the local executor reads all of it.
    # Both sides at the least cost: one pass, audit off, no goldens, accuracy or mutation hash (results only).
    smoke = [i.id for i in load_corpus(CORPUS, subset="smoke").items]
    rest = [i for i in smoke if i not in SAME]
    assert len(smoke) == 12 and ABORTS in rest  # the planted crash's slip is read here by the plain engine
    ray_rest = run_on(cluster, tmp_path / "ray", config(tmp_path, results_only=True), "--subset", "smoke",
                      *ids_args(rest))
    assert ray_rest.returncode == 0, ray_rest.stderr[-2000:]
    local = run_cli(["run", "--config", str(config(tmp_path, executor="local", results_only=True)), "--profile", "t",
                     "--out", str(tmp_path / "out"), "--workers", "2", "--subset", "smoke"], out=tmp_path / "out")
    assert local.returncode == 0, local.stderr[-2000:]
    ray_results = {r["id"]: r["result"] for r in fault_run.results() if r["id"] in SAME}  # not ABORTS: it crashed
    ray_results |= {r["id"]: r["result"] for r in ray_rest.results()}
    local_results = {r["id"]: r["result"] for r in local.results()}
    assert sorted(ray_results) == sorted(local_results) == smoke and all(r["lines"] for r in ray_results.values())
    assert ray_results == local_results  # every line's text, score and polygon, exactly
    assert ray_rest.report["environment"]["executor"]["kind"] == "ray"
    # Judged on the cluster's node, by actor-supervised workers, with the node's stack in the report.
    report = fault_run.report
    nodes = report["environment"]["executor"]["nodes"]
    assert report["environment"]["executor"]["kind"] == "ray" and len(nodes) == 1
    (node,) = nodes
    assert nodes[node]["models"] == report["stack"]["models"]
    assert {i["judged_on"]["node"] for i in report["images"]} == {node} and node != node_id(cluster.env)
    pids = {i["id"]: i["judged_on"]["worker_pid"] for i in report["images"]}
    assert all(isinstance(pids[i], int) and pids[i] > 0 for i in SAME), pids  # ABORTS' worker died under it
    # A check's own pass runs on the cluster too, on fresh actors, and agrees.
    fresh = report["checks"]["cross_process"]
    assert fresh["passed"] and fresh["judged"] == len(SAME), fresh["summary"]
    assert report["timing"]["phases"]["fresh"]["workers_started"] >= 1


@pytest.mark.slow
def test_ray_native_crash_fails_that_image_with_its_signal_and_the_run_goes_on(fault_run: CliRun) -> None:
    assert fault_run.returncode == 1, fault_run.stderr[-2000:]
    images = {i["id"]: i for i in fault_run.report["images"]}
    error = images[ABORTS]["error"]
    assert error.startswith("worker crashed with SIGABRT") and f"{ABORTS}.png" in error, error
    assert str(CORPUS) in error or "images/" in error  # named by the corpus path, not the actor's copy
    assert all(images[i]["error"] is None and images[i]["passed"] for i in SAME)
    assert fault_run.report["checks"]["inference"]["failed_images"] == [ABORTS]


@pytest.mark.slow
def test_ray_dead_actor_fails_its_image_once_and_a_new_actor_takes_the_next(cluster: Cluster, tmp_path: Path) -> None:
    # One slot, the calls in corpus order: slip_0001, then ABORTS (whose worker SIGKILLs its actor), then slip_0006.
    ids = ["slip_0001", ABORTS, "slip_0006"]
    res = run_on(cluster, tmp_path, config(tmp_path, "faults:ParentKillingEngine", results_only=True), "--ray-slots",
                 "1", *ids_args(ids))
    assert res.returncode == 1, res.stderr[-2000:]
    images = {i["id"]: i for i in res.report["images"]}
    error = images[ABORTS]["error"]
    assert error == (f"Ray actor died while processing <corpus>/images/{ABORTS}.png: The actor died unexpectedly "
                     "before finishing this task."), error  # the report names the corpus path redacted
    assert all(images[i]["error"] is None for i in ids if i != ABORTS)
    # Not retried (a dead actor is never restarted): the fault fired once. The next image ran in a new actor's new
    # worker.
    assert len(list(cluster.marks.glob(f"parent-killed-{ABORTS}-*"))) == 1
    assert images["slip_0001"]["judged_on"]["worker_pid"] != images["slip_0006"]["judged_on"]["worker_pid"]
    assert res.report["checks"]["inference"]["failed_images"] == [ABORTS]


@pytest.mark.slow
def test_ray_actor_the_cluster_cannot_place_fails_at_the_image_deadline(cluster: Cluster, tmp_path: Path) -> None:
    with cluster.held():
        res = run_on(cluster, tmp_path, config(tmp_path, results_only=True, image_timeout_s=10), "--ray-slots", "1",
                     *ids_args(SAME[:2]))
    assert res.returncode == 1, res.stderr[-2000:]
    errors = {i["id"]: i["error"] for i in res.report["images"]}
    assert sorted(errors) == SAME[:2]
    for error in errors.values():
        assert error.startswith("main worker: Ray did not start its actor on Ray node 127.0.0.1 (") and error.endswith(
            " within 10 s (image_timeout_s): its CPUs are taken by other work, or it starts processes too slowly"), error


def sigterm_when(cluster: Cluster, cfg: Path, out: Path, ids: list[str], ready: Callable[[], bool], patience_s: float,
                 never: str) -> tuple[int, str]:
    """A one-slot run of `ids` on the cluster, sent SIGTERM once `ready()`: its exit code and stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--config", str(cfg), "--profile", "t", "--out", str(out),
         "--ray-address", cluster.address, "--ray-slots", "1", *ids_args(ids)],
        cwd=ROOT, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + patience_s
        while not ready():
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, never
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stderr


@pytest.mark.slow
def test_ray_sigterm_while_an_actor_waits_for_cpus_ends_the_run_at_once(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with cluster.held():
        # Its actor waits for a CPU (image_timeout_s is 300 s) when the signal comes.
        code, stderr = sigterm_when(cluster, config(tmp_path, results_only=True), out, SAME[:2],
                                    lambda: cluster.actors("PENDING_CREATION") > 0, 120,
                                    "the run's actor never waited for placement")
        assert code == 143, stderr[-2000:]
        assert cluster.actors("PENDING_CREATION") == cluster.actors("ALIVE") == 0  # none left waiting
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["complete"] is False and report["incomplete"]["finished_images"] == []
    assert all(i["error"] == "not run (cancelled by SIGTERM)" for i in report["images"])


@pytest.mark.slow
def test_ray_slot_the_cluster_cannot_place_hands_its_image_to_the_other(cluster: Cluster, tmp_path: Path) -> None:
    # Two slots, one CPU free: one slot's actor runs, the other's waits for a CPU until image_timeout_s, then hands
    # its image back. The first slot has long finished the queue by then: it must still be there to take it.
    with cluster.held(leave=1):
        res = run_on(cluster, tmp_path, config(tmp_path, results_only=True, image_timeout_s=20), "--ray-slots", "2",
                     *ids_args(SAME[:2]))
    assert res.returncode == 0, res.stderr[-2000:]
    images = res.report["images"]
    assert [i["id"] for i in images] == SAME[:2] and all(i["error"] is None for i in images)
    assert len({i["judged_on"]["worker_pid"] for i in images}) == 1  # one worker read both: the other never ran


@pytest.mark.slow
def test_ray_plug_in_backend_named_on_the_driver_reaches_the_actors(cluster: Cluster, tmp_path: Path) -> None:
    # The cluster was started without $OCR_HARNESS_BACKENDS; only the driver names the plug-in (tests/ is on every
    # node's path, as an installed plug-in would be).
    path = write_profiles(tmp_path, profile_toml(engine={"backend": "inkbands"}, executor={"kind": "ray"},
                                                 checks={"repeats": 1, "goldens": False, "accuracy": False}))
    assert PLUGINS_ENV not in cluster.env
    runs = {}
    for kind in ("ray", "local"):
        out = tmp_path / kind
        args = ["run", "--config", str(path), "--profile", "t", "--out", str(out), *ids_args(SAME[:2])]
        args += ["--ray-address", cluster.address] if kind == "ray" else ["--executor", "local"]
        runs[kind] = run_cli(args, env={**cluster.env, PLUGINS_ENV: "dummy_backend"}, out=out)
        assert runs[kind].returncode == 0, runs[kind].stderr[-2000:]
    ray_run = runs["ray"].report
    assert ray_run["stack"]["backend"] == "inkbands" and ray_run["environment"]["executor"]["kind"] == "ray"
    (node,) = ray_run["environment"]["executor"]["nodes"]
    assert {i["judged_on"]["node"] for i in ray_run["images"]} == {node} != {node_id(cluster.env)}
    results = {k: {r["id"]: r["result"] for r in run.results()} for k, run in runs.items()}
    assert sorted(results["ray"]) == SAME[:2] and all(r["lines"] for r in results["ray"].values())
    assert results["ray"] == results["local"]


@pytest.mark.slow
def test_ray_private_cluster_of_one_run_leaves_nothing_behind(tmp_path: Path) -> None:
    # `address = "local"`: the run starts its own cluster, in its own temp dir, and stops and removes it.
    temp = Path(f"/tmp/ohl-{os.getpid()}")  # short, as Ray's socket paths need
    temp.mkdir()
    try:
        env = {**os.environ, "HOME": str(tmp_path / "home"), "TMPDIR": str(temp),
               "OCR_HARNESS_CACHE": str(cache_root(None))}
        out = tmp_path / "out"
        res = run_cli(["run", "--config", str(config(tmp_path, address="local", results_only=True)), "--profile", "t",
                       "--out", str(out), *ids_args(SAME[:2])], env=env, out=out)
        assert res.returncode == 0, res.stderr[-2000:]
        assert res.report["environment"]["executor"]["kind"] == "ray"
        assert len(res.report["environment"]["executor"]["nodes"]) == 1
        assert all(i["error"] is None and i["judged_on"]["worker_pid"] for i in res.report["images"])
        deadline = time.monotonic() + 10  # processes the cluster's own shutdown signalled may take a moment
        while (left := processes_naming(temp)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == [] and list(temp.iterdir()) == []  # no process of that cluster, none of its files
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def processes_naming(path: Path) -> list[str]:
    out = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if str(path).encode() in cmdline.read_bytes():
                out.append(cmdline.parent.name)
    return out


def actor_processes(cluster: Cluster) -> list[str]:
    """The cluster's actor processes of the harness and their workers' Paddle processes."""
    found = []
    for pid in cluster.pids():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cmd.startswith("ray::WorkerHost") or "multiprocessing.spawn" in cmd:
            found.append(f"{pid} {cmd[:80]}")
    return found


@pytest.mark.slow
def test_ray_sigterm_leaves_an_incomplete_report_and_no_actor(cluster: Cluster, tmp_path: Path) -> None:
    ids = [f"slip_{n:04d}" for n in range(6, 12)]
    out = tmp_path / "out"
    temp_before = set(Path(tempfile.gettempdir()).glob("ocr-harness-actor-*"))
    # One slot: the actor starts image 2 only after the run recorded image 1, so its mark means image 1 is done; the
    # actor's processes are seen then, so the check below can see them.
    code, stderr = sigterm_when(cluster, config(tmp_path, "faults:MarkingEngine"), out, ids,
                                lambda: (cluster.marks / ids[1]).exists() and actor_processes(cluster) != [], 600,
                                "no image finished in 10 minutes")
    assert code == 143, stderr[-2000:]
    assert "cancelled by SIGTERM; reports of what finished, marked incomplete" in stderr
    deadline = time.monotonic() + 10
    while (left := actor_processes(cluster)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == []
    # Killed actors clean nothing up: their files are in the cluster's session dir, never left in the temp dir.
    assert set(Path(tempfile.gettempdir()).glob("ocr-harness-actor-*")) == temp_before
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["complete"] is False and report["exit_code"] == 143
    assert report["incomplete"]["reason"] == "cancelled by SIGTERM"
    finished = report["incomplete"]["finished_images"]
    assert ids[0] in finished and len(finished) < len(ids)
    images = {i["id"]: i for i in report["images"]}
    assert all(images[i]["error"] == "not run (cancelled by SIGTERM)" for i in ids if i not in finished)


def listening_sockets(pids: set[int]) -> list[str]:
    """Local addresses of the TCP sockets in LISTEN state that `pids` hold (/proc/net/tcp and tcp6)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    out = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                out.append(fields[1].split(":")[0])
    return out


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


@pytest.mark.slow
def test_ray_cluster_listens_on_loopback_only(cluster: Cluster) -> None:
    addresses = listening_sockets(cluster.pids())
    assert len(addresses) >= 2  # the GCS and the raylet at least
    assert set(addresses) <= LOOPBACK, addresses
    # The planted fault: a socket bound to every interface is seen.
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        assert "00000000" in listening_sockets({os.getpid()})


@pytest.mark.slow
def test_ray_node_with_a_changed_pack_byte_is_refused_by_name(tmp_path: Path,
                                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    dirs = resolve_models(EngineSettings(), ROOT, None)
    pack = dirs.rec.parent
    tampered = tmp_path / "cache"
    shutil.copytree(pack, tampered / pack.name)
    params = tampered / pack.name / "rec" / "inference.pdiparams"
    data = bytearray(params.read_bytes())
    data[len(data) // 2] ^= 1
    params.write_bytes(bytes(data))
    with start_cluster(tmp_path_factory, "two", str(tampered)) as two:
        res = run_on(two, tmp_path, config(tmp_path), *ids_args(SAME[:2]))
    assert res.returncode == 0, res.stderr[-2000:]  # every image judged, on the node whose pack matches
    (refusal,) = [line for line in res.stderr.splitlines() if line.startswith("ocr-harness: refused Ray node")]
    assert refusal.endswith("rec/inference.pdiparams") or "rec/inference.pdiparams" in refusal, refusal
    executor = res.report["environment"]["executor"]
    assert executor["refused_nodes"] == 1 and len(executor["nodes"]) == 1
    assert all(i["error"] is None for i in res.report["images"])


def test_ray_address_where_no_cluster_answers_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that is surely closed: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        res = run_cli(["run", "--config", str(config(tmp_path)), "--profile", "t", "--out", str(tmp_path / "out"),
                       "--ray-address", f"127.0.0.1:{port}", "--id", "slip_0001"], out=tmp_path / "out", timeout=120)
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.strip().splitlines()[-1] == (f"ocr-harness: error: executor.address 127.0.0.1:{port}: no Ray "
                                                   "cluster answers there: Connection refused")


def test_local_run_never_imports_ray(tmp_path: Path) -> None:
    cfg = config(tmp_path, executor="local")
    code = ("import sys; from pathlib import Path; from harness.cli import build_parser; build_parser(); "
            "import harness.run.pipeline.execute; "
            "from harness.checks.registry import catalogue; from harness.config import load_profile; "
            f"p, _ = load_profile(Path({str(cfg)!r}), 't', catalogue()); "
            "assert p.executor.kind == 'local'; print('ray' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.strip() == "False", res.stderr[-2000:]


def test_ray_executor_without_ray_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['ray'] = None; from harness.cli import main; "  # as if it were not installed
            f"sys.exit(main(['run', '--config', {str(config(tmp_path))!r}, '--profile', 't', '--out', "
            f"{str(tmp_path / 'out')!r}, '--id', 'slip_0001']))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.strip().splitlines()[-1] == ('ocr-harness: error: profiles.t.executor.kind: "ray" needs Ray, '
                                                   'which is not installed: pip install "ocr-harness[ray]"')


@pytest.mark.parametrize(("table", "message"), [
    ('kind = "dask"', "profiles.t.executor.kind: must be one of local, ray"),
    ('kind = "ray"\naddress = "cluster"', "profiles.t.executor.address: must be 'local', 'auto' or host:port"),
    ('kind = "ray"\nslots = 0', "profiles.t.executor.slots: must be in 1..4096"),
    ("slots = 2", "profiles.t.executor.slots: is a Ray setting; this profile's executor is local"),
])
def test_executor_settings_are_validated(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "harness.toml"
    path.write_text(f"[profiles.t]\n[profiles.t.executor]\n{table}\n", encoding="utf-8")
    with pytest.raises(UserError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_profile(path, "t", catalogue())
    path.write_text('[profiles.t]\n[profiles.t.executor]\nkind = "ray"\naddress = "10.0.0.7:6379"\nslots = 4\n',
                    encoding="utf-8")
    assert load_profile(path, "t", catalogue())[0].executor.slots == 4
