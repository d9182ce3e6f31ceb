"""`ocr-harness init`: a working, commented starting point that never overwrites; its tox envs and GitHub
workflows run commands the CLI accepts, and the workflows conform to GitHub's schema (validated offline)."""

from __future__ import annotations

import configparser
import copy
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from harness import __version__
from harness.checks.registry import catalogue
from harness.cli import build_parser, main
from harness.config import load_profile
from harness.run.shards.ci_systems import github_matrix
from harness.run.shards.from_env import detect
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
    assert nightly.checks.get("cross_process") and nightly.checks.get("batch_paths") and nightly.checks.repeats == 5
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
    values = {"matrix.k": "2", "matrix.n": "4", "inputs.mode": "failed", "github.run_id": "1"}
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
    """The job's `ocr-harness` commands, each step's environment (job and step `env`) filled in. No expression is
    ever inside a run script: values such as a matrix from a repository variable or a dispatch input reach the
    shell as environment variables (data), never as script text."""
    out = []
    for step in job["steps"]:
        if "run" not in step:
            continue
        assert not EXPRESSION.search(step["run"]), step["run"]
        script = step["run"]
        for name, value in {**job.get("env", {}), **step.get("env", {})}.items():
            script = script.replace(f"${name}", _substitute(str(value)))
        out += harness_commands(script)
    return out


def _uses(job: dict[str, Any]) -> list[str]:
    return [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]


def test_release_workflow_gates_pull_requests(repo: Path) -> None:
    wf = _workflow(repo, "ocr-release.yml")
    assert "pull_request" in wf[True]  # YAML 1.1 reads the key `on` as True
    (job,) = wf["jobs"].values()
    assert _runs(job) == [["run", "--profile", "release", "--out", "out/release"]]
    assert "actions/upload-artifact" in _uses(job)


def _default_matrix(expression: str) -> dict[str, list[int]]:
    """The fallback of `fromJSON(vars.OCR_NIGHTLY_MATRIX || '<json>')`: the matrix without the variable."""
    m = re.fullmatch(r"\$\{\{ fromJSON\(vars\.OCR_NIGHTLY_MATRIX \|\| '(.+)'\) \}\}", expression)
    assert m, expression
    return json.loads(m.group(1))


