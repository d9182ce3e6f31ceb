"""Behavioural eval-mode probe: a sample's raw model output must not depend on its batch-mates.

One seeded input runs alone, again alone, and inside batches of 2 and 4 with different companions and at
different positions; every run must reproduce the alone output (default: bit-identical). In eval mode BN uses
its stored statistics and dropout is off, so this holds; a model served in train mode fails it. The model
runs in a child process as a `TranslatedLayer` (`paddle.jit.load`): `mode="train"` calls `.train()` on it,
which is the planted "forgot model.eval()" fault (a later `.eval()` in the same process aborts it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from harness.util.values import json_number
from harness.backends.paddle.child import Arrays, child_task, locate_model, run_in_child
from harness.util.errors import UserError

Kind = Literal["det", "rec"]
Mode = Literal["eval", "train"]

# Dynamic dims are filled per kind: det sees whole pages (multiples of 32), rec sees 48-px text lines.
DEFAULT_HW: dict[str, tuple[int, int]] = {"det": (320, 640), "rec": (48, 320)}
# (label, indices into the seeded pool; 0 is the probed sample). Companions and positions all differ.
RUNS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("alone", (0,)),
    ("alone again", (0,)),
    ("batch 2, first", (0, 1)),
    ("batch 2, second", (2, 0)),
    ("batch 4, third", (3, 4, 0, 1)),
)


@dataclass(frozen=True)
class Comparison:
    run: str
    batch_size: int
    position: int
    max_abs_diff: float

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "batch_size": self.batch_size, "position": self.position,
                "max_abs_diff": json_number(self.max_abs_diff)}


@dataclass(frozen=True)
class ProbeReport:
    model_dir: str
    program_format: str
    kind: str
    mode: str
    input_shape: tuple[int, int, int]
    atol: float
    output_max_abs: float  # scale of the alone output, to read the diffs against
    comparisons: tuple[Comparison, ...]  # each against the first "alone" run

    @property
    def max_abs_diff(self) -> float:
        diffs = [c.max_abs_diff for c in self.comparisons]
        return math.nan if any(math.isnan(d) for d in diffs) else max(diffs, default=0.0)

    @property
    def passed(self) -> bool:
        return all(c.max_abs_diff <= self.atol for c in self.comparisons)  # NaN never passes

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict[str, Any]:
        return {"model_dir": self.model_dir, "program_format": self.program_format, "kind": self.kind,
                "mode": self.mode, "input_shape": list(self.input_shape), "atol": self.atol,
                "output_max_abs": json_number(self.output_max_abs), "passed": self.passed,
                "max_abs_diff": json_number(self.max_abs_diff),
                "comparisons": [c.to_dict() for c in self.comparisons]}

    def render(self) -> str:
        c, h, w = self.input_shape
        lines = [f"probe {self.model_dir} ({self.kind}, {self.mode} mode, input {c}x{h}x{w}, "
                 f"|output| <= {self.output_max_abs:.3g}): same sample alone vs with batch-mates"]
        for cmp in self.comparisons:
            mark = "ok" if cmp.max_abs_diff <= self.atol else "FAIL"
            lines.append(f"  {mark:>4}  {cmp.run:<16} bs={cmp.batch_size} pos={cmp.position}  "
                         f"max|diff| = {cmp.max_abs_diff:.3g}")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"{verdict}: batch independence, tolerance {self.atol:g} (max diff {self.max_abs_diff:.3g})")
        if not self.passed:
            lines.append("  outputs depend on batch-mates or vary between calls: BN normalising with batch "
                         "statistics or dropout active (model served in train mode?)")
        return "\n".join(lines)


def probe_model_dir(model_dir: Path, *, kind: Kind | None = None, mode: Mode = "eval", seed: int = 0,
                    atol: float = 0.0, input_shape: tuple[int, int, int] | None = None) -> ProbeReport:
    """Runs the batch-independence probe on a model dir in a child process."""
    if kind not in (None, "det", "rec"):
        raise UserError(f"kind must be 'det' or 'rec', got {kind!r}")
    if mode not in ("eval", "train"):
        raise UserError(f"mode must be 'eval' or 'train', got {mode!r}")
    if not atol >= 0:
        raise UserError(f"atol must be >= 0, got {atol}")
    if input_shape is not None and (len(input_shape) != 3 or min(input_shape) < 1):
        raise UserError(f"input_shape must be three positive ints (C, H, W), got {input_shape}")
    files = locate_model(Path(model_dir))
    if mode == "train" and files.pir:
        # PIR's translated layer does not rewrite is_test op by op: .train() would not plant the fault.
        raise UserError(f"{model_dir}: the train-mode fault needs an old-format (.pdmodel) program")
    payload = {"prefix": str(files.prefix), "kind": kind, "mode": mode, "seed": int(seed),
               "input_shape": list(input_shape) if input_shape else None}
    res, _ = run_in_child("probe.run", payload, pir=files.pir)
    return ProbeReport(
        model_dir=str(model_dir), program_format=files.format, kind=res["kind"], mode=mode,
        input_shape=tuple(res["input_shape"]), atol=float(atol),
        output_max_abs=float(res["output_max_abs"]),
        comparisons=tuple(Comparison(r["run"], r["batch_size"], r["position"], float(r["max_abs_diff"]))
                          for r in res["comparisons"]))


def resolve_input(spec_shape: list[int], kind: str | None,
                  override: list[int] | None) -> tuple[str, tuple[int, int, int]]:
    """Kind (guessed from a fixed height when not given) and the C, H, W the probe feeds."""
    if len(spec_shape) != 4:
        raise UserError(f"the probe needs a 4-D image input (N, C, H, W); the model takes {spec_shape}")
    _, c, h, w = spec_shape
    kind = kind or ("rec" if h > 0 else "det")
    dh, dw = DEFAULT_HW[kind]
    shape = (c if c > 0 else 3, h if h > 0 else dh, w if w > 0 else dw)
    # three ints when given: probe_model_dir checked input_shape's length before the child was started
    return kind, cast("tuple[int, int, int]", tuple(override)) if override else shape


# ---------------------------------------------------------------- child side

@child_task("probe.run")
def probe_in_child(payload: dict[str, Any], _arrays: Arrays) -> tuple[dict[str, Any], Arrays]:
    import paddle

    layer = paddle.jit.load(payload["prefix"])
    if payload["mode"] == "train":
        layer.train()
    else:
        layer.eval()
    spec = layer._input_spec()
    kind, shape = resolve_input(list(spec[0].shape), payload["kind"], payload["input_shape"])
    rng = np.random.default_rng(payload["seed"])
    pool = rng.standard_normal((1 + max(max(idx) for _, idx in RUNS), *shape)).astype(np.float32)

    def run(indices: tuple[int, ...]) -> list[np.ndarray]:
        with paddle.no_grad():
            out = layer(paddle.to_tensor(pool[list(indices)]))
        return [o.numpy() for o in (out if isinstance(out, (list, tuple)) else [out])]

    reference: list[np.ndarray] | None = None
    comparisons = []
    for label, indices in RUNS:
        outs = run(indices)
        pos = indices.index(0)
        mine = [o[pos] for o in outs]
        if reference is None:
            reference = mine
            continue
        diff = max(float(np.max(np.abs(a.astype(np.float64) - b))) for a, b in zip(mine, reference))
        comparisons.append({"run": label, "batch_size": len(indices), "position": pos, "max_abs_diff": diff})
    assert reference is not None
    scale = max(float(np.max(np.abs(r))) for r in reference)
    return {"kind": kind, "input_shape": list(shape), "output_max_abs": scale, "comparisons": comparisons}, {}
