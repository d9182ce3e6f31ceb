"""Before vs after a BN re-estimation: the real pipeline on held-out images, and the verdict.

Both models run through the harness's own worker (PaddleOCR with the det or rec model dir overridden), one image
per call, on evaluation images that took no part in calibration. Measured against ground truth: CER, line exact
match, key fields, det precision/recall (harness.metrics); against goldens where one exists for that exact image
(same sha256): how many lines fail the golden comparison.

Verdict, from three signals: CER better or worse (beyond NEUTRAL_CER), key fields gained, key fields lost.
"helps" when every signal present points up, "hurts" when every one points down, "mixed" when they disagree (CER
better but a key field lost, or CER worse but a key field gained), "neutral" when none moved. Mixed is no repair
to ship blind: the fields gained and lost are listed by image for a reviewer to weigh (an amount lost for a lower
CER, or a reference gained on a model that reads worse overall).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.model.settings import EngineSettings, Tolerances, with_model_dir
from harness.model.corpus import CorpusItem
from harness.corpus.loader import content_sha256
from harness.util.errors import UserError
from harness.golden.compare import compare_image
from harness.golden.store import GoldenStore
from harness.metrics import ImageAccuracy, corpus_accuracy, image_accuracy
from harness.backends.paddle.pack import resolve_model_dirs
from harness.model.results import OcrResult
from harness.model.inference import ImageRequest
from harness.execution.worker import Worker, WorkerError, WorkerSpec

NEUTRAL_CER = 0.005  # |dCER| below this is measurement noise on a handful of slips (about 1 character in 200)


def model_settings(kind: str, model_dir: Path, base: EngineSettings | None = None) -> EngineSettings:
    """The engine settings with `model_dir` as its det or rec model (the bundled pack for the other one)."""
    return with_model_dir(base or EngineSettings(), kind, str(Path(model_dir).resolve()))


def read_images(settings: EngineSettings, items: Sequence[CorpusItem], label: str) -> dict[str, OcrResult]:
    """Every item through one worker of `settings`, one image per call; an image that fails is a UserError
    (evaluating on fewer images than recorded would make before and after incomparable)."""
    dirs = resolve_model_dirs(settings, Path.cwd())
    out: dict[str, OcrResult] = {}
    try:
        with Worker(WorkerSpec(settings=settings, dirs=dirs, label=label)) as worker:
            for it in items:
                [outcome] = worker.infer([ImageRequest(it.id, str(it.path), it.sha256)])
                if not outcome.ok:
                    raise UserError(f"{it.path}: cannot be read by the {label} model: {outcome.error}")
                out[it.id] = outcome.runs[0]
    except WorkerError as e:
        raise UserError(f"{label} model: {e}") from None
    return out


@dataclass(frozen=True)
class Evaluation:
    before: dict[str, Any]  # harness.metrics corpus aggregate ("overall") of the original model
    after: dict[str, Any]
    lost_fields: tuple[tuple[str, str], ...]  # (image id, field) read before, lost after
    gained_fields: tuple[tuple[str, str], ...]
    golden: dict[str, Any] | None  # failing golden lines before / after, where goldens exist

    @property
    def dcer(self) -> float:
        return float(self.after["cer"]) - float(self.before["cer"])

    @property
    def cer_moved(self) -> str:
        """better | worse | same: the CER's direction, within NEUTRAL_CER counted as the same."""
        if abs(self.dcer) < NEUTRAL_CER:
            return "same"
        return "better" if self.dcer < 0 else "worse"

    @property
    def verdict(self) -> str:
        up = self.cer_moved == "better" or bool(self.gained_fields)
        down = self.cer_moved == "worse" or bool(self.lost_fields)
        if up and down:
            return "mixed"
        return "helps" if up else "hurts" if down else "neutral"

    @property
    def passed(self) -> bool:
        """Exit 0 only for these: a mixed result needs a person's decision, so it fails like hurts."""
        return self.verdict in ("helps", "neutral")

    def fields_by_image(self) -> dict[str, dict[str, list[str]]]:
        out: dict[str, dict[str, list[str]]] = {}
        for which, pairs in (("gained", self.gained_fields), ("lost", self.lost_fields)):
            for image, field in pairs:
                out.setdefault(image, {"gained": [], "lost": []})[which].append(field)
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        return {"before": self.before, "after": self.after, "dcer": self.dcer, "cer_moved": self.cer_moved,
                "verdict": self.verdict, "passed": self.passed, "neutral_below": NEUTRAL_CER,
                "lost_fields": [list(f) for f in self.lost_fields],
                "gained_fields": [list(f) for f in self.gained_fields], "fields_by_image": self.fields_by_image(),
                "golden": self.golden}

    def render(self) -> str:
        b, a = self.before, self.after
        rows = [("CER", f"{b['cer']:.4f}", f"{a['cer']:.4f}"),
                ("line exact match", _rate(b["line_exact_rate"]), _rate(a["line_exact_rate"])),
                ("key fields", f"{b['fields_correct']}/{b['fields_total']}",
                 f"{a['fields_correct']}/{a['fields_total']}"),
                ("det precision", f"{b['det']['precision']:.3f}", f"{a['det']['precision']:.3f}"),
                ("det recall", f"{b['det']['recall']:.3f}", f"{a['det']['recall']:.3f}")]
        if self.golden is not None:
            g = self.golden
            rows.append((f"golden lines failing ({g['images']} images)", str(g["failing_before"]),
                         str(g["failing_after"])))
        lines = [f"evaluation on {b['images']} held-out images   before      after"]
        lines += [f"  {name:<28}{x:<12}{y}" for name, x, y in rows]
        for image, moved in self.fields_by_image().items():
            lines.append(f"  {image}: key fields " + "; ".join(
                f"{which} {', '.join(names)}" for which, names in moved.items() if names))
        lines.append(f"verdict: {self.verdict.upper()} ({self._why()})")
        return "\n".join(lines)

    def _why(self) -> str:
        cer = (f"CER {self.cer_moved} by {abs(self.dcer):.4f}" if self.cer_moved != "same"
               else f"CER within {NEUTRAL_CER} (dCER {self.dcer:+.4f})")
        fields = f"{len(self.gained_fields)} key fields gained, {len(self.lost_fields)} lost"
        tail = {"mixed": ": the signals disagree, weigh the fields above before using it",
                "hurts": "", "helps": "", "neutral": ""}[self.verdict]
        return f"{cer}; {fields}{tail}"



