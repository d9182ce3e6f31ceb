"""The approval record of a golden set: what a full approval measured besides the goldens themselves.

`<golden root>/<set>/_approval.json`, one file per golden set, one section per kind of measurement, each keyed
by the profile it was measured for:
- `speed`: per-image latency and the fixed CPU yardstick timed next to it (harness.normaliser), and the
  workers' peak memory, with the stack and selection they were measured on (harness.checks.speed judges runs
  against it);
- sections this version does not know (a newer harness's) are kept as they are when a section is rewritten.

Written atomically, only by a full approval (`golden refresh --all --yes`) or `ocr-harness speed baseline`;
read strictly: a hand-edited record that is not this schema is a `UserError` naming the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.model.results import canonical_json
from harness.util import atomic
from harness.util.errors import UserError

APPROVAL_NAME = "_approval.json"
SCHEMA = "ocr-harness/approval/1"


@dataclass(frozen=True)
class ImageSpeed:
    cost_s: float  # what the engine cost per image (median over repeats), in the baseline's `clock`
    reference_s: float  # the yardstick, timed the same way in the same process around the same call
    latency_s: float  # wall seconds per image (median over repeats): shown, not judged

    @property
    def ratio(self) -> float:
        return self.cost_s / self.reference_s

    def to_dict(self) -> dict[str, float]:
        return {"cost_s": self.cost_s, "reference_s": self.reference_s, "latency_s": self.latency_s}


@dataclass(frozen=True)
class SpeedBaseline:
    """One profile's approved speed and memory."""

    approved_at: str
    stack: Mapping[str, Any]  # the engine stack of the run, plus workers and the yardstick's name
    selection: int  # images in the run that measured it
    clock: str  # "cpu" (worker processes) or "wall" (in the harness process: the http backend)
    images: Mapping[str, ImageSpeed]
    peak_rss_kib: int | None  # the largest worker peak (VmHWM)
    served_at_peak: int  # the most images one worker had served when that peak was read

    def to_dict(self) -> dict[str, Any]:
        return {"approved_at": self.approved_at, "stack": dict(self.stack), "selection": self.selection,
                "clock": self.clock, "images": {k: v.to_dict() for k, v in sorted(self.images.items())},
                "peak_rss_kib": self.peak_rss_kib, "served_at_peak": self.served_at_peak}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> SpeedBaseline:
        try:
            images = {str(k): ImageSpeed(_positive(v["cost_s"]), _positive(v["reference_s"]),
                                         _positive(v["latency_s"])) for k, v in d["images"].items()}
            peak = d.get("peak_rss_kib")
            clock = str(d["clock"])
            if clock not in ("cpu", "wall"):
                raise ValueError(f"clock {clock!r} is not cpu or wall")
            return cls(str(d["approved_at"]), dict(d["stack"]), int(d["selection"]), clock, images,
                       None if peak is None else int(peak), int(d.get("served_at_peak", 0)))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UserError(f"{where}: not a speed baseline ({type(e).__name__}: {e})") from None


def _positive(x: Any) -> float:
    v = float(x)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{x!r} is not a positive finite number")
    return v


@dataclass(frozen=True)
class Approval:
    golden_set: str
    speed: Mapping[str, SpeedBaseline] = field(default_factory=dict)
    other: Mapping[str, Any] = field(default_factory=dict)  # sections of a newer version, kept as they are

    def with_speed(self, profile: str, baseline: SpeedBaseline) -> Approval:
        return Approval(self.golden_set, {**self.speed, profile: baseline}, self.other)

    def to_dict(self) -> dict[str, Any]:
        return {**self.other, "schema": SCHEMA, "golden_set": self.golden_set,
                "speed": {k: v.to_dict() for k, v in sorted(self.speed.items())}}


def approval_path(golden_dir: Path) -> Path:
    """`golden_dir`: the golden set's own directory (GoldenStore.directory)."""
    return golden_dir / APPROVAL_NAME


def load_approval(golden_dir: Path) -> Approval | None:
    """The set's approval record, or None when it has none."""
    path = approval_path(golden_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise UserError(f"{path}: not a valid approval record ({type(e).__name__})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
        raise UserError(f"{path}: not an approval record of schema {SCHEMA}")
    speed = raw.get("speed") or {}
    if not isinstance(speed, dict):
        raise UserError(f"{path}: 'speed' must be an object")
    other = {k: v for k, v in raw.items() if k not in ("schema", "golden_set", "speed")}
    return Approval(str(raw.get("golden_set", golden_dir.name)),
                    {str(k): SpeedBaseline.from_dict(v, f"{path}: speed.{k}") for k, v in speed.items()}, other)


def write_approval(golden_dir: Path, approval: Approval) -> Path:
    return atomic.write_text(approval_path(golden_dir), canonical_json(approval.to_dict()))
