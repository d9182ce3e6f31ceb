"""The benchmarks must not rot between bench runs: their helpers work, the extra pins the pytest-benchmark range that
was tried, and `tox -e bench` runs as tox.ini writes it, on one image, into an output folder that does not exist
yet (a fresh clone). Timings are recorded, never asserted here."""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import ROOT
from packaging.requirements import Requirement

from harness.execution.perf import peak_rss_bytes

TESTS = Path(__file__).resolve().parents[1]
# Not timed here: whole runs, covered by the end-to-end tests.
SMOKE_ARGS = ["-p", "no_skips", "-p", "no:cacheprovider", "-q",
              "-k", "not test_release_run and not test_nightly and not test_speed_false_alarms"]


def test_peak_rss_of_this_process_and_of_no_process() -> None:
    assert peak_rss_bytes() > 1 << 20
    assert peak_rss_bytes(2**31 - 1) is None  # above any Linux pid


def test_the_test_extra_allows_only_the_pytest_benchmark_versions_tried() -> None:
    """Tried: the bench env's commands on one image with 5.3.1 under pytest 8.4.2 and 9.2.0 (the test below), and
    one benchmark with 5.2.3 under pytest 8.4.2 (it opens --benchmark-json while parsing the command line, so
    tox.ini's commands_pre makes the folder first, and hands conftest an open file). Up to 5.3.0 pytest-benchmark
    reads `Node._nodeid`, which pytest 9 (allowed by `pytest>=8`) no longer has: every benchmark errors. So the
    extra allows 5.3.1 up to the next major, nothing older."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    spec = next(r for r in map(Requirement, extra["test"]) if r.name == "pytest-benchmark").specifier
    probes = ("4.0.0", "5.2.3", "5.3.0", "5.3.1", "6.0.0")
    assert {v for v in probes if spec.contains(v)} == {"5.3.1"}, spec
    assert spec.contains(version("pytest-benchmark")), "the installed pytest-benchmark is outside the extra"


def test_benchmark_json_path_whatever_pytest_benchmark_made_of_it(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("bench_conftest", ROOT / "benchmarks" / "conftest.py")
    assert spec is not None and spec.loader is not None
    bench_conftest = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_conftest", bench_conftest)  # its dataclasses look their module up
    spec.loader.exec_module(bench_conftest)
    target = tmp_path / "out" / "bench.json"
    assert bench_conftest.benchmark_json_path(target) == target  # 5.3+: a Path (which has a .name too)
    assert bench_conftest.benchmark_json_path(str(target)) == target
    with open(tmp_path / "opened.json", "wb") as fh:  # up to 5.2: argparse.FileType opened it already
        assert bench_conftest.benchmark_json_path(fh) == tmp_path / "opened.json"
    assert bench_conftest.benchmark_json_path(None) is None


def bench_commands(out: Path, posargs: list[str]) -> list[list[str]]:
    """[testenv:bench] commands_pre + commands of tox.ini, expanded as tox would with OCR_HARNESS_OUT=out."""
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini", encoding="utf-8")
    env = tox["testenv:bench"]
    lines = [line.strip() for key in ("commands_pre", "commands") for line in env.get(key, "").splitlines()]
    commands = []
    for line in filter(None, lines):
        argv: list[str] = []
        for token in shlex.split(line):
            if token == "{posargs}":
                argv += posargs
                continue
            token = token.replace("{env:OCR_HARNESS_OUT:out}", str(out))
            assert "{" not in token, f"tox.ini [testenv:bench]: substitution this test does not know: {token}"
            argv.append(token)
        program = {"python": [sys.executable], "pytest": [sys.executable, "-m", "pytest"]}[argv[0]]
        commands.append(program + argv[1:])
    return commands


def test_bench_commands_are_read_from_tox_ini(tmp_path: Path) -> None:
    commands = bench_commands(tmp_path / "out", ["-k", "x y"])
    pytest_run = commands[-1]
    assert pytest_run[:4] == [sys.executable, "-m", "pytest", "benchmarks"]
    assert pytest_run[pytest_run.index("--benchmark-json") + 1] == str(tmp_path / "out" / "bench.json")
    assert pytest_run[-2:] == ["-k", "x y"]


@pytest.mark.slow
def test_tox_bench_runs_on_one_image_into_a_missing_folder(tmp_path: Path) -> None:
    """Every benchmark, timed, one round on one slip; bench.json lists every one with its extra_info."""
    out = tmp_path / "fresh-clone" / "out"  # neither exists: as `out/` in a fresh clone
    # Not this pytest's own variables either: under xdist they would switch pytest-benchmark's timing off.
    env = {k: v for k, v in os.environ.items() if k != "OCR_HARNESS_OUT" and not k.startswith("PYTEST_")}
    env.update(OCR_HARNESS_BENCH_IMAGES="1", OCR_HARNESS_BENCH_ROUNDS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    collected = subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "--collect-only", *SMOKE_ARGS],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    expected = {line for line in collected.stdout.splitlines() if "::" in line}
    assert len(expected) >= 8, collected.stdout[-2000:]
    for argv in bench_commands(out, SMOKE_ARGS):
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False)
        assert proc.returncode == 0, f"{shlex.join(argv)}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    data = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    assert {b["fullname"] for b in data["benchmarks"]} == expected
    for bench in data["benchmarks"]:
        assert bench["stats"]["rounds"] >= 1 and bench["stats"]["median"] > 0, bench["fullname"]
        assert bench["extra_info"].get("images", 1) == 1, bench["fullname"]
