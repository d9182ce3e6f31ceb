"""`ocr-harness bn reestimate`: re-estimate a model's BatchNorm statistics for a target domain, and judge it.

MODEL_DIR is one Paddle inference model dir (old-format inference.pdmodel + inference.pdiparams); whether it is
the det or the rec model comes from its inference.yml (DBPostProcess / CTCLabelDecode, or a *_det / *_rec model
name), or --kind. The pipeline's other model is the bundled one, or the profile's with --profile P (whose engine
settings then run capture and evaluation; default: the default engine). Writes OUT: the same program and yml, new
params, and reestimate.json. Verdict on held-out target images: helps, neutral, hurts, or mixed (CER and key
fields disagree; the fields gained and lost are listed by image). Exit 0 for helps or neutral, 1 for hurts or
mixed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

from harness.backends.paddle.child import ChildError
from harness.checks import registry
from harness.config import find_config, load_profile
from harness.execution.cancel import cancel_on_signals
from harness.model.settings import DEFAULT_BACKEND, EngineSettings
from harness.util.errors import EXIT_OK, EXIT_REGRESSION, UserError
from harness.util.values import printable
from harness.model.results import canonical_json
from harness.golden.store import GoldenStore
from harness.run.bn_repair.reestimate import MODES, Request, evaluate_reestimated, reestimate


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bn", help="BatchNorm repair: re-estimate statistics for a target domain",
                       description="BatchNorm tools.")
    bn = p.add_subparsers(dest="bn_command", required=True, parser_class=type(p))
    r = bn.add_parser("reestimate", help="re-estimate BN statistics from a reference corpus to a target corpus",
                      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="the det or rec inference model dir")
    r.add_argument("--reference", type=Path, required=True, metavar="CORPUS",
                   help="corpus the model reads well (its statistics are the starting point)")
    r.add_argument("--target", type=Path, required=True, metavar="CORPUS",
                   help="corpus of the new domain (needs ground truth on the evaluation images)")
    r.add_argument("--out", type=Path, required=True, metavar="DIR", help="new model dir (must not exist, or empty)")
    r.add_argument("--mode", choices=MODES, default="delta",
                   help="delta (default): move the stored statistics by the reference-to-target change; "
                        "replace: the target's pooled statistics (PreciseBN)")
    r.add_argument("--layers", default=None, metavar="auto|all|NAMES",
                   help="auto: layers whose reference-to-target change is flagged (delta's default); all "
                        "(replace's default); or comma-separated BN layer names (see `ocr-harness audit`)")
    r.add_argument("--images", type=int, default=8, metavar="N", help="calibration images per corpus (default 8)")
    r.add_argument("--eval-images", type=int, default=4, metavar="N",
                   help="held-out target images for before vs after (default 4)")
    r.add_argument("--kind", choices=("det", "rec"), default=None, help="override the kind read from inference.yml")
    r.add_argument("--golden", type=Path, default=None, metavar="DIR",
                   help="golden dir: also diff before and after against goldens of the evaluation images")
    r.add_argument("--golden-profile", default="release", help="the golden set's profile (default release)")
    r.add_argument("--json", action="store_true", help="print reestimate.json instead of the summary")
    _profile_args(r)
    r.set_defaults(func=run_reestimate, traceback_in_out=False)  # --out must stay absent or empty for a retry
    e = bn.add_parser("evaluate", help="a re-estimated model dir against its original on another corpus",
                      description="Before (ORIGINAL) vs after (NEW_DIR, written by `bn reestimate`) on images of "
                                  "CORPUS outside NEW_DIR's calibration images: e.g. a dark-adapted model on clean "
                                  "slips. Same metrics and verdict as `bn reestimate`; exit 1 when it hurts or is "
                                  "mixed.")
    e.add_argument("new_dir", type=Path, metavar="NEW_DIR", help="a model dir written by `bn reestimate`")
    e.add_argument("--original", type=Path, required=True, metavar="MODEL_DIR",
                   help="the model dir it was re-estimated from (checked against reestimate.json's hashes)")
    e.add_argument("--corpus", type=Path, required=True, metavar="CORPUS", help="corpus with ground truth")
    e.add_argument("--images", type=int, default=4, metavar="N", help="evaluation images (default 4)")
    e.add_argument("--golden", type=Path, default=None, metavar="DIR", help="golden dir for a golden diff")
    e.add_argument("--golden-profile", default="release", help="the golden set's profile (default release)")
    e.add_argument("--json", action="store_true", help="print the evaluation as JSON")
    _profile_args(e)
    e.set_defaults(func=run_evaluate)


def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None, metavar="P",
                   help="run capture and evaluation with this profile's engine settings and model dirs (the "
                        "re-estimated model replaces its det or rec); default: the default engine, bundled pack")
    p.add_argument("--config", type=Path, default=None, help="harness.toml (default: nearest one upwards)")


def engine_settings(profile: str | None, config: Path | None) -> EngineSettings:
    """The profile's engine settings, its model dirs made absolute (they are relative to its harness.toml)."""
    if profile is None:
        if config is not None:
            raise UserError("--config needs --profile")
        return EngineSettings()
    if config is not None and not config.is_file():
        raise UserError(f"{config}: config file not found")
    loaded, base = load_profile(config or find_config(), profile, registry.catalogue())
    engine = loaded.engine
    if engine.backend != DEFAULT_BACKEND:
        raise UserError(f"--profile {profile}: its backend is {engine.backend}; bn reestimate captures and "
                        f"re-estimates Paddle programs, so it needs a {DEFAULT_BACKEND} profile")

    def absolute(d: str | None) -> str | None:
        return None if d is None else str((base / d).resolve())

    return dataclasses.replace(engine, det_model_dir=absolute(engine.det_model_dir),
                               rec_model_dir=absolute(engine.rec_model_dir))


