"""`ocr-harness init`: a working, commented starting point that never overwrites; its tox envs and GitHub
workflows run commands the CLI accepts, and the workflows conform to GitHub's schema (validated offline)."""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import __version__
from harness.checks.registry import catalogue
from harness.cli import build_parser, main
from harness.config import load_profile
from harness.util.errors import UserError

WORKFLOWS = ("ocr-release.yml", "ocr-nightly.yml", "ocr-golden-refresh.yml")
EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    target = tmp_path / "their-repo"
    assert main(["init", str(target)]) == 0
    return target


def test_init_writes_the_starting_point(repo: Path) -> None:
    files = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())
    assert files == [".github/workflows/ocr-golden-refresh.yml", ".github/workflows/ocr-nightly.yml",
                     ".github/workflows/ocr-release.yml", "datasets/README.md", "datasets/slips/manifest.jsonl",
                     "golden/README.md", "harness.toml", "requirements-ocr.txt", "tests/test_ocr_golden.py",
                     "tox.ini"]
    assert (repo / "datasets/slips/manifest.jsonl").read_text(encoding="utf-8") == ""
    for name in ("default", "release", "nightly", "bench"):
        profile, base = load_profile(repo / "harness.toml", name, catalogue())
        assert base == repo and profile.corpus == "datasets/slips" and profile.golden_name == "default"
    nightly, _ = load_profile(repo / "harness.toml", "nightly", catalogue())
    assert nightly.checks.cross_process and nightly.checks.batch_paths and nightly.checks.repeats == 5
    assert f"ocr-harness=={__version__}" in (repo / "requirements-ocr.txt").read_text(encoding="utf-8")
    assert "@version@" not in "".join(p.read_text(encoding="utf-8") for p in repo.rglob("*") if p.is_file())


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tox.ini").write_text("[tox]\n# mine\n", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 2
    assert "would overwrite tox.ini; nothing written" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tox.ini"]
    assert main(["init", str(tmp_path), "--skip-existing"]) == 0
    assert (tmp_path / "tox.ini").read_text(encoding="utf-8") == "[tox]\n# mine\n"
    assert (tmp_path / "harness.toml").is_file()
    assert main(["init", str(tmp_path)]) == 2  # a second init touches nothing either
    assert "and 5 more" in capsys.readouterr().err


