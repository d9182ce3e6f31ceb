"""Corpus-wide view of golden comparisons: counts per change kind, worst images first, and the tolerances the
whole corpus would have needed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from harness.golden.compare import FIELDS, ImageComparison, RequiredTolerances

KINDS = ("text", "poly", "score", "missing", "extra", "critical")


@dataclass(frozen=True)
class ImageRow:
    """One failed image in the ranking."""

    image_id: str
    critical_fields: tuple[str, ...]
    changed: int
    missing: int
    extra: int
    failed_fields: tuple[str, ...]
    size_changed: bool

    @property
    def lines_off(self) -> int:
        return self.changed + self.missing + self.extra

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "critical_fields": list(self.critical_fields),
            "changed": self.changed,
            "missing": self.missing,
            "extra": self.extra,
            "failed_fields": list(self.failed_fields),
            "size_changed": self.size_changed,
        }


@dataclass(frozen=True)
class CorpusSummary:
    """Truthy when every compared image passed."""

    images: int
    passed: int
    counts: Mapping[str, int]  # lines per kind in KINDS, over all images
    critical_fields: Mapping[str, int]  # field name -> critical lines
    worst: tuple[ImageRow, ...]  # failed images: critical first, then most lines off
    required: RequiredTolerances

    @property
    def failed(self) -> int:
        return self.images - self.passed

    def __bool__(self) -> bool:
        return self.failed == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "passed": self.passed,
            "failed": self.failed,
            "counts": dict(self.counts),
            "critical_fields": dict(self.critical_fields),
            "worst": [row.to_dict() for row in self.worst],
            "required_tolerances": self.required.to_dict(),
        }

    def to_markdown(self, limit: int = 20) -> str:
        head = f"**Goldens: {self.passed} of {self.images} images match.**"
        if not self.worst:
            return head + "\n\n" + self.tolerance_line() + "\n"
        counts = ", ".join(f"{k} {self.counts[k]}" for k in KINDS)
        out = [head, "", f"Lines off: {counts}."]
        if self.critical_fields:
            crit = ", ".join(f"{name} ({n})" for name, n in sorted(self.critical_fields.items()))
            out.append(f"Critical key fields: {crit}.")
        out += ["", "| image | critical | changed | missing | extra | fields |", "|---|---|---|---|---|---|"]
        for row in self.worst[:limit]:
            fields = ", ".join(row.failed_fields) + (" size" if row.size_changed else "")
            out.append(
                f"| {_cell(row.image_id)} | {_cell(', '.join(row.critical_fields))} | {row.changed} | "
                f"{row.missing} | {row.extra} | {fields.strip()} |"
            )
        if len(self.worst) > limit:
            out.append(f"\n{len(self.worst) - limit} more failed images in report.json.")
        out += ["", self.tolerance_line()]
        return "\n".join(out) + "\n"

    def tolerance_line(self) -> str:
        """The minimum tolerances, rounded so that the printed numbers still pass when copied into a profile."""
        r = self.required
        text = (
            f"Minimum tolerances that would have passed: text_max_cer {_sig(r.text_max_cer, up=True)}, "
            f"poly_max_shift_px {_sig(r.poly_max_shift_px, up=True)}, poly_min_iou {_sig(r.poly_min_iou, up=False)}, "
            f"score_abs {_sig(r.score_abs, up=True)}"
        )
        if r.blocking:
            text += f" ({r.blocking} missing/extra/critical lines or size changes pass under no tolerance)"
        return text + "."


def summarise(comparisons: Mapping[str, ImageComparison]) -> CorpusSummary:
    counts = dict.fromkeys(KINDS, 0)
    critical: dict[str, int] = {}
    required = RequiredTolerances()
    rows = []
    for image_id in sorted(comparisons):
        comp = comparisons[image_id]
        c = comp.counts
        for kind in KINDS:
            counts[kind] += c[kind]
        for d in comp.lines:
            if d.critical:
                for name in d.key_fields:
                    critical[name] = critical.get(name, 0) + 1
        required = required.merge(comp.required)
        if not comp.passed:
            rows.append(ImageRow(
                image_id=image_id,
                critical_fields=comp.critical_fields,
                changed=c["changed"],
                missing=c["missing"],
                extra=c["extra"],
                failed_fields=tuple(f for f in FIELDS if c[f]),
                size_changed=comp.size_changed,
            ))
    rows.sort(key=lambda r: (-len(r.critical_fields), not r.size_changed, -r.lines_off, r.image_id))
    return CorpusSummary(
        images=len(comparisons),
        passed=sum(1 for comp in comparisons.values() if comp.passed),
        counts=counts,
        critical_fields=dict(sorted(critical.items())),
        worst=tuple(rows),
        required=required,
    )


def _sig(x: float, *, up: bool, digits: int = 3) -> str:
    # Decimal(repr(x)) is the exact shortest form, so rounding it outward gives a string that parses back to a
    # float on the passing side of x.
    d = Decimal(repr(x))
    if d == 0:
        return "0"
    q = d.quantize(Decimal(1).scaleb(d.adjusted() - digits + 1), rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return repr(float(q))  # float rounding is monotonic, so this still lies on the passing side


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
