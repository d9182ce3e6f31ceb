"""Shared fixtures. The expensive one is `smoke_run`: one real `ocr-harness run` on the committed smoke subset,
with every network connection made to fail, reused by every test that only reads its outputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.backends import builtin as builtin_backends
from harness.backends import registry as backend_registry
from harness.checks import builtin, registry
from harness.model.report import RunReport

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "datasets" / "bank_slips"
if str(ROOT) not in sys.path:  # tools/ (the report screenshots' sample run), last: an installed harness comes first
    sys.path.append(str(ROOT))
registry.load(builtin)  # the suite is a composition root too: tests below the CLI see every check
backend_registry.load(builtin_backends)  # and every backend
pytest_plugins = ["harness.pytest_plugin", "no_skips", "checkout_guard"]  # no_skips: a skipped test fails the
# suite; checkout_guard: a test that writes inside the checkout fails it
# Hypothesis keeps its example database and constants cache in ./.hypothesis unless told otherwise: the fuzz tests
# keep theirs in the temp dir, so the checkout stays the user's (checkout_guard).
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = os.path.join(tempfile.gettempdir(),
                                                             f"ocr-harness-hypothesis-{os.getuid()}")


def typed(report: dict[str, Any] | RunReport) -> RunReport:
    """A report (report.json as a dict, or the typed report) as the renderers read it: the typed run report,
    ordered by the catalogue."""
    if isinstance(report, RunReport):
        return report.laid_out(registry.layout())
    return RunReport.from_dict(report, registry.layout())

NO_NETWORK_SITECUSTOMIZE = '''
import os, socket
_log = os.environ["OCR_HARNESS_TEST_NET_LOG"]
def _refuse(kind, target):
    with open(_log, "a") as fh:
        fh.write(f"{os.getpid()} {kind} {target!r}\\n")
    raise OSError("network disabled by the test suite")
_connect = socket.socket.connect
def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse("connect", address)
    return _connect(self, address)
socket.socket.connect = connect
socket.socket.connect_ex = lambda self, address: connect(self, address)
def getaddrinfo(host, *args, **kwargs):
    _refuse("getaddrinfo", host)
socket.getaddrinfo = getaddrinfo
socket.create_connection = lambda address, *a, **k: _refuse("create_connection", address)
'''


@dataclass(frozen=True)
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    out: Path

    @property
    def report(self) -> dict[str, Any]:
        return json.loads((self.out / "report.json").read_text(encoding="utf-8"))

    def results(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.out / "results.jsonl").read_text(encoding="utf-8").splitlines()]


# Commands that write into ./out unless told otherwise: a test that names no --out gets a fresh temp dir, so the
# suite never writes into the checkout (checkout_guard fails a session that does).
WRITES_OUT = (("run",), ("golden", "refresh"), ("speed", "baseline"))


def run_cli(args: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None, out: Path | None = None,
            timeout: float = 900) -> CliRun:
    if out is None and "--out" not in args and any(tuple(args[:len(c)]) == c for c in WRITES_OUT):
        out = Path(tempfile.mkdtemp(prefix="ocr-harness-test-out-"))
        args = [*args, "--out", str(out)]
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    return CliRun(proc.returncode, proc.stdout, proc.stderr, out or cwd / "out")


@pytest.fixture(scope="session")
def offline_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """PYTHONPATH with a sitecustomize that makes every AF_INET/AF_INET6 connection and DNS lookup fail and logs it;
    spawned workers inherit it."""
    d = tmp_path_factory.mktemp("nonet")
    (d / "sitecustomize.py").write_text(NO_NETWORK_SITECUSTOMIZE)
    log = d / "attempts.log"
    log.touch()
    path = os.pathsep.join([str(d), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {"PYTHONPATH": path, "OCR_HARNESS_TEST_NET_LOG": str(log)}


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory, offline_env: dict[str, str]) -> CliRun:
    out = tmp_path_factory.mktemp("smoke-out")
    return run_cli(["run", "--profile", "release", "--out", str(out), "--html"], env=offline_env, out=out)


def plant_golden_digit(tmp_path: Path, image_id: str) -> tuple[Path, int, str, str]:
    """A copy of the committed goldens with one digit changed in the first line of `image_id` that has one.

    Returns (golden root, line index, original text, edited text)."""
    goldens = tmp_path / "golden"
    shutil.copytree(ROOT / "golden", goldens)
    path = goldens / "default" / f"{image_id}.json"
    text = path.read_text(encoding="utf-8")
    lines = json.loads(text)["lines"]
    index = next(i for i, line in enumerate(lines) if any(c.isdigit() for c in line["text"]))
    original = lines[index]["text"]
    digit = next(c for c in original if c.isdigit())
    edited = original.replace(digit, str((int(digit) + 1) % 10), 1)
    path.write_text(text.replace(json.dumps(original, ensure_ascii=False), json.dumps(edited, ensure_ascii=False), 1),
                    encoding="utf-8")
    return goldens, index, original, edited
