"""What every renderer reads out of the typed run report (harness.model.report.RunReport) beyond its records:
line changes and execution-path differences in a check's details, the verdict and environment lines, compact
renderings of detail values, throughput per phase."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import Levenshtein

from harness.model.outcome import CheckResult
from harness.model.report import RunReport

VERSION_KEYS = ("python", "paddle", "paddleocr", "paddlex", "numpy", "opencv")


def _map(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _seq(x: Any) -> Sequence[Any]:
    return x if isinstance(x, (list, tuple)) else ()


FAILING_KINDS = ("changed", "missing", "extra")


@dataclass(frozen=True)
class LineChange:
    """One line difference: harness.golden.compare.LineDiff.to_dict() in the golden check's per-image "lines"
    (and each execution path's, between paths). "within" lines drifted inside tolerance and are not failures;
    `critical` names the key fields a critical line lost."""

    kind: str
    golden_index: int | None
    golden_text: str | None
    current_text: str | None
    current_index: int | None
    fields: tuple[str, ...]
    critical: tuple[str, ...]
    golden_poly: tuple[tuple[float, float], ...] | None
    current_poly: tuple[tuple[float, float], ...] | None
    extra: Mapping[str, Any]

    @property
    def failing(self) -> bool:
        return self.kind in FAILING_KINDS


_LINE_KEYS = {"kind", "golden_index", "golden_text", "current_text", "current_index", "failed", "critical",
              "key_fields", "golden", "current"}


def _poly(x: Any) -> tuple[tuple[float, float], ...] | None:
    try:
        pts = tuple((float(p[0]), float(p[1])) for p in _seq(x))
    except (TypeError, ValueError, IndexError):
        return None
    return pts if len(pts) >= 3 else None


def _opt_int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _opt_str(x: Any) -> str | None:
    return None if x is None else str(x)


def is_line_diffs(details: Mapping[str, Any]) -> bool:
    lines = _seq(details.get("lines"))
    return bool(lines) and all(isinstance(d, Mapping) and "kind" in d for d in lines)


def golden_changes(details: Mapping[str, Any]) -> tuple[LineChange, ...]:
    out = []
    for d in _seq(details.get("lines")):
        d = _map(d)
        golden, current = _map(d.get("golden")), _map(d.get("current"))
        critical = (_seq(d.get("key_fields")) or ["critical"]) if d.get("critical") is True else ()
        out.append(LineChange(
            kind=str(d.get("kind", "changed")),
            golden_index=_opt_int(d.get("golden_index")),
            golden_text=_opt_str(d.get("golden_text", golden.get("text"))),
            current_text=_opt_str(d.get("current_text", current.get("text"))),
            current_index=_opt_int(d.get("current_index")),
            fields=tuple(str(f) for f in _seq(d.get("failed"))),
            critical=tuple(str(f) for f in critical),
            golden_poly=_poly(golden.get("poly")),
            current_poly=_poly(current.get("poly")),
            extra={k: v for k, v in d.items() if k not in _LINE_KEYS},
        ))
    return tuple(out)


@dataclass(frozen=True)
class PathDiff:
    """One execution path against the reference path (batch_paths / variations details)."""

    label: str
    reference: str
    error: str | None
    changes: tuple[LineChange, ...]
    info: Mapping[str, Any]

    @property
    def identical(self) -> bool:
        return self.error is None and not self.changes and self.info.get("identical") is not False


def path_diffs(details: Mapping[str, Any]) -> tuple[PathDiff, ...]:
    """{"reference": label, "paths": {label: {"identical", "passed", "lines": [...]} | {"error": ...}}};
    empty when details["paths"] is not of that form."""
    paths = _map(details.get("paths"))
    if not paths or not all(isinstance(v, Mapping) for v in paths.values()):
        return ()
    ref = str(details.get("reference") or "reference")
    return tuple(PathDiff(label=str(label), reference=ref, error=_opt_str(v.get("error")), changes=golden_changes(v),
                          info={k: x for k, x in v.items() if k not in ("lines", "error")})
                 for label, v in paths.items())


def verdict_line(r: RunReport) -> str:
    """One line, verdict first: what a person must know if they read nothing else."""
    n, bad = len(r.images), len(r.failed_images)
    failed = r.failed_checks
    skipped = sum(1 for c in r.ordered_checks if c.skipped)
    if r.passed:
        text = f"PASS: {n} images, {len(r.ordered_checks) - skipped} checks passed"
        return text + (f" ({skipped} skipped)" if skipped else "")
    parts = [f"FAIL: {bad} of {n} images failed"]
    if r.incomplete is not None:  # a run that stopped early (harness.run.pipeline.incomplete)
        parts = [f"INCOMPLETE ({r.incomplete.reason or 'stopped early'}): "
                 f"{len(r.incomplete.finished_images)} of {n} images finished"]
        failed = tuple(c for c in failed if c.name != "run")
    if failed:
        parts.append("checks failed: " + ", ".join(
            f"{c.name} ({len(c.failed_images)})" if c.failed_images else c.name for c in failed))
    return "; ".join(parts)


def environment_line(env: Mapping[str, Any]) -> str:
    parts = [f"{k} {env[k]}" for k in VERSION_KEYS if env.get(k)]
    if env.get("cpu_model"):
        isa = [str(x) for x in _seq(env.get("isa"))]
        parts.append(str(env["cpu_model"]) + (f" ({' '.join(isa)})" if isa else ""))
    if "onednn" in env:
        parts.append("oneDNN " + ("on" if env["onednn"] else "off"))
    if env.get("cpu_threads"):
        parts.append(f"{env['cpu_threads']} threads")
    return " · ".join(parts) if parts else "environment not recorded"


def compact(value: Any, limit: int = 200) -> str:
    """A short one-line rendering of any detail value (floats to 6 significant digits)."""
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k}: {compact(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(compact(v, limit) for v in value[:20]) + (", ..." if len(value) > 20 else "") + "]"
    elif isinstance(value, str):
        text = repr(value) if value != value.strip() or not value else value
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def divergence_text(d: Mapping[str, Any]) -> str:
    """'repeat 3, line 2, score: 0.981 → 0.979 (delta 0.002)' from a first_divergence dict."""
    where = ", ".join(f"{k} {d[k]}" for k in ("repeat", "line") if d.get(k) is not None)
    before = d.get("golden", d.get("expected"))
    after = d.get("current", d.get("actual"))
    what = f"{d.get('field', '?')}: {compact(before, 80)} → {compact(after, 80)}"
    if d.get("delta") is not None:
        what += f" (delta {compact(d.get('delta'))})"
    return f"{where}, {what}" if where else what


def diff_segments(a: str, b: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Split ``a`` and ``b`` into (text, differs) runs by character-level Levenshtein opcodes."""
    left: list[tuple[str, bool]] = []
    right: list[tuple[str, bool]] = []
    for op in Levenshtein.opcodes(a, b):
        changed = op.tag != "equal"
        if op.src_end > op.src_start:
            left.append((a[op.src_start:op.src_end], changed))
        if op.dest_end > op.dest_start:
            right.append((b[op.dest_start:op.dest_end], changed))
    return left, right


@dataclass(frozen=True)
class PhaseRate:
    """One inference phase of `timing.phases` as throughput: images per second of wall time."""

    phase: str
    images: int
    calls_per_image: int
    wall_s: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.wall_s if self.wall_s > 0 else 0.0


def phase_rates(timing: Mapping[str, Any]) -> tuple[PhaseRate, ...]:
    """Every inference phase (one that ran images) in the order the run measured them."""
    out = []
    for name, ph in _map(timing.get("phases")).items():
        ph = _map(ph)
        images, wall = ph.get("images"), ph.get("wall_s")
        if isinstance(images, int) and images > 0 and isinstance(wall, (int, float)) and wall > 0:
            calls = ph.get("calls_per_image")
            out.append(PhaseRate(str(name), images, calls if isinstance(calls, int) else 1, float(wall)))
    return tuple(out)


def speed_ratio(checks: Sequence[CheckResult]) -> float | None:
    """The speed check's median image ratio against its approved baseline, when it judged one."""
    for c in checks:
        if c.name == "speed":
            ratio = _map(c.details.get("ratio")).get("median")
            return float(ratio) if isinstance(ratio, (int, float)) else None
    return None