def _tree(root: Path) -> dict[str, str]:
    """Every entry under root (symlinks as links, not followed) -> what it is."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = f"-> {p.readlink()}" if p.is_symlink() else ("dir" if p.is_dir() else p.read_text(encoding="utf-8"))
    return out


@pytest.mark.parametrize("plant", ["tests-is-a-file", "dangling-symlink", "symlinked-dir", "symlink-to-file"])
def test_init_checks_everything_before_writing_anything(tmp_path: Path, plant: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "repo"
    target.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.toml").write_text("mine\n", encoding="utf-8")
    if plant == "tests-is-a-file":  # sorted after every other file init writes but two
        (target / "tests").write_text("a file\n", encoding="utf-8")
        expected = "tests: exists and is not a directory"
    elif plant == "dangling-symlink":
        (target / "harness.toml").symlink_to(elsewhere / "gone.toml")
        expected = "harness.toml: is a symlink; init never replaces one"
    elif plant == "symlink-to-file":
        (target / "harness.toml").symlink_to(elsewhere / "mine.toml")
        expected = "harness.toml: is a symlink; init never replaces one"
    else:
        (target / "golden").symlink_to(elsewhere)
        expected = "golden: is a symlink; init never writes through one"
    before, outside = _tree(target), _tree(elsewhere)
    assert main(["init", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err and err.endswith("nothing written"), err
    assert main(["init", str(target), "--skip-existing"]) == 2  # skipping existing files does not skip this
    assert _tree(target) == before and _tree(elsewhere) == outside


def test_init_next_steps_never_recommend_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "repo")]) == 0
    out = capsys.readouterr().out
    assert "corpus import" in out and "--force" not in out


def _substitute(command: str) -> str:
    """A shell line as the runner would see it, expressions filled with plausible values."""
    values = {"matrix.k": "2", "inputs.mode": "failed", "github.run_id": "1"}
    return EXPRESSION.sub(lambda m: values[m.group(1)], command)


def harness_commands(script: str) -> list[list[str]]:
    """Every `ocr-harness ...` invocation in a run script, as argv; each must parse with the real CLI parser."""
    out = []
    for line in script.splitlines():
        argv = shlex.split(_substitute(line))
        if argv[:1] == ["ocr-harness"]:
            args = build_parser().parse_args(argv[1:])  # UserError on an unknown flag or a bad value
            assert callable(args.func)
            out.append(argv[1:])
    return out


def _workflow(repo: Path, name: str) -> dict[Any, Any]:
    return yaml.safe_load((repo / ".github" / "workflows" / name).read_text(encoding="utf-8"))


def _runs(job: dict[str, Any]) -> list[list[str]]:
    return [argv for step in job["steps"] if "run" in step for argv in harness_commands(step["run"])]


def _uses(job: dict[str, Any]) -> list[str]:
    return [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]


def test_release_workflow_gates_pull_requests(repo: Path) -> None:
    wf = _workflow(repo, "ocr-release.yml")
    assert "pull_request" in wf[True]  # YAML 1.1 reads the key `on` as True
    (job,) = wf["jobs"].values()
    assert _runs(job) == [["run", "--profile", "release", "--out", "out/release"]]
    assert "actions/upload-artifact" in _uses(job)


def test_nightly_fans_out_shards_and_merges_every_one(repo: Path) -> None:
    wf = _workflow(repo, "ocr-nightly.yml")
    assert wf[True]["schedule"][0]["cron"]
    shard, merge = wf["jobs"]["shard"], wf["jobs"]["merge"]
    ks = shard["strategy"]["matrix"]["k"]
    (run,) = _runs(shard)
    assert run[:3] == ["run", "--profile", "nightly"] and run[run.index("--shard") + 1] == f"2/{len(ks)}"
    step = next(s for s in shard["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert step["with"]["path"] == "shard-${{ matrix.k }}" == step["with"]["name"]
    assert merge["needs"] == "shard" and "cancelled" in merge["if"]
    (merged,) = _runs(merge)
    assert merged[:2] == ["report", "merge"]
    assert merged[2:2 + len(ks)] == [f"shard-{k}" for k in ks]  # every shard, and only those
    assert "actions/download-artifact" in _uses(merge)


def test_golden_refresh_is_manual_uploads_review_and_opens_a_pull_request(repo: Path) -> None:
    wf = _workflow(repo, "ocr-golden-refresh.yml")
    assert list(wf[True]) == ["workflow_dispatch"]
    (job,) = wf["jobs"].values()
    dry, apply = _runs(job)
    assert dry[:2] == ["golden", "refresh"] and "--yes" not in dry and "--yes" in apply
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "out/golden-review.md"
    pr = next(s for s in job["steps"] if s.get("uses", "").startswith("peter-evans/create-pull-request"))
    assert pr["with"]["body-path"] == "out/golden-review.md" and pr["with"]["add-paths"] == "golden/"
    assert wf["permissions"] == {"contents": "write", "pull-requests": "write"}


def test_tox_envs_run_commands_the_cli_accepts(repo: Path) -> None:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(repo / "tox.ini", encoding="utf-8")
    envs = {s.removeprefix("testenv:") for s in ini.sections() if s.startswith("testenv:")}
    assert envs == {"release", "nightly", "golden-refresh", "bench"}
    for env in envs:
        command = ini[f"testenv:{env}"]["commands"]
        command = re.sub(r"\{env:[^:}]+:([^}]*)\}", r"\1", command)
        command = re.sub(r"\{posargs(?::([^}]*))?\}", lambda m: m.group(1) or "", command)
        (argv,) = harness_commands(command)
        if "--profile" in argv:
            load_profile(repo / "harness.toml", argv[argv.index("--profile") + 1], catalogue())


def test_a_command_the_cli_rejects_is_caught(repo: Path) -> None:
    with pytest.raises(UserError, match="unrecognized arguments: --shards"):
        harness_commands("ocr-harness run --profile nightly --shards ${{ matrix.k }}/4")


def _check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run([str(exe), "--builtin-schema", "vendor.github-workflows", *map(str, files)],
                          capture_output=True, text=True, check=False, timeout=300)


def test_workflows_conform_to_githubs_schema_offline(repo: Path, tmp_path: Path) -> None:
    files = [repo / ".github" / "workflows" / name for name in WORKFLOWS]
    proc = _check_jsonschema(*files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Planted: a job without runs-on and a misspelt trigger; the same validator must reject it.
    broken = tmp_path / "broken.yml"
    text = files[0].read_text(encoding="utf-8").replace("    runs-on: ubuntu-24.04\n", "")
    broken.write_text(text.replace("  pull_request:\n", "  pull_requests:\n"), encoding="utf-8")
    proc = _check_jsonschema(broken)
    assert proc.returncode == 1 and "broken.yml" in proc.stdout, proc.stdout + proc.stderr


def test_templates_are_package_data() -> None:
    from harness.cli.init_cmd import template_files

    assert {f.rel.as_posix() for f in template_files()} >= {".github/workflows/ocr-nightly.yml", "harness.toml"}
