"""`run --shard auto`: every engine's variables, in both index conventions, give the harness's K/N; missing,
malformed and conflicting variables are one line naming them (exit 2 through the CLI)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.util.errors import UserError
from harness.run.shards.from_env import detect


@pytest.mark.parametrize(("env", "engine", "shard"), [
    ({"OCR_HARNESS_SHARD": "1/4"}, "github", (1, 4)),
    ({"OCR_HARNESS_SHARD": " 4/4 "}, "github", (4, 4)),
    ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "3"}, "gitlab", (1, 3)),  # GitLab counts from 1
    ({"CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "3"}, "gitlab", (3, 3)),
    ({"JOB_COMPLETION_INDEX": "0", "OCR_HARNESS_SHARD_TOTAL": "2"}, "k8s", (1, 2)),  # Kubernetes counts from 0
    ({"JOB_COMPLETION_INDEX": "1", "OCR_HARNESS_SHARD_TOTAL": "2"}, "k8s", (2, 2)),
    ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1",
      "SLURM_ARRAY_TASK_MAX": "4", "SLURM_ARRAY_TASK_STEP": "1"}, "slurm", (1, 4)),  # --array=1-4
    ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0",
      "SLURM_ARRAY_TASK_MAX": "3"}, "slurm", (1, 4)),  # --array=0-3
    ({"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "5",
      "SLURM_ARRAY_TASK_MAX": "8"}, "slurm", (3, 4)),  # --array=5-8
    ({"SLURM_ARRAY_TASK_ID": "20", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0",
      "SLURM_ARRAY_TASK_MAX": "30", "SLURM_ARRAY_TASK_STEP": "10"}, "slurm", (3, 4)),  # --array=0-30:10
    # Two engines naming the same shard agree (a GitLab job that also exports OCR_HARNESS_SHARD).
    ({"OCR_HARNESS_SHARD": "2/3", "CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}, "github", (2, 3)),
    # GitLab sets CI_NODE_TOTAL=1 in every job; without CI_NODE_INDEX it is no engine. Empty means unset.
    ({"CI_NODE_TOTAL": "1", "OCR_HARNESS_SHARD": "1/2", "JOB_COMPLETION_INDEX": ""}, "github", (1, 2)),
])
def test_each_engine_names_its_shard(env: dict[str, str], engine: str, shard: tuple[int, int]) -> None:
    source = detect(env)
    assert (source.engine, source.shard) == (engine, shard)
    assert set(source.to_dict()["variables"]) <= set(env)  # what the report records: the variables read


@pytest.mark.parametrize(("env", "message"), [
    ({}, "no engine index found; looked for github (OCR_HARNESS_SHARD), gitlab (CI_NODE_INDEX), k8s "
         "(JOB_COMPLETION_INDEX), slurm (SLURM_ARRAY_TASK_ID)"),
    ({"CI_NODE_TOTAL": "1"}, "no engine index found"),
    ({"OCR_HARNESS_SHARD_TOTAL": "4"}, "OCR_HARNESS_SHARD_TOTAL is set but JOB_COMPLETION_INDEX"),
    ({"OCR_HARNESS_SHARD": "2"}, "OCR_HARNESS_SHARD='2': expected K/N"),
    ({"OCR_HARNESS_SHARD": "0/4"}, "OCR_HARNESS_SHARD='0/4': need 1 <= K <= N"),
    ({"OCR_HARNESS_SHARD": "5/4"}, "github: OCR_HARNESS_SHARD=5/4 names shard 5 of 4"),
    ({"OCR_HARNESS_SHARD": "a/b"}, "expected K/N"),
    ({"CI_NODE_INDEX": "2"}, "CI_NODE_TOTAL is not set"),
    ({"CI_NODE_INDEX": "0", "CI_NODE_TOTAL": "2"}, "CI_NODE_INDEX='0' must be >= 1"),
    ({"CI_NODE_INDEX": "x", "CI_NODE_TOTAL": "2"}, "CI_NODE_INDEX='x' is not a whole number"),
    ({"JOB_COMPLETION_INDEX": "2", "OCR_HARNESS_SHARD_TOTAL": "2"}, "names shard 3 of 2"),
    ({"JOB_COMPLETION_INDEX": "0"}, "OCR_HARNESS_SHARD_TOTAL is not set"),
    ({"JOB_COMPLETION_INDEX": "-1", "OCR_HARNESS_SHARD_TOTAL": "2"}, "JOB_COMPLETION_INDEX='-1' must be >= 0"),
    ({"JOB_COMPLETION_INDEX": "0", "OCR_HARNESS_SHARD_TOTAL": "1e3"}, "OCR_HARNESS_SHARD_TOTAL='1e3' is not"),
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3"}, "SLURM_ARRAY_TASK_MIN is not set"),
    ({"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1",
      "SLURM_ARRAY_TASK_MAX": "7"}, "not a regular array"),  # --array=1,2,7
    ({"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1"}, "not a regular"),
    ({"OCR_HARNESS_SHARD": "1/4", "JOB_COMPLETION_INDEX": "1", "OCR_HARNESS_SHARD_TOTAL": "4"},
     "engines disagree: github (OCR_HARNESS_SHARD=1/4) says 1/4; k8s (JOB_COMPLETION_INDEX=1, "
     "OCR_HARNESS_SHARD_TOTAL=4) says 2/4"),
    ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "2", "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "3",
      "SLURM_ARRAY_TASK_MIN": "0"}, "engines disagree: gitlab .* says 1/2; slurm .* says 1/3"),
])
def test_missing_malformed_and_conflicting_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(UserError, match=message if ".*" in message else re.escape(message)):
        detect(env)


def test_auto_picks_the_slice_that_k_n_picks() -> None:
    # The same images whichever engine says "shard 2 of 3" (the split itself is
    # harness.run.pipeline.plan.shard_items, by id).
    envs = [{"OCR_HARNESS_SHARD": "2/3"}, {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"},
            {"JOB_COMPLETION_INDEX": "1", "OCR_HARNESS_SHARD_TOTAL": "3"},
            {"SLURM_ARRAY_TASK_ID": "11", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "10"}]
    assert {detect(env).shard for env in envs} == {(2, 3)}


def test_cli_refusal_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("OCR_HARNESS_SHARD", "CI_NODE_INDEX", "JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "one")
    monkeypatch.setenv("OCR_HARNESS_SHARD_TOTAL", "2")
    assert main(["run", "--profile", "release", "--shard", "auto", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "JOB_COMPLETION_INDEX='one' is not a whole number" in err, err