def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def judge(items: Sequence[CorpusItem], before: dict[str, OcrResult], after: dict[str, OcrResult],
          golden: GoldenStore | None = None) -> Evaluation:
    """Accuracy of both reads against the items' ground truth, the key fields lost, the golden diff."""
    rows: dict[str, list[tuple[str, str | None, Sequence[str], ImageAccuracy]]] = {"before": [], "after": []}
    lost: list[tuple[str, str]] = []
    gained: list[tuple[str, str]] = []
    for it in items:
        truth = [(t.text, t.poly) for t in it.truth]
        accs = {}
        for name, reads in (("before", before), ("after", after)):
            accs[name] = image_accuracy(truth, dict(it.fields), reads[it.id])
            rows[name].append((it.id, it.template, it.tags, accs[name]))
        for field, ok in sorted(accs["before"].fields.items()):
            now = accs["after"].fields.get(field, False)
            if ok and not now:
                lost.append((it.id, field))
            elif now and not ok:
                gained.append((it.id, field))
    return Evaluation(before=corpus_accuracy(rows["before"])["overall"],
                      after=corpus_accuracy(rows["after"])["overall"], lost_fields=tuple(lost),
                      gained_fields=tuple(gained), golden=_golden_diff(items, before, after, golden))


def _golden_diff(items: Sequence[CorpusItem], before: dict[str, OcrResult], after: dict[str, OcrResult],
                 store: GoldenStore | None) -> dict[str, Any] | None:
    if store is None:
        return None
    tol = Tolerances()
    judged, failing = [], {"before": 0, "after": 0}
    for it in items:
        golden = store.load(it.id)
        # A golden belongs to the exact image bytes: goldens of clean slips say nothing about darkened copies.
        if golden is None or (golden.image_sha256 and golden.image_sha256 != content_sha256(it)):
            continue
        judged.append(it.id)
        for name, reads in (("before", before), ("after", after)):
            failing[name] += len(compare_image(golden.result, reads[it.id], tol, dict(it.fields)).failures)
    return {"images": len(judged), "image_ids": judged, "failing_before": failing["before"],
            "failing_after": failing["after"]}
