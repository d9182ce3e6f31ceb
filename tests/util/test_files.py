"""Files are opened as files: what a repository or a corpus hands the harness as `_approval.json`, a golden,
`_meta.json`, harness.toml, a manifest, a label file or a shard's report is a regular file under a size cap,
and a symlink does not lead out of its directory.

Planted on 22c6256: a real FIFO in the file's place hung the reader; a symlink to /dev/zero was read until memory
ran out. Each reader runs in a child with a 1 GiB address-space limit and a 60 s timeout, so the old behaviour
fails the test (MemoryError, timeout) instead of the machine. Now each is one line naming the file, exit 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from harness.util.errors import UserError
from harness.util.files import read_input

CHILD = r"""
import json, resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from harness.cli import main
from harness.util.errors import UserError
kind, where = sys.argv[1], Path(sys.argv[2])
try:
    if kind == "approval":
        from harness.golden.approval import load_approval
        load_approval(where)
    elif kind in ("golden", "meta"):
        from harness.golden.store import GoldenStore
        store = GoldenStore(where.parent, where.name)
        store.meta() if kind == "meta" else store.load("a")
    elif kind == "config":
        from harness.checks import builtin, registry
        from harness.config import load_profile
        registry.load(builtin)
        load_profile(where / "harness.toml", "t", registry.catalogue())
    elif kind == "manifest":
        sys.exit(main(["corpus", "validate", str(where)]))
    elif kind == "label":
        sys.exit(main(["corpus", "import", "--from", "ppocrlabel", str(where / "Label.txt"), "--out",
                       str(where / "out")]))
    elif kind == "shard":
        sys.exit(main(["report", "merge", str(where), "--out", str(where.parent / "merged")]))
except UserError as e:
    print(f"ocr-harness: error: {e}", file=sys.stderr)
    sys.exit(2)
sys.exit(0)
"""

# kind -> (directory the reader is given, relative to tmp; the file planted in it)
PLACES = {
    "approval": ("golden/p", "_approval.json"),
    "golden": ("golden/p", "a.json"),
    "meta": ("golden/p", "_meta.json"),
    "config": ("repo", "harness.toml"),
    "manifest": ("corpus", "manifest.jsonl"),
    "label": ("labels", "Label.txt"),
    "shard": ("shard", "report.json"),
}


def _run(kind: str, directory: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", CHILD, kind, str(directory)], capture_output=True, text=True,
                          timeout=60, env=env, cwd=directory)


def _plant(tmp_path: Path, kind: str, what: str) -> tuple[Path, Path]:
    rel, name = PLACES[kind]
    directory = tmp_path / rel
    directory.mkdir(parents=True)
    target = directory / name
    if what == "fifo":
        os.mkfifo(target)
    elif what == "dev-zero":
        target.symlink_to("/dev/zero")
    elif what == "outside":
        outside = tmp_path / "elsewhere.json"
        outside.write_text("{}", encoding="utf-8")
        target.symlink_to(outside)
    return directory, target


@pytest.mark.parametrize("what", ["fifo", "dev-zero", "outside"])
@pytest.mark.parametrize("kind", sorted(PLACES))
def test_a_special_file_or_escaping_symlink_is_one_line_exit_2(tmp_path: Path, kind: str, what: str) -> None:
    directory, target = _plant(tmp_path, kind, what)
    res = _run(kind, directory)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    # `corpus validate` lists each problem on stdout, then its one error line
    named = lines + res.stdout.splitlines()
    assert "Traceback" not in res.stderr and any(str(target) in line for line in named), res.stderr
    problem = {"fifo": "a FIFO, not a regular file", "dev-zero": "outside", "outside": "outside"}[what]
    assert any(problem in line and str(target) in line for line in named), res.stderr
    assert len([line for line in lines if line.startswith("ocr-harness: error:")]) == 1, res.stderr


def test_a_symlink_inside_its_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text('{"a": 1}', encoding="utf-8")
    (tmp_path / "link.json").symlink_to("real.json")
    assert read_input(tmp_path / "link.json", 100) == b'{"a": 1}'


def test_a_character_device_in_the_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"/dev/null: a character device, not a regular file"):
        read_input(Path("/dev/null"), 100, within=Path("/dev"))


def test_a_file_over_the_cap_is_refused_and_one_at_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b"x" * 101)
    with pytest.raises(UserError, match=r"big.json: 101 bytes, larger than the 100 this file may hold"):
        read_input(path, 100)
    path.write_bytes(b"x" * 100)
    assert read_input(path, 100) == b"x" * 100


def test_a_missing_file_is_left_to_the_caller(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_input(tmp_path / "none.json", 100)
