"""README's command 2, `.ci/setup`, `.ci/run` and tox say the same thing: the set-up a newcomer runs is the one CI
runs, the pytest command is the same, and the system packages README names are the ones the set-up installs."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from conftest import ROOT

SETUP = "bash .ci/setup"
PYTEST = [".venv/bin/python", "-m", "pytest"]
CI_ONLY = ("-p", "no:cacheprovider", "--junitxml")  # CI's own options on top of README's command


def readme_commands() -> dict[str, str]:
    """The numbered commands of README's "The two commands" block: {"1": line, "2": line}."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## The two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    out, number = {}, None
    for line in block.splitlines():
        if m := re.match(r"# (\d)\. ", line):
            number = m.group(1)
        elif line.strip() and number is not None:
            out[number] = line.strip()
            number = None
    return out


def pytest_args(line: str) -> list[str]:
    argv = shlex.split(line)
    assert argv[:3] == PYTEST, line
    return argv[3:]


def strip_ci_only(args: list[str]) -> list[str]:
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "-p" and not skip:
            skip = True  # -p no:cacheprovider
        elif not a.startswith(("--junitxml", "--durations")):  # CI's own report options
            out.append(a)
    return out


def test_readme_command_2_is_the_setup_then_the_suite() -> None:
    setup, suite = (part.strip() for part in readme_commands()["2"].split("&&"))
    assert setup == SETUP
    assert pytest_args(suite) == ["-n", "2", "--dist", "loadfile"]


def test_ci_runs_the_same_setup_and_the_same_pytest_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert any(line.strip().startswith(SETUP) for line in ci.splitlines())
    suite = next(line.strip() for line in ci.splitlines() if line.strip().startswith(" ".join(PYTEST)))
    _, readme_suite = readme_commands()["2"].split("&&")
    assert strip_ci_only(pytest_args(suite)) == pytest_args(readme_suite.strip())
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    assert tox["testenv"]["commands"].split() == ["pytest", *pytest_args(readme_suite.strip()), "{posargs}"]


def test_setup_installs_the_packages_readme_names_and_is_valid_bash() -> None:
    setup = (ROOT / ".ci" / "setup").read_text(encoding="utf-8")
    packages = re.search(r"^SYSTEM_PACKAGES=\(([^)]*)\)", setup, re.M)
    assert packages is not None
    readme = (ROOT / "README.md").read_text(encoding="utf-8").split("## The two commands", 1)[1].split("\n## ", 1)[0]
    for pkg in packages.group(1).split():
        assert f"`{pkg}`" in readme, pkg
    assert subprocess.run(["bash", "-n", str(ROOT / ".ci" / "setup")], check=False).returncode == 0
    assert subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")], check=False).returncode == 0


def test_a_missing_package_without_root_or_sudo_is_one_line(tmp_path: Path) -> None:
    """The refusal path of the set-up, run for real as a non-root user would see it: no root, no sudo, a
    package missing -> one line naming it, exit 1, nothing installed."""
    fake = tmp_path / "bin"
    fake.mkdir()
    # A PATH of only what the script needs to get there: dpkg-query says nothing is installed, id says "not
    # root", and there is no sudo.
    (fake / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")
    for tool in fake.iterdir():
        tool.chmod(0o755)
    for tool in ("dirname", "grep"):
        (fake / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    env = {"PATH": str(fake), "HOME": str(tmp_path)}
    proc = subprocess.run([shutil.which("bash") or "/bin/bash", str(ROOT / ".ci" / "setup")], env=env, capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "setup: need fonts-noto-cjk chromium (Debian packages) and neither root nor sudo is available: install "
        "them, then rerun"]


def readme_workflows() -> list[tuple[str, str]]:
    """README's Workflows table: (tox cell, plain command) of every row that names a tox env."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Workflows", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and "tox -e" in cells[1]:
            rows.append((cells[1], cells[2]))
    return rows


def tox_command(env: str) -> str:
    """The command tox runs for `env`, with the defaults of `{env:NAME:default}` and no `{posargs}`."""
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    section = next((s for s in tox.sections() if re.fullmatch(rf"testenv:{env}(\{{[^}}]*\}})?", s)), "testenv")
    command = tox[section]["commands"].strip().replace("{envname}", env)
    command = re.sub(r"\{env:[A-Z_]+:([^}]*)\}", r"\1", command)
    return " ".join(command.replace("{posargs}", "").split())


def plain(command: str) -> str:
    """A README command as tox would run it: the part after the last `&&`, no VAR=value prefix, no .venv/bin/."""
    argv = shlex.split(command.split("&&")[-1])
    while argv and re.fullmatch(r"[A-Z_]+=.*", argv[0]):
        argv.pop(0)
    argv = [a.removeprefix(".venv/bin/") for a in argv]
    if argv[:3] == ["python", "-m", "pytest"]:
        argv = argv[2:]
    return " ".join(argv)


def test_every_workflow_row_gives_the_plain_command_tox_runs() -> None:
    """Each tox env of README's Workflows table sits beside the command tox.ini runs for it, so a reader without
    tox runs the same thing (extra arguments after the tox cell's `--` are the plain command's tail)."""
    rows = readme_workflows()
    assert len(rows) >= 6, rows
    for tox_cell, plain_cell in rows:
        m = re.match(r"`(?:[A-Z_]+=\S+ )?\.venv/bin/tox -e ([\w-]+)(?: -- ([^`]*))?`", tox_cell)
        assert m, tox_cell
        env, posargs = m.group(1), (m.group(2) or "").split()
        expected = " ".join([tox_command(env), *posargs])
        assert plain(plain_cell.split("`")[1]) == expected, (env, plain_cell)
