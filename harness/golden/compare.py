"""Compare one image's current OCR output with its golden, field by field, with per-field tolerances.

Lines are paired by polygon IoU (see `geometry.match_lines`), then each pair is judged on text (CER in
`harness.util.text`'s exact form: NFC, whitespace kept), polygon (max vertex shift and IoU) and score (absolute difference). Alongside the
verdict every comparison carries the smallest tolerances that would have passed (Polygraphy's "minimum
required tolerance"), so thresholds can be set from data rather than guessed.

Key fields: `key_texts` maps a field name (amount, payer_account, date, ...) to its ground-truth value. A
golden line that reads that value and whose current text no longer reads it (or that is missing) is
*critical*, whatever the text tolerance says: a CER of 0.1 is harmless in a bank name and fatal in an amount.
A key line that only moved or changed score is reported with its field names but is not critical.
"Reads" is the one rule of `harness.keyfields`: amounts as decimals, dates as dates, accounts as digit strings,
each a whole token ('¥6.41' -> '¥641' loses the amount; '6017437071' -> '6017 4370 71' keeps the account).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from harness.golden.geometry import match_lines, max_vertex_shift
from harness.keyfields import KeyValue, parse_fields
from harness.model.results import Line, OcrResult
from harness.model.settings import Tolerances
from harness.util.text import cer as text_cer, exact_form

LineKind = Literal["identical", "within", "changed", "missing", "extra"]
FIELDS = ("text", "poly", "score")

def cer(reference: str, hypothesis: str) -> float:
    """Character error rate in the exact form (NFC, whitespace kept); '' -> 'ab' is 2.0."""
    return text_cer(reference, hypothesis, exact_form)


@dataclass(frozen=True)
class RequiredTolerances:
    """The tightest tolerances under which every matched line would have passed.

    `blocking` counts what no tolerance fixes: missing and extra lines, lost key-field values and a changed
    image size. Computed for the line pairing found at the profile's `match_min_iou`.
    """

    text_max_cer: float = 0.0
    poly_max_shift_px: float = 0.0
    poly_min_iou: float = 1.0
    score_abs: float = 0.0
    blocking: int = 0

    def merge(self, other: RequiredTolerances) -> RequiredTolerances:
        return RequiredTolerances(
            text_max_cer=max(self.text_max_cer, other.text_max_cer),
            poly_max_shift_px=max(self.poly_max_shift_px, other.poly_max_shift_px),
            poly_min_iou=min(self.poly_min_iou, other.poly_min_iou),
            score_abs=max(self.score_abs, other.score_abs),
            blocking=self.blocking + other.blocking,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "text_max_cer": self.text_max_cer,
            "poly_max_shift_px": self.poly_max_shift_px,
            "poly_min_iou": self.poly_min_iou,
            "score_abs": self.score_abs,
            "blocking": self.blocking,
        }


@dataclass(frozen=True)
class LineDiff:
    """One golden line and its current counterpart (or the lack of one).

    `failed` names the fields beyond tolerance, `drifted` every field that differs at all.
    `score_delta` is current minus golden.
    """

    kind: LineKind
    golden_index: int | None
    current_index: int | None
    golden: Line | None
    current: Line | None
    failed: tuple[str, ...] = ()
    drifted: tuple[str, ...] = ()
    cer: float | None = None
    max_shift_px: float | None = None
    iou: float | None = None
    score_delta: float | None = None
    key_fields: tuple[str, ...] = ()
    critical: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "golden_index": self.golden_index,
            "current_index": self.current_index,
            "golden_text": self.golden.text if self.golden else None,
            "current_text": self.current.text if self.current else None,
            "golden": self.golden.to_dict() if self.golden else None,
            "current": self.current.to_dict() if self.current else None,
            "failed": list(self.failed),
            "drifted": list(self.drifted),
            "cer": self.cer,
            "max_shift_px": self.max_shift_px,
            "iou": self.iou,
            "score_delta": self.score_delta,
            "key_fields": list(self.key_fields),
            "critical": self.critical,
        }

    def describe(self) -> str:
        """One human line: `line 3: text '¥1,234.50' -> '¥1,284.50' (CER 0.111); score -0.0021 [CRITICAL: amount]`."""
        where = f"line {self.golden_index}" if self.golden_index is not None else f"new line {self.current_index}"
        if self.kind == "missing":
            body = f"missing {self.golden.text!r}" if self.golden else "missing"
        elif self.kind == "extra":
            body = f"extra {self.current.text!r}" if self.current else "extra"
        else:
            assert self.golden is not None and self.current is not None
            parts = []
            if "text" in self.drifted:
                parts.append(f"text {self.golden.text!r} -> {self.current.text!r} (CER {self.cer:.3g})")
            if "poly" in self.drifted:
                parts.append(f"poly moved {self.max_shift_px:.3g} px (IoU {self.iou:.4f})")
            if "score" in self.drifted:
                parts.append(f"score {self.golden.score:.6g} -> {self.current.score:.6g} ({self.score_delta:+.3g})")
            body = "; ".join(parts) or "identical"
            if self.kind == "within":
                body += " (within tolerance)"
        tag = ""
        if self.critical:
            tag = f" [CRITICAL: {', '.join(self.key_fields)}]"
        elif self.key_fields:
            tag = f" [key field: {', '.join(self.key_fields)}]"
        return f"{where}: {body}{tag}"


@dataclass(frozen=True)
class ImageComparison:
    """Every line of one image judged against its golden. Truthy when the image passes."""

    image_id: str
    lines: tuple[LineDiff, ...]
    required: RequiredTolerances
    golden_size: tuple[int, int]
    current_size: tuple[int, int]

    @property
    def size_changed(self) -> bool:
        return self.golden_size != self.current_size

    @property
    def diffs(self) -> tuple[LineDiff, ...]:
        """Every line that is not identical (changed, missing, extra, and drift within tolerance)."""
        return tuple(d for d in self.lines if d.kind != "identical")

    @property
    def failures(self) -> tuple[LineDiff, ...]:
        return tuple(d for d in self.lines if d.kind in ("changed", "missing", "extra"))

    @property
    def passed(self) -> bool:
        return not self.size_changed and not self.failures

    def __bool__(self) -> bool:
        return self.passed

    @property
    def critical_fields(self) -> tuple[str, ...]:
        return tuple(sorted({f for d in self.lines if d.critical for f in d.key_fields}))

    @property
    def counts(self) -> dict[str, int]:
        """Lines per kind, failed lines per field, and critical lines."""
        out = {kind: 0 for kind in ("identical", "within", "changed", "missing", "extra")}
        out.update({field: 0 for field in FIELDS})
        out["critical"] = 0
        for d in self.lines:
            out[d.kind] += 1
            for field in d.failed:
                out[field] += 1
            out["critical"] += d.critical
        return out

    def summary(self) -> str:
        c = self.counts
        total = c["identical"] + c["within"] + c["changed"] + c["missing"]
        if self.passed:
            return f"{self.image_id}: ok ({total} lines: {c['identical']} identical, {c['within']} within tolerance)"
        parts = []
        if self.critical_fields:
            parts.append(f"CRITICAL {', '.join(self.critical_fields)}")
        if self.size_changed:
            parts.append("image size {}x{} -> {}x{}".format(*self.golden_size, *self.current_size))
        fields = ", ".join(f"{f} {c[f]}" for f in FIELDS if c[f])
        parts.append(f"{c['changed']} changed" + (f" ({fields})" if fields else ""))
        parts.append(f"{c['missing']} missing, {c['extra']} extra of {total} golden lines")
        return f"{self.image_id}: FAIL " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """For report.json; identical lines are counted, not listed."""
        return {
            "image_id": self.image_id,
            "passed": self.passed,
            "summary": self.summary(),
            "counts": self.counts,
            "critical_fields": list(self.critical_fields),
            "golden_size": list(self.golden_size),
            "current_size": list(self.current_size),
            "required_tolerances": self.required.to_dict(),
            "lines": [d.to_dict() for d in self.diffs],
        }


def compare_image(
    golden: OcrResult,
    current: OcrResult,
    tol: Tolerances,
    key_texts: Mapping[str, str] | None = None,
) -> ImageComparison:
    """Judge `current` against `golden` line by line; see the module docstring for the rules."""
    if golden.image_id != current.image_id:
        raise ValueError(f"comparing different images: {golden.image_id!r} vs {current.image_id!r}")
    keys = parse_fields(dict(key_texts or {}))
    pairs = match_lines(golden.lines, current.lines, tol.match_min_iou)
    by_golden = {i: (j, iou) for i, j, iou in pairs}
    matched_current = {j for _, j, _ in pairs}

    diffs: list[LineDiff] = []
    required = RequiredTolerances(blocking=int((golden.width, golden.height) != (current.width, current.height)))
    for i, g in enumerate(golden.lines):
        held = tuple(name for name, key in keys.items() if key.read_by(g.text))
        if i not in by_golden:
            diffs.append(LineDiff("missing", i, None, g, None, key_fields=held, critical=bool(held)))
            required = required.merge(RequiredTolerances(blocking=1))
            continue
        j, iou = by_golden[i]
        diff, need = _judge(i, g, j, current.lines[j], iou, tol, keys, held)
        diffs.append(diff)
        required = required.merge(need)
    for j, c in enumerate(current.lines):
        if j not in matched_current:
            diffs.append(LineDiff("extra", None, j, None, c))
            required = required.merge(RequiredTolerances(blocking=1))
    return ImageComparison(
        image_id=golden.image_id,
        lines=tuple(diffs),
        required=required,
        golden_size=(golden.width, golden.height),
        current_size=(current.width, current.height),
    )


def _judge(
    i: int, g: Line, j: int, c: Line, iou: float, tol: Tolerances, keys: Mapping[str, KeyValue], held: tuple[str, ...]
) -> tuple[LineDiff, RequiredTolerances]:
    text_cer = cer(g.text, c.text)
    shift = max_vertex_shift(g.poly, c.poly)
    poly_iou = iou  # the matcher's IoU; computed once
    delta = c.score - g.score

    lost = tuple(name for name in held if not keys[name].read_by(c.text))
    drifted = tuple(
        f for f, differs in (("text", text_cer > 0), ("poly", g.poly != c.poly), ("score", delta != 0.0)) if differs
    )
    failed = tuple(
        f
        for f, bad in (
            ("text", text_cer > tol.text_max_cer or bool(lost)),
            ("poly", shift > tol.poly_max_shift_px or poly_iou < tol.poly_min_iou),
            ("score", abs(delta) > tol.score_abs),
        )
        if bad
    )
    kind: LineKind = "changed" if failed else ("within" if drifted else "identical")
    diff = LineDiff(
        kind=kind,
        golden_index=i,
        current_index=j,
        golden=g,
        current=c,
        failed=failed,
        drifted=drifted,
        cer=text_cer,
        max_shift_px=shift,
        iou=poly_iou,
        score_delta=delta,
        key_fields=lost or (held if failed else ()),
        critical=bool(lost),
    )
    need = RequiredTolerances(text_cer, shift, poly_iou, abs(delta), blocking=int(bool(lost)))
    return diff, need
