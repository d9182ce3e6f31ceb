"""The eval-mode audit's report (harness.backends.paddle.audit judges, this records and renders): what was found
per batch_norm layer and op, the suspect channels, and what the audit can and cannot claim."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.paddle.program_view import BN_TYPES, DROPOUT_TYPES, LOOKS_LIKE_NORM, PER_SAMPLE_NORM_TYPES
from harness.util.values import json_number

# A channel whose stored variance is this far below (or above the inverse) its layer's median is listed as
# suspect. Measured on the shipped packs (PP-OCRv4 and PP-OCRv5 mobile, det and rec): every channel lies within
# 0.0032x (rec's stem, a quiet channel the corpus measures about as low) and 20.3x of its layer's median; a variance
# polluted by a tiny batch (x1e-4, x1e4) lands far outside. Alone it is no finding: a quiet channel can be real,
# only --drift (what the model is fed) can tell.
SUSPECT_RATIO = 1e-3


@dataclass(frozen=True)
class Finding:
    check: str  # load | bn-mode | dropout-mode | bn-stats | bn-init | unknown-op
    layer: str
    op_index: int | None
    param: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "layer": self.layer, "op_index": self.op_index, "param": self.param,
                "message": self.message}

    def __str__(self) -> str:
        where = self.layer + (f" (op #{self.op_index})" if self.op_index is not None else "")
        return f"[{self.check}] {where}" + (f" {self.param}" if self.param else "") + f": {self.message}"


@dataclass(frozen=True)
class BnLayer:
    op_index: int
    name: str
    op_type: str
    source: str  # type of the op feeding X, through a bias add; "conv2d" means conv -> BN not folded
    is_test: bool
    use_global_stats: bool
    trainable_statistics: bool
    epsilon: float
    momentum: float | None  # how the moving statistics were accumulated: new = m * old + (1 - m) * batch
    mean_param: str | None
    variance_param: str | None
    channels: int
    variance_min: float | None
    variance_max: float | None

    @property
    def uses_stored_stats(self) -> bool:
        """Paddle's kernel rule: global stats if (is_test and not trainable_statistics) or use_global_stats."""
        return (self.is_test and not self.trainable_statistics) or self.use_global_stats

    def to_dict(self) -> dict[str, Any]:
        return {"op_index": self.op_index, "name": self.name, "op_type": self.op_type, "source": self.source,
                "is_test": self.is_test, "use_global_stats": self.use_global_stats,
                "trainable_statistics": self.trainable_statistics, "uses_stored_stats": self.uses_stored_stats,
                "epsilon": self.epsilon, "momentum": self.momentum, "mean_param": self.mean_param, "variance_param": self.variance_param,
                "channels": self.channels, "variance_min": json_number(self.variance_min),
                "variance_max": json_number(self.variance_max)}


@dataclass(frozen=True)
class SuspectChannel:
    """A channel whose stored variance sits far from its layer's median: listed, not failed (see SUSPECT_RATIO)."""

    layer: str
    op_index: int
    param: str | None
    channel: int
    variance: float
    layer_median: float

    @property
    def ratio(self) -> float:
        return self.variance / self.layer_median

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "op_index": self.op_index, "param": self.param, "channel": self.channel,
                "variance": self.variance, "layer_median": self.layer_median, "ratio": self.ratio}

    def __str__(self) -> str:
        return (f"{self.layer} (op #{self.op_index}) channel {self.channel}: variance {fmt(self.variance)} = "
                f"{self.ratio:.2g}x the layer's median {fmt(self.layer_median)}")


@dataclass(frozen=True)
class Claim:
    """One statement about the model's BatchNorm / dropout, and whether the audit can make it."""

    statement: str
    made: bool  # True: the audit checked it (a violation is a finding); False: it cannot judge it
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"statement": self.statement, "made": self.made, "why": self.why}

    def __str__(self) -> str:
        return f"{'can' if self.made else 'CANNOT'}: {self.statement} ({self.why})"


