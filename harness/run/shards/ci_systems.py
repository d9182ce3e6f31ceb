"""The engines a sharded run fans out on (`plan --engine`, `init --ci`): each one's shard limit and the snippet
of its job definition that sets the shard count.

Limits, and why:
- github: 256 jobs per matrix (GitHub Actions' documented maximum for one workflow run's matrix).
- gitlab: `parallel` takes 2..200 (GitLab CI's keyword limit).
- k8s: 100,000: an Indexed Job's `parallelism` (and completions) must stay <= 10^5 (Job API validation); long
  before that the cluster's pod quota and nodes decide, which `plan` cannot see.
- slurm: 1000: with the default `MaxArraySize = 1001` array indices run 0..1000, so `--array=1-N` allows N <= 1000
  (`scontrol show config | grep MaxArraySize` shows a site's own value).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from harness.util.errors import UserError


@dataclass(frozen=True)
class Engine:
    name: str
    limit: int
    limit_text: str  # the limit as the engine's documentation states it
    snippet: Callable[[int], str]  # the shard count as the template reads it
    where: str  # where the snippet goes
    over: Callable[[int], str]  # what to do when N shards exceed the limit


def github_matrix(n: int, first: int = 1, last: int | None = None) -> dict[str, list[int]]:
    """The nightly workflow's matrix (shards first..last of n; all by default) and the total, read as
    OCR_HARNESS_SHARD=K/N."""
    return {"k": list(range(first, (last or n) + 1)), "n": [n]}


def _github(n: int) -> str:
    return json.dumps(github_matrix(n), separators=(",", ":"))


def _github_over(n: int) -> str:
    parts = [(a, min(a + 255, n)) for a in range(1, n + 1, 256)]
    return (f"split the shards over {len(parts)} matrix jobs, each setting OCR_HARNESS_SHARD=${{{{ matrix.k }}}}/"
            f"${{{{ matrix.n }}}} from its own matrix (one repository variable each), and one merge job that needs "
            f"all of them; the matrices, shards {', '.join(f'{a}-{b}' for a, b in parts)}:\n" +
            "\n".join(json.dumps(github_matrix(n, a, b), separators=(",", ":")) for a, b in parts))


ENGINES: dict[str, Engine] = {e.name: e for e in (
    Engine("github", 256, "GitHub Actions runs at most 256 jobs per matrix", _github,
           "the repository variable OCR_NIGHTLY_MATRIX (ocr-nightly.yml reads it with fromJSON)", _github_over),
    Engine("gitlab", 200, "GitLab CI's `parallel` takes at most 200", lambda n: f"parallel: {n}",
           "the shard job of .gitlab-ci.yml",
           lambda n: f"split the shard job into {-(-n // 200)} jobs of at most `parallel: 200` and run "
                     f"`--shard $((CI_NODE_INDEX + OFFSET))/{n}` in each (OFFSET 0, 200, ...) instead of --shard auto"),
    Engine("k8s", 100_000, "an Indexed Job's parallelism must be <= 100000 (Job API validation)",
           lambda n: f"completions: {n}\nparallelism: {n}\nOCR_HARNESS_SHARD_TOTAL: \"{n}\"",
           "k8s/ocr-nightly-shards.yaml (the Job's spec and its container's env)",
           lambda n: "run several Indexed Jobs with explicit `--shard K/N`, or raise the budget"),
    Engine("slurm", 1000, "the default MaxArraySize = 1001 allows --array=1-1000", lambda n: f"#SBATCH --array=1-{n}",
           "slurm/ocr-nightly-shards.sbatch (its #SBATCH --array line)",
           lambda n: f"ask for a MaxArraySize above {n} or submit {-(-n // 1000)} arrays running explicit "
                     f"`--shard $((SLURM_ARRAY_TASK_ID + OFFSET))/{n}`"),
)}


def engine(name: str) -> Engine:
    try:
        return ENGINES[name]
    except KeyError:
        raise UserError(f"--engine {name!r}: expected one of {', '.join(ENGINES)}") from None
