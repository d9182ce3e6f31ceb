"""`run --shard auto`: which shard this job is, read from the variables the engine that started it sets.

Each engine numbers its jobs its own way; every one is turned into the harness's K/N (K 1-based):

| engine | variables | convention |
| --- | --- | --- |
| github | `OCR_HARNESS_SHARD=K/N` | set by the generated workflow from its matrix (GitHub has no index of its own) |
| gitlab | `CI_NODE_INDEX`, `CI_NODE_TOTAL` | `parallel: N`; the index is 1-based |
| k8s | `JOB_COMPLETION_INDEX`, `OCR_HARNESS_SHARD_TOTAL` | Indexed Job; the index is 0-based, the total is ours |
| slurm | `SLURM_ARRAY_TASK_ID`, `_COUNT`, `_MIN`, `_MAX`, `_STEP` (all `SLURM_ARRAY_TASK_*`) | `--array=A-B[:S]` |

An engine counts as present when its index variable is set. A SLURM array may start anywhere (`--array=5-8`) and
step (`--array=0-30:10`): the task's place is (ID - MIN) / STEP, which needs a regular array (COUNT tasks from MIN
in steps of STEP); a list such as `--array=1,2,7` has no place to compute and is refused. Several engines may be
present at once (a GitLab job that also exports OCR_HARNESS_SHARD): they must name the same shard.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from harness.util.errors import UserError

ENGINES = ("github", "gitlab", "k8s", "slurm")


@dataclass(frozen=True)
class ShardSource:
    """One engine's reading of the environment: the shard, and the variables it was read from."""

    engine: str
    k: int
    n: int
    variables: tuple[tuple[str, str], ...]

    @property
    def shard(self) -> tuple[int, int]:
        return self.k, self.n

    def describe(self) -> str:
        return f"{self.engine} ({', '.join(f'{name}={value}' for name, value in self.variables)})"

    def to_dict(self) -> dict[str, object]:
        return {"engine": self.engine, "variables": dict(self.variables)}


def _int(env: Mapping[str, str], name: str, low: int = 0) -> int:
    text = env.get(name)
    if text is None:
        raise UserError(f"--shard auto: {name} is not set")
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise UserError(f"--shard auto: {name}={text!r} is not a whole number") from None
    if value < low:
        raise UserError(f"--shard auto: {name}={text!r} must be >= {low}")
    return value


_RULE = {"github": "K/N needs 1 <= K <= N", "gitlab": "CI_NODE_INDEX counts from 1 to CI_NODE_TOTAL",
         "k8s": "OCR_HARNESS_SHARD_TOTAL must equal the Indexed Job's completions",
         "slurm": "the array's tasks are COUNT from MIN in steps of STEP"}


def _checked(engine: str, k: int, n: int, env: Mapping[str, str], names: tuple[str, ...]) -> ShardSource:
    if k > n:
        shown = ", ".join(f"{name}={env[name]}" for name in names if name in env)
        raise UserError(f"--shard auto: {engine}: {shown} names shard {k} of {n} ({_RULE[engine]})")
    return ShardSource(engine, k, n, tuple((name, env[name]) for name in names if name in env))


def _github(env: Mapping[str, str]) -> ShardSource:
    text = env["OCR_HARNESS_SHARD"]
    parts = text.strip().split("/")
    try:
        k, n = (int(v, 10) for v in parts)
    except ValueError:
        raise UserError(f"--shard auto: OCR_HARNESS_SHARD={text!r}: expected K/N, e.g. 1/4") from None
    if k < 1 or n < 1:
        raise UserError(f"--shard auto: OCR_HARNESS_SHARD={text!r}: need 1 <= K <= N")
    return _checked("github", k, n, env, ("OCR_HARNESS_SHARD",))


def _gitlab(env: Mapping[str, str]) -> ShardSource:
    k, n = _int(env, "CI_NODE_INDEX", 1), _int(env, "CI_NODE_TOTAL", 1)
    return _checked("gitlab", k, n, env, ("CI_NODE_INDEX", "CI_NODE_TOTAL"))


def _k8s(env: Mapping[str, str]) -> ShardSource:
    index, n = _int(env, "JOB_COMPLETION_INDEX", 0), _int(env, "OCR_HARNESS_SHARD_TOTAL", 1)
    return _checked("k8s", index + 1, n, env, ("JOB_COMPLETION_INDEX", "OCR_HARNESS_SHARD_TOTAL"))


def _slurm(env: Mapping[str, str]) -> ShardSource:
    names = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
             "SLURM_ARRAY_TASK_STEP")
    task, n, low = _int(env, names[0]), _int(env, names[1], 1), _int(env, names[2])
    step = _int(env, names[4], 1) if names[4] in env else 1
    high = _int(env, names[3]) if names[3] in env else low + (n - 1) * step
    if high != low + (n - 1) * step or (task - low) % step or not low <= task <= high:
        shown = ", ".join(f"{name}={env[name]}" for name in names if name in env)
        raise UserError(f"--shard auto: slurm: {shown} is not a regular array (COUNT tasks from MIN in steps of "
                        "STEP); submit with --array=1-N")
    return _checked("slurm", (task - low) // step + 1, n, env, names)


# engine -> (the variable whose presence says the engine started this job, its reader)
_READERS: dict[str, tuple[str, Callable[[Mapping[str, str]], ShardSource]]] = {
    "github": ("OCR_HARNESS_SHARD", _github),
    "gitlab": ("CI_NODE_INDEX", _gitlab),
    "k8s": ("JOB_COMPLETION_INDEX", _k8s),
    "slurm": ("SLURM_ARRAY_TASK_ID", _slurm),
}
# Set alone, these mean a half-configured engine, not "no engine": said by name rather than ignored.
_ORPHANS = {"OCR_HARNESS_SHARD_TOTAL": "JOB_COMPLETION_INDEX (a Kubernetes Indexed Job's index)"}


def detect(env: Mapping[str, str]) -> ShardSource:
    """The shard the engine's variables name; UserError when none is found, one is malformed, or two disagree."""
    found = [read(env) for engine, (marker, read) in _READERS.items() if env.get(marker, "") != ""]
    if not found:
        orphan = next((f"{name} is set but {needs} is not" for name, needs in _ORPHANS.items() if name in env), None)
        looked = ", ".join(f"{engine} ({marker})" for engine, (marker, _) in _READERS.items())
        raise UserError(f"--shard auto: {orphan or 'no engine index found'}; looked for {looked}; "
                        "or give --shard K/N")
    if len({s.shard for s in found}) > 1:
        raise UserError("--shard auto: engines disagree: " + "; ".join(
            f"{s.describe()} says {s.k}/{s.n}" for s in found))
    return found[0]
