"""One image's accuracy against its ground truth, as the report holds it (images[i].accuracy): made by
harness.metrics, read back by `report merge`, which re-aggregates the corpus figures from these rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.model import tolerant


@dataclass(frozen=True)
class DetectionCounts:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def hmean(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn,
                "precision": self.precision, "recall": self.recall, "hmean": self.hmean}

    @classmethod
    def from_dict(cls, d: Any) -> DetectionCounts:
        """The counts; precision, recall and hmean follow from them and are not read."""
        d = tolerant.mapping(d)
        return cls(tolerant.count(d.get("tp")), tolerant.count(d.get("fp")), tolerant.count(d.get("fn")))


@dataclass(frozen=True)
class ImageAccuracy:
    cer: float
    edits: int
    ref_chars: int
    lines_exact: int
    lines_total: int
    det_tp: int
    det_fp: int
    det_fn: int
    fields: Mapping[str, bool] = field(default_factory=dict)

    @property
    def detection(self) -> DetectionCounts:
        return DetectionCounts(self.det_tp, self.det_fp, self.det_fn)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cer": self.cer, "edits": self.edits, "ref_chars": self.ref_chars,
            "lines_exact": self.lines_exact, "lines_total": self.lines_total,
            "det": self.detection.to_dict(),
            "fields": dict(sorted(self.fields.items())),
        }

    @classmethod
    def from_dict(cls, d: Any) -> ImageAccuracy:
        d = tolerant.mapping(d)
        det = DetectionCounts.from_dict(d.get("det"))
        return cls(cer=tolerant.number(d.get("cer")), edits=tolerant.count(d.get("edits")),
                   ref_chars=tolerant.count(d.get("ref_chars")), lines_exact=tolerant.count(d.get("lines_exact")),
                   lines_total=tolerant.count(d.get("lines_total")), det_tp=det.tp, det_fp=det.fp, det_fn=det.fn,
                   fields={str(k): v for k, v in tolerant.mapping(d.get("fields")).items() if isinstance(v, bool)})
