"""`ocr-harness audit`: eval-mode / BatchNorm checks of inference model dirs, without running PaddleOCR.

Static audit always; `--probe` adds the behavioural batch-independence probe; `--drift IMAGES` runs the images
through the PaddleOCR pipeline (the model dir as det, or rec with --kind rec; the bundled pack for the other),
captures what the model really receives and compares its BN inputs with the stored statistics, per channel and
per layer. Exit 0 when every requested check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path
from typing import Any

from harness.checks.bn.capture import capture_inputs
from harness.checks.bn.channels import DEFAULT_THRESHOLD, MIN_IMAGES, DriftReport
from harness.checks.bn.measure import measure_drift
from harness.model.inference import ImageRequest
from harness.model.settings import EngineSettings
from harness.backends.paddle.pack import resolve_model_dirs
from harness.util.errors import EXIT_OK, EXIT_REGRESSION, UserError
from harness.backends.paddle.audit import audit_model_dir
from harness.backends.paddle.child import locate_model
from harness.model.results import canonical_json
from harness.checks.probe import Kind, Mode, probe_model_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("audit", help="eval-mode / BatchNorm audit of inference model dirs (no OCR run)",
                       description=__doc__)
    p.add_argument("model_dirs", nargs="+", type=Path, metavar="MODEL_DIR",
                   help="Paddle inference model dir (inference.pdmodel or inference.json + inference.pdiparams)")
    p.add_argument("--min-variance", type=float, default=None,
                   help="flag BN variances below this (default: 1e-6)")
    p.add_argument("--json", action="store_true", help="print the canonical JSON report instead of tables")
    p.add_argument("--probe", action="store_true", help="also run the batch-independence probe (child process)")
    p.add_argument("--train-mode-fault", action="store_true",
                   help="planted fault: probe the model after TranslatedLayer.train(); the probe must FAIL")
    p.add_argument("--kind", choices=("det", "rec"), default=None,
                   help="model kind for --probe and --drift (default: guessed from the input shape; det for drift)")
    p.add_argument("--seed", type=int, default=0, help="seed of the probe's inputs")
    p.add_argument("--drift", nargs="+", type=Path, default=None, metavar="IMAGE",
                   help="image files or dirs (whole documents): run them through the pipeline and compare the BN "
                        "inputs the model really gets with its stored statistics")
    p.add_argument("--drift-threshold", type=float, default=None, help="flag layers scoring above this (default 2.5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _validate(args)
    for model_dir in args.model_dirs:
        locate_model(model_dir)  # every dir checked before any child starts
    images = _image_files(args.drift) if args.drift else None
    docs: list[dict[str, Any]] = []
    texts: list[str] = []
    passed = True
    for model_dir in args.model_dirs:
        doc: dict[str, Any] = {}
        report = audit_model_dir(model_dir, min_variance=args.min_variance)
        doc["audit"], passed = report.to_dict(), passed and report.passed
        texts.append(report.render())
        if args.probe:
            mode: Mode = "train" if args.train_mode_fault else "eval"
            probe = probe_model_dir(model_dir, kind=args.kind, mode=mode, seed=args.seed)
            doc["probe"], passed = probe.to_dict(), passed and probe.passed
            note = "\n  (planted train-mode fault: a FAIL here shows the probe catches it)" if mode == "train" else ""
            texts.append(probe.render() + note)
        if images is not None:
            threshold = DEFAULT_THRESHOLD if args.drift_threshold is None else args.drift_threshold
            drift = _drift(model_dir, args.kind or "det", images, threshold)
            doc["bn_drift"], passed = drift.to_dict(), passed and drift.passed
            texts.append(drift.render() + "\n  limits: PP-OCRv4's, measured once (a bare model dir has no calibration "
                         "of its own; a golden set's full approval calibrates bn_drift for its model)")
        docs.append(doc)
    if args.json:
        print(canonical_json({"passed": passed, "models": docs}), end="")
    else:
        print("\n\n".join(texts))
    return EXIT_OK if passed else EXIT_REGRESSION


def _validate(args: argparse.Namespace) -> None:
    if args.min_variance is not None and not (math.isfinite(args.min_variance) and args.min_variance >= 0):
        raise UserError(f"--min-variance {args.min_variance}: must be a finite number >= 0")
    if args.train_mode_fault and not args.probe:
        raise UserError("--train-mode-fault needs --probe")
    if args.drift_threshold is not None and not (math.isfinite(args.drift_threshold) and args.drift_threshold > 0):
        raise UserError(f"--drift-threshold {args.drift_threshold}: must be a finite number > 0")
    if args.drift_threshold is not None and not args.drift:
        raise UserError("--drift-threshold needs --drift IMAGE...")


def _drift(model_dir: Path, kind: Kind, images: list[Path], threshold: float) -> DriftReport:
    """The pipeline with `model_dir` as its `kind` model, one image per call, capturing what that model gets."""
    path = str(model_dir.resolve())
    settings = EngineSettings(det_model_dir=path) if kind == "det" else EngineSettings(rec_model_dir=path)
    dirs = resolve_model_dirs(settings, Path.cwd())
    requests = [ImageRequest(f"{i:04d}", str(path)) for i, path in enumerate(images)]
    with tempfile.TemporaryDirectory(prefix="ocr-harness-bn-") as tmp:
        capture = capture_inputs(settings, dirs, requests, Path(tmp))
        if capture.failed:
            raise UserError(f"--drift: {images[int(capture.failed[0][0])]}: {capture.failed[0][1]}")
        files = capture.files(kind)
        if not files:
            raise UserError(f"--drift: the pipeline fed the {kind} model nothing (no text found in the images?)")
        return measure_drift(model_dir, files, kind=kind, images=len(capture.images), threshold=threshold)


def _image_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"{path}: no such image file or directory")
    if len(files) < MIN_IMAGES:
        raise UserError(f"--drift: {len(files)} images found in {', '.join(map(str, paths))}; the per-channel "
                        f"limits hold for samples of {MIN_IMAGES} or more")
    return files