def _layers(text: str | None) -> str | tuple[str, ...] | None:
    if text is None or text in ("auto", "all"):
        return text
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise UserError(f"--layers {text!r}: give auto, all or comma-separated layer names")
    return names


@contextlib.contextmanager
def _bn_run(model_dir: Path) -> Iterator[None]:
    """SIGINT/SIGTERM unwind (the work dir beside --out and a half-written --out are removed on the way, as a
    run's reports are written); a model that does not load or a child that dies is one line naming the model."""
    with cancel_on_signals():
        try:
            yield
        except ChildError as e:  # a truncated .pdiparams: Paddle's message is many lines, its first says it all
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise UserError(f"{model_dir}: {printable(first)[:500]}") from None


def run_reestimate(args: argparse.Namespace) -> int:
    with _bn_run(args.model_dir):
        return _reestimate(args)


def _reestimate(args: argparse.Namespace) -> int:
    settings = engine_settings(args.profile, args.config)
    outcome = reestimate(Request(model_dir=args.model_dir, reference=args.reference, target=args.target,
                                 out=args.out, mode=args.mode, layers=_layers(args.layers), images=args.images,
                                 eval_images=args.eval_images, kind=args.kind, golden=args.golden,
                                 golden_profile=args.golden_profile, settings=settings, profile=args.profile))
    rec = outcome.record
    if args.json:
        print(canonical_json(rec), end="")
    else:
        engine = f"profile {args.profile}" if args.profile else "default engine"
        lines = [f"bn reestimate ({rec['kind']}, mode {rec['mode']}, layers {rec['layers_requested']}, {engine}): "
                 f"{len(rec['split']['calibration_reference'])} reference + "
                 f"{len(rec['split']['calibration_target'])} target calibration images"]
        for layer in rec["layers"]:
            what = "re-estimated" if layer["chosen"] else "kept"
            lines.append(f"  {layer['name']:<16} change reference->target {layer['change_score']:.2f} "
                         f"(shift {layer['change_shift']:.2f}, ln var ratio {layer['change_scale']:+.2f}): {what}")
        check = rec["self_check"]
        lines.append(f"self-check: only BN statistics differ ({check['tensors_compared']} tensors compared); "
                     f"target statistics reproduced within {check['max_relative_error']:.1e} (limit {check['rtol']:g})")
        lines.append(outcome.evaluation.render())
        lines.append(f"wrote {outcome.out} (timings: " + ", ".join(f"{k} {v:g}" for k, v in rec["timings_s"].items())
                     + ")")
        print("\n".join(lines))
    return EXIT_OK if outcome.evaluation.passed else EXIT_REGRESSION


def run_evaluate(args: argparse.Namespace) -> int:
    with _bn_run(args.new_dir):
        return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    if args.images < 1:
        raise UserError(f"--images {args.images}: must be >= 1")
    settings = engine_settings(args.profile, args.config)
    store = GoldenStore(args.golden, args.golden_profile) if args.golden else None
    record, evaluation = evaluate_reestimated(args.new_dir, args.original, args.corpus, images=args.images,
                                              golden=store, settings=settings)
    if args.json:
        print(canonical_json({"kind": record["kind"], "mode": record["mode"], "layers_chosen": record["layers_chosen"],
                              "corpus": str(args.corpus), "evaluation": evaluation.to_dict()}), end="")
    else:
        print(f"bn evaluate {args.new_dir} ({record['kind']}, {record['mode']}, layers "
              f"{', '.join(record['layers_chosen'])}) against {args.original} on {args.corpus}\n"
              + evaluation.render())
    return EXIT_OK if evaluation.passed else EXIT_REGRESSION