@dataclass(frozen=True)
class AuditReport:
    model_dir: str
    program_format: str
    min_variance: float
    op_counts: tuple[tuple[str, int], ...]
    conv_count: int
    convs_feeding_bn: int
    convs_folded_likely: int  # conv + stored bias and no norm after it: what folding a BN into a conv leaves
    dropout_count: int
    bn_layers: tuple[BnLayer, ...]
    findings: tuple[Finding, ...]
    suspects: tuple[SuspectChannel, ...] = ()  # listed with a pointer to --drift; they do not fail the audit

    @property
    def passed(self) -> bool:
        return not self.findings

    def __bool__(self) -> bool:
        return self.passed

    @property
    def bn_count(self) -> int:
        return len(self.bn_layers)

    @property
    def norm_op_counts(self) -> dict[str, int]:
        """Every op the audit looked at, per op type: BN, dropout, per-sample norms and look-alikes."""
        return {t: n for t, n in self.op_counts
                if t in BN_TYPES or t in DROPOUT_TYPES or t in PER_SAMPLE_NORM_TYPES or LOOKS_LIKE_NORM.search(t)}

    def headline(self) -> str:
        """'3 BN left (batch_norm 3), 53 conv+bias without norm (folded BN likely), 0 dropout, 5 per-sample
        norms (layer_norm 5)': what is left to judge and what was folded away, never a bare pass."""
        counts = self.norm_op_counts
        unknown = [f.layer for f in self.findings if f.check == "unknown-op"]

        def listed(types: frozenset[str]) -> str:
            return ", ".join(f"{t} {n}" for t, n in counts.items() if t in types)

        parts = [f"{self.bn_count} BN left" + (f" ({listed(BN_TYPES)})" if self.bn_count else "")]
        if self.convs_folded_likely:
            parts.append(f"{self.convs_folded_likely} conv+bias without norm (folded BN likely)")
        parts += [f"{self.dropout_count} dropout" + (f" ({listed(DROPOUT_TYPES)})" if self.dropout_count else "")]
        per_sample = sum(n for t, n in counts.items() if t in PER_SAMPLE_NORM_TYPES)
        if per_sample:
            parts.append(f"{per_sample} per-sample norms ({listed(PER_SAMPLE_NORM_TYPES)})")
        if unknown:
            parts.append(f"{len(unknown)} unknown norm/dropout-like ops")
        return ", ".join(parts)

    @property
    def bn_folded(self) -> str:
        """How far BN was folded into convolutions: judged by convs that still feed a BN op."""
        if self.conv_count == 0:
            return "n/a"
        if self.convs_feeding_bn == 0:
            return "yes"
        return "mostly" if self.convs_feeding_bn * 2 < self.conv_count else "no"

    @property
    def momenta(self) -> tuple[float, ...]:
        return tuple(sorted({b.momentum for b in self.bn_layers if b.momentum is not None}))

    @property
    def epsilons(self) -> tuple[float, ...]:
        return tuple(sorted({b.epsilon for b in self.bn_layers}))

    def claims(self) -> tuple[Claim, ...]:
        """What this audit can and cannot say about this model: a pass covers the first kind only."""
        n, k = self.bn_count, self.convs_folded_likely
        out = []
        if n:
            out += [Claim(f"the {n} BN ops left normalise with their stored statistics (eval mode)", True,
                          "is_test / use_global_stats / trainable_statistics read from the program"),
                    Claim(f"their stored mean/variance are present, finite, positive and >= {self.min_variance:g}",
                          True, "read from the params file"),
                    Claim("their stored statistics were updated (not mean 0 / variance 1 in every channel, the "
                          "values a BN starts with)", True, "read from the params file"),
                    Claim(f"each channel's stored statistics of the {n} BN ops left fit what the model is fed", False,
                          "a static read cannot: a variance polluted by a small batch stays positive, finite and far "
                          "above any absolute floor; bn_drift judges it per channel on captured inputs")]
        else:
            out.append(Claim("no BN op is left to run in training mode", True, "the program holds no batch_norm op"))
        if k:
            out.append(Claim(f"the statistics of the {k} BN likely folded into conv (conv + bias, no norm) are sane",
                             False, "folding multiplied them into the conv weights and bias: nothing of them is "
                             "stored apart, a polluted variance reads as a trained weight; only behaviour "
                             "(goldens, accuracy) can show it"))
        if self.momenta:
            out.append(Claim(f"how the moving statistics were accumulated (momentum {_list(self.momenta)}: one "
                             f"batch moved them by {_list(tuple(round(1 - m, 6) for m in self.momenta))})", False,
                             "a training-time fact: the audit reports it, it cannot tell whether a small batch "
                             "polluted them"))
        if self.dropout_count:
            out.append(Claim(f"the {self.dropout_count} dropout ops are in test mode", True, "is_test read from "
                             "the program"))
        return tuple(out)

    @property
    def variance_min(self) -> float | None:
        values = [b.variance_min for b in self.bn_layers if b.variance_min is not None]
        return min(values, key=lambda v: (not math.isnan(v), v)) if values else None

    def to_dict(self) -> dict[str, Any]:
        return {"model_dir": self.model_dir, "program_format": self.program_format, "passed": self.passed,
                "min_variance": self.min_variance, "op_counts": dict(self.op_counts),
                "conv_count": self.conv_count, "convs_feeding_bn": self.convs_feeding_bn,
                "convs_folded_likely": self.convs_folded_likely, "momenta": list(self.momenta),
                "epsilons": list(self.epsilons), "claims": [c.to_dict() for c in self.claims()],
                "bn_count": self.bn_count, "bn_folded": self.bn_folded, "dropout_count": self.dropout_count,
                "norm_op_counts": self.norm_op_counts, "headline": self.headline(),
                "variance_min": json_number(self.variance_min),
                "bn_layers": [b.to_dict() for b in self.bn_layers],
                "findings": [f.to_dict() for f in self.findings], "suspect_ratio": SUSPECT_RATIO,
                "suspect_channels": [c.to_dict() for c in self.suspects]}

    def render(self) -> str:
        if any(f.check == "load" for f in self.findings):
            lines = [f"audit {self.model_dir} ({self.program_format}): the model could not be loaded"]
        else:
            plain = self.conv_count - self.convs_feeding_bn - self.convs_folded_likely
            lines = [f"audit {self.model_dir} ({self.program_format}): {sum(n for _, n in self.op_counts)} ops, "
                     f"{self.bn_count} batch_norm left, {self.dropout_count} dropout; {self.conv_count} conv: "
                     f"{self.convs_feeding_bn} feed a BN, {self.convs_folded_likely} have a bias and no norm "
                     f"(folded BN likely), {plain} neither"]
        if self.bn_layers:
            head = ("op#", "layer", "fed by", "is_test", "global", "stored", "momentum", "eps", "ch", "var min",
                    "var max")
            rows = [(str(b.op_index), b.name, b.source, _yn(b.is_test), "yes" if b.use_global_stats else "no",
                     _yn(b.uses_stored_stats), fmt(b.momentum), fmt(b.epsilon), str(b.channels),
                     fmt(b.variance_min), fmt(b.variance_max)) for b in self.bn_layers]
            lines += _table(head, rows)
        if not any(f.check == "load" for f in self.findings):
            lines.append("what this audit can and cannot claim:")
            lines += [f"  {c}" for c in self.claims()]
        n = len(self.findings)
        verdict = "PASS" if self.passed else f"FAIL ({n} finding{'s' if n != 1 else ''})"
        lines.append(f"{verdict}: eval-mode / BatchNorm audit (variance floor {self.min_variance:g}, "
                     f"smallest stored variance {fmt(self.variance_min)})")
        lines += [f"  {f}" for f in self.findings]
        if self.suspects:
            n = len(self.suspects)
            lines.append(f"{n} suspect channel{'s' if n != 1 else ''} (stored variance below {SUSPECT_RATIO:g}x or "
                         f"above {1 / SUSPECT_RATIO:g}x its layer's median; not a finding alone, a quiet channel can "
                         f"be real: measure what the model is fed with `ocr-harness audit {self.model_dir} --drift "
                         "IMAGES`):")
            lines += [f"  {c}" for c in self.suspects]
        return "\n".join(lines)


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _list(values: tuple[float, ...]) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _yn(flag: bool) -> str:
    return "yes" if flag else "NO"  # capitals: a "no" here is what fails the audit


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