def test_nightly_fans_out_shards_and_merges_every_one(repo: Path) -> None:
    wf = _workflow(repo, "ocr-nightly.yml")
    assert wf[True]["schedule"][0]["cron"]
    shard, merge = wf["jobs"]["shard"], wf["jobs"]["merge"]
    matrix = _default_matrix(shard["strategy"]["matrix"])
    # What `plan --engine github` prints for 4 shards, and each job's OCR_HARNESS_SHARD names its own shard.
    assert matrix == github_matrix(4)
    shard_var = shard["env"]["OCR_HARNESS_SHARD"]
    seen = [detect({"OCR_HARNESS_SHARD": shard_var.replace("${{ matrix.k }}", str(k))
                    .replace("${{ matrix.n }}", str(n))}).shard for k in matrix["k"] for n in matrix["n"]]
    assert seen == [(k, 4) for k in range(1, 5)]
    (run,) = _runs(shard)
    assert run[:3] == ["run", "--profile", "nightly"] and run[run.index("--shard") + 1] == "auto"
    assert run[run.index("--out") + 1] == "shard-2"  # matrix.k = 2, through SHARD_DIR
    step = next(s for s in shard["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert step["with"]["path"] == "shard-${{ matrix.k }}" == step["with"]["name"]
    assert merge["needs"] == "shard" and "cancelled" in merge["if"]
    (merged,) = _runs(merge)
    assert merged[:3] == ["report", "merge", "shard-*"]  # every shard the matrix made (merge refuses a gap)
    download = next(s for s in merge["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"]["pattern"] == "shard-*"


def test_golden_refresh_is_manual_uploads_review_and_opens_a_pull_request(repo: Path) -> None:
    wf = _workflow(repo, "ocr-golden-refresh.yml")
    assert list(wf[True]) == ["workflow_dispatch"]
    (job,) = wf["jobs"].values()
    dry, apply = _runs(job)
    assert dry[:2] == ["golden", "refresh"] and "--yes" not in dry and "--yes" in apply
    assert "--failed" in dry and "--failed" in apply  # the dispatch input, through MODE
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


def _check_jsonschema(*files: Path, schema: str = "vendor.github-workflows") -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run([str(exe), "--builtin-schema", schema, *map(str, files)],
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


# --- GitLab and Kubernetes (init --ci) --------------------------------------------------------------------------

@pytest.fixture
def every_ci(tmp_path: Path) -> Path:
    target = tmp_path / "their-repo"
    assert main(["init", str(target), "--ci", "github,gitlab,k8s"]) == 0
    return target


def test_ci_option_chooses_the_engines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "a"), "--ci", "gitlab,k8s"]) == 0
    files = {p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").rglob("*") if p.is_file()}
    assert {".gitlab-ci.yml", "k8s/ocr-nightly-shards.yaml", "k8s/ocr-nightly-merge.yaml", "harness.toml"} <= files
    assert not any(f.startswith(".github/") for f in files)
    assert main(["init", str(tmp_path / "b"), "--ci", "none"]) == 0
    assert not any(p.suffix in (".yml", ".yaml") for p in (tmp_path / "b").rglob("*"))
    capsys.readouterr()
    assert main(["init", str(tmp_path / "c"), "--ci", "github,jenkins"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--ci 'github,jenkins': expected a comma-separated list of github, gitlab, k8s, slurm, or none" in err
    assert not (tmp_path / "c").exists()


def test_gitlab_file_conforms_to_gitlabs_schema_offline(every_ci: Path, tmp_path: Path) -> None:
    path = every_ci / ".gitlab-ci.yml"
    proc = _check_jsonschema(path, schema="vendor.gitlab-ci")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Planted: `parallel` above GitLab's 200 and a misspelt keyword; the same validator must reject them.
    broken = tmp_path / "broken-gitlab-ci.yml"
    text = path.read_text(encoding="utf-8").replace("  parallel: 4\n", "  parallel: 201\n")
    broken.write_text(text.replace("  script:\n", "  scripts:\n", 1), encoding="utf-8")
    proc = _check_jsonschema(broken, schema="vendor.gitlab-ci")
    assert proc.returncode == 1 and "broken-gitlab-ci.yml" in proc.stdout, proc.stdout + proc.stderr


def _gitlab_commands(job: dict[str, Any], env: dict[str, str]) -> list[list[str]]:
    script = "\n".join(job["script"])
    for name, value in env.items():
        script = script.replace(f"${name}", value)
    return harness_commands(script)


def test_gitlab_nightly_runs_parallel_shards_and_merges_them(every_ci: Path) -> None:
    ci = yaml.safe_load((every_ci / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    shard, merge = ci["ocr-nightly-shard"], ci["ocr-nightly-merge"]
    n = shard["parallel"]
    assert n == 4 and shard["artifacts"]["when"] == "always"
    outs = set()
    for index in range(1, n + 1):  # what GitLab sets in each of the parallel jobs
        env = {"CI_NODE_INDEX": str(index), "CI_NODE_TOTAL": str(n)}
        assert detect(env).shard == (index, n)
        (run,) = _gitlab_commands(shard, env)
        assert run[:3] == ["run", "--profile", "nightly"] and run[run.index("--shard") + 1] == "auto"
        outs.add(run[run.index("--out") + 1])
        assert shard["artifacts"]["paths"] == ["shard-$CI_NODE_INDEX/"]
    assert outs == {f"shard-{k}" for k in range(1, n + 1)}
    assert merge["needs"] == ["ocr-nightly-shard"] and merge["rules"][0]["when"] == "always"
    (merged,) = _gitlab_commands(merge, {})
    assert merged[:3] == ["report", "merge", "shard-*"]
    (release,) = _gitlab_commands(ci["ocr-release"], {})
    assert release[:3] == ["run", "--profile", "release"]


def _k8s_docs(repo: Path, name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((repo / "k8s" / name).read_text(encoding="utf-8")) if d]


def _pod_command(job: dict[str, Any]) -> str:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["/bin/sh", "-c"]
    (script,) = container["args"]
    return script


def test_k8s_nightly_is_an_indexed_job_whose_completions_equal_the_total(every_ci: Path) -> None:
    docs = _k8s_docs(every_ci, "ocr-nightly-shards.yaml")
    claim = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # pods on several nodes write their shards
    job = next(d for d in docs if d["kind"] == "Job")
    spec = job["spec"]
    assert (job["apiVersion"], spec["completionMode"]) == ("batch/v1", "Indexed")
    (container,) = spec["template"]["spec"]["containers"]
    total = {e["name"]: e["value"] for e in container["env"]}["OCR_HARNESS_SHARD_TOTAL"]
    assert spec["completions"] == int(total) == spec["parallelism"] == 4
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    pod = [*container["command"], _pod_command(job)]  # the pod's shell, run for real
    outs = set()
    for index in range(spec["completions"]):  # what Kubernetes sets in each pod
        env = {"JOB_COMPLETION_INDEX": str(index), "OCR_HARNESS_SHARD_TOTAL": total}
        assert detect(env).shard == (index + 1, 4)
        proc, (run,) = _run_with_shim(every_ci, pod, env)
        assert proc.returncode == 0, proc.stderr
        assert run[:3] == ["run", "--profile", "nightly"] and run[run.index("--shard") + 1] == "auto"
        outs.add(run[run.index("--out") + 1])
    assert outs == {f"/reports/shard-{k}" for k in range(1, 5)}
    # A regression (exit 1) leaves the verdict to the merge; anything worse fails the pod.
    for code, ok in ((0, True), (1, True), (2, False), (3, False), (143, False)):
        proc, _ = _run_with_shim(every_ci, pod, env, exit_code=code)
        assert (proc.returncode == 0) is ok, code
    # Job names are fixed, and `kubectl apply` of a finished Job changes nothing: the recipe deletes last night's
    # Jobs first, or tonight's wait would return at once on them and the merge would not run again.
    recipe = [line.removeprefix("#").strip() for line in
              (every_ci / "k8s" / "ocr-nightly-shards.yaml").read_text(encoding="utf-8").splitlines()
              if line.startswith("#   kubectl ")]
    assert recipe[0] == "kubectl delete job ocr-nightly-shards ocr-nightly-merge --ignore-not-found"
    assert [r.split()[1] for r in recipe] == ["delete", "apply", "wait", "apply"]


def k8s_versions() -> tuple[tuple[int, int], tuple[int, int]]:
    """The oldest and the newest Kubernetes API the installed validator bundles (Indexed Jobs: stable since 1.24)."""
    versions = sorted({tuple(map(int, v.split(".")[:2])) for v in kubernetes_validate.utils.all_versions()})
    return next(v for v in versions if v >= (1, 24)), versions[-1]


def test_k8s_manifests_are_valid_kubernetes_objects(every_ci: Path) -> None:
    docs = [d for name in ("ocr-nightly-shards.yaml", "ocr-nightly-merge.yaml") for d in _k8s_docs(every_ci, name)]
    assert [d["kind"] for d in docs] == ["PersistentVolumeClaim", "Job", "Job"]
    oldest, newest = k8s_versions()
    assert oldest < newest and newest >= (1, 37), (oldest, newest)
    versions = ["{}.{}".format(*oldest), "{}.{}".format(*newest)]
    for version in versions:
        for doc in docs:  # strict: a field the API does not know is an error, not ignored as kubectl may
            kubernetes_validate.validate(doc, version, strict=True)
    # Planted: a misspelt field, and a number written as a string, are refused with where they are.
    job = copy.deepcopy(docs[1])
    job["spec"]["completionMod"] = job["spec"].pop("completionMode")
    with pytest.raises(kubernetes_validate.ValidationError, match="'completionMod' was unexpected"):
        kubernetes_validate.validate(job, versions[0], strict=True)
    job = copy.deepcopy(docs[1])
    job["spec"]["completions"] = "4"
    with pytest.raises(kubernetes_validate.ValidationError) as e:
        kubernetes_validate.validate(job, versions[1], strict=True)
    assert list(e.value.path) == ["spec", "completions"]


def test_k8s_merge_job_reads_the_shards_volume(every_ci: Path) -> None:
    (job,) = _k8s_docs(every_ci, "ocr-nightly-merge.yaml")
    shards = next(d for d in _k8s_docs(every_ci, "ocr-nightly-shards.yaml") if d["kind"] == "Job")
    assert job["kind"] == "Job" and job["spec"]["backoffLimit"] == 0
    (merged,) = harness_commands(_pod_command(job))
    assert merged[:3] == ["report", "merge", "/reports/shard-*"]
    assert job["spec"]["template"]["spec"]["volumes"] == shards["spec"]["template"]["spec"]["volumes"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    (shard,) = shards["spec"]["template"]["spec"]["containers"]
    assert container["image"] == shard["image"] and container["workingDir"] == shard["workingDir"] == "/repo"


# --- SLURM (init --ci slurm) ------------------------------------------------------------------------------------

@pytest.fixture
def slurm_repo(tmp_path: Path) -> Path:
    target = tmp_path / "their-repo"
    assert main(["init", str(target), "--ci", "slurm"]) == 0
    return target


def _sbatch_options(script: Path) -> dict[str, str]:
    """The script's `#SBATCH` options; sbatch reads them only above the first command, so they must all be there."""
    lines = script.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#!/bin/bash"
    first_command = next(i for i, line in enumerate(lines) if line.strip() and not line.startswith("#"))
    options = [(i, line.removeprefix("#SBATCH ")) for i, line in enumerate(lines) if line.startswith("#SBATCH ")]
    assert options and all(i < first_command for i, _ in options), script
    return dict(opt.removeprefix("--").split("=", 1) for _, opt in options)


def _run_with_shim(repo: Path, command: list[str], env: dict[str, str], exit_code: int = 0
                   ) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """Runs `command` (a batch script, a pod's shell) in `repo` with only `env` and `ocr-harness` on PATH recording
    its argv and exiting with `exit_code`: the template's own shell (expansion, quoting, the exit it maps to) is
    what runs. Each recorded command must parse with the real CLI parser."""
    shim_dir, log = repo.parent / "bin", repo.parent / "argv.jsonl"
    shim_dir.mkdir(exist_ok=True)
    log.unlink(missing_ok=True)
    shim = shim_dir / "ocr-harness"
    shim.write_text(f"#!{sys.executable}\nimport json, sys\nwith open({str(log)!r}, 'a') as f:\n"
                    f"    f.write(json.dumps(sys.argv[1:]) + '\\n')\nsys.exit({exit_code})\n", encoding="utf-8")
    shim.chmod(0o755)
    proc = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False,
                          env={"PATH": f"{shim_dir}:/usr/bin:/bin", **env})
    argvs = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
    for argv in argvs:
        assert callable(build_parser().parse_args(argv).func)
    return proc, argvs


def _run_batch_script(repo: Path, name: str, env: dict[str, str], args: tuple[str, ...] = (),
                      exit_code: int = 0) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """The batch script as slurmd runs it: bash, the submit directory, SLURM's variables."""
    return _run_with_shim(repo, ["bash", f"slurm/{name}", *args], env, exit_code)


def test_slurm_nightly_is_a_job_array_whose_tasks_take_their_own_shards(slurm_repo: Path) -> None:
    from harness.run.shards.ci_systems import ENGINES

    script = slurm_repo / "slurm" / "ocr-nightly-shards.sbatch"
    options = _sbatch_options(script)
    assert options["array"] == "1-4"
    assert ENGINES["slurm"].snippet(4) in script.read_text(encoding="utf-8").splitlines()  # what `plan` prints
    assert ENGINES["slurm"].where.startswith("slurm/ocr-nightly-shards.sbatch")
    low, high = map(int, options["array"].split("-"))
    outs = set()
    for task in range(low, high + 1):  # what SLURM sets in each array task
        env = {"SLURM_ARRAY_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_COUNT": "4",
               "SLURM_ARRAY_TASK_MIN": str(low), "SLURM_ARRAY_TASK_MAX": str(high), "SLURM_ARRAY_TASK_STEP": "1"}
        assert detect(env).shard == (task, 4)
        proc, (run,) = _run_batch_script(slurm_repo, script.name, env)
        assert proc.returncode == 0, proc.stderr
        assert run[:3] == ["run", "--profile", "nightly"] and run[run.index("--shard") + 1] == "auto"
        outs.add(run[run.index("--out") + 1])
    # Each array writes under its own job id: a task that did not run tonight leaves a gap, not last night's shard.
    assert outs == {f"reports/77/shard-{k}" for k in range(1, 5)}
    # A regression (exit 1) leaves the verdict to the merge; anything worse fails the task.
    for code, ok in ((0, True), (1, True), (2, False), (3, False), (143, False)):
        proc, _ = _run_batch_script(slurm_repo, script.name, env, exit_code=code)
        assert (proc.returncode == 0) is ok, code


def test_slurm_merge_job_merges_its_arrays_shards_and_passes_the_verdict_on(slurm_repo: Path) -> None:
    script = slurm_repo / "slurm" / "ocr-nightly-merge.sbatch"
    assert "array" not in _sbatch_options(script)
    for k in (1, 2, 3, 4):
        (slurm_repo / "reports" / "77" / f"shard-{k}").mkdir(parents=True)
    (slurm_repo / "reports" / "76" / "shard-5").mkdir(parents=True)  # an earlier array's shard stays out
    for code in (0, 1, 2):
        proc, (merged,) = _run_batch_script(slurm_repo, script.name, {}, ("77",), exit_code=code)
        assert proc.returncode == code
        assert merged == ["report", "merge", *(f"reports/77/shard-{k}" for k in (1, 2, 3, 4)),
                          "--out", "reports/77/nightly", "--html"]
    proc, argvs = _run_batch_script(slurm_repo, script.name, {})  # submitted without the array's id
    assert proc.returncode != 0 and not argvs and "the array job id" in proc.stderr
