"""`ocr-harness models prepare|verify|list|export|serve-config`: the offline model packs (Paddle and ONNX)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from harness.backends import backend, identity, resolve_engine, resolve_models
from harness.backends.onnxruntime import export as ex
from harness.backends.paddle import pack as modelpack
from harness.cli.run_cmd import add_profile_args, resolve_profile
from harness.run.pipeline.export_agreement import agreement
from harness.util.errors import EXIT_OK, EXIT_REGRESSION, UserError
from harness.backends.http.serving import pipeline_template, serving_config, write_serving_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("models", help="prepare, verify or list the offline model pack")
    msub = p.add_subparsers(dest="models_command", required=True)
    for name, func, what in (("prepare", prepare, "verify the bundled files and materialise PaddleX model dirs"),
                             ("verify", verify, "check every model file against its pinned sha256"),
                             ("list", list_models, "show the model dirs the profile will load")):
        sp = msub.add_parser(name, help=what)
        add_profile_args(sp)
        sp.set_defaults(func=func)
    sp = msub.add_parser("export", help="convert a Paddle model dir to ONNX (paddle2onnx) and prove it: ONNX Runtime "
                                        "loads it and it reads the corpus like Paddle, within parity tolerances")
    sp.add_argument("model_dir", type=Path, help="a Paddle model dir (inference.pdmodel/.json, .pdiparams, .yml)")
    sp.add_argument("--to", choices=["onnx"], required=True, help="target format")
    sp.add_argument("--out", type=Path, help="where the ONNX model dir goes (default: MODEL_DIR-onnx beside it)")
    sp.add_argument("--opset", type=int, default=14, help="ONNX opset (default: 14)")
    add_profile_args(sp)
    sp.set_defaults(func=export)
    sp = msub.add_parser("serve-config", help="write a PaddleX serving pipeline config (paddlex --serve --pipeline "
                                              "FILE) that runs the profile's models and settings")
    sp.add_argument("--out", type=Path, default=Path("OCR.yaml"), help="output file (default: ./OCR.yaml)")
    sp.add_argument("--paddlex-defaults", action="store_true",
                    help="keep PaddleX's own detection limits (to see what a default service reads differently)")
    add_profile_args(sp)
    sp.set_defaults(func=serve_config)


def prepare(args: argparse.Namespace) -> int:
    profile, base = resolve_profile(args)
    _, dirs = resolve_engine(profile.engine, base, profile.model_cache)
    print(f"det: {dirs.det}\nrec: {dirs.rec}")
    return EXIT_OK


def verify(args: argparse.Namespace) -> int:
    profile, base = resolve_profile(args)
    packs = backend(profile.engine.backend).packs
    for pack in packs:
        found = pack.verify_sources()
        for source, sha256 in pack.pinned().items():
            print(f"ok  {sha256[:16]}  {found[source]}")
    dirs = resolve_models(profile.engine, base, profile.model_cache)
    for pack in packs:
        if dirs.source == pack.source:
            pack.verify_prepared(dirs.det.parent)
            print(f"ok  prepared {pack.label} {dirs.det.parent}")
    return EXIT_OK


def list_models(args: argparse.Namespace) -> int:
    profile, base = resolve_profile(args)
    spec = backend(profile.engine.backend)
    if spec.models_note is not None:
        print(f"source: {spec.models_note}")
        return EXIT_OK
    e, dirs = resolve_engine(profile.engine, base, profile.model_cache)
    pack = next((p for p in spec.packs if p.source == dirs.source), spec.packs[-1])
    print(f"source: {dirs.source} ({pack.describe()})")
    # The names are the dirs' own (their inference.yml), whatever the profile says.
    print(f"det  {e.det_model_name:<22} {dirs.det}")
    print(f"rec  {e.rec_model_name:<22} {dirs.rec}")
    rec = identity.read_identity(dirs.rec, "rec")
    print(f"     rec input {list(e.rec_image_shape or ())}, dictionary {rec.dictionary_size} entries")
    for name, digest in dirs.file_hashes().items():
        print(f"     {name:<28} {digest}")
    return EXIT_OK


def export(args: argparse.Namespace) -> int:
    profile, base = resolve_profile(args)
    source = ex.check_source(args.model_dir)
    kind = ex.model_kind(source)
    if (missing := ex.missing_tool()) is not None:
        raise UserError(missing)
    out = (args.out or source.parent / f"{source.name}-onnx").expanduser().resolve()
    if out == source:
        raise UserError(f"--out {out}: must differ from the model dir")
    print(f"export {kind} model {source} -> {out / ex.ONNX_FILE} (opset {args.opset})")
    steps: tuple[tuple[str, Callable[[], ex.StepResult]], ...] = (
        ("convert", lambda: ex.convert(source, out, args.opset)),
        ("load", lambda: ex.load_check(out / ex.ONNX_FILE)))
    for name, step in steps:
        result = step()
        if not result.ok:
            print(f"FAIL  {name}: {result.message}")
            return EXIT_REGRESSION
        print(f"  ok  {name}: {result.message}")
    check = agreement(profile, base, source, out, kind)
    print(f"{'  ok' if check.passed else 'FAIL'}  parity: {check.summary}")
    for image_id in check.failed_images[:10]:
        print(f"        {image_id}: {check.per_image[image_id].summary}")
    return EXIT_OK if check.passed else EXIT_REGRESSION


def serve_config(args: argparse.Namespace) -> int:
    profile, base = resolve_profile(args)
    engine = profile.engine
    dirs = modelpack.resolve_model_dirs(engine, base, profile.model_cache)
    config = serving_config(pipeline_template(), identity.resolved(engine, dirs), dirs, cpu_threads=profile.engine.resolved_threads(),
                            paddlex_defaults=args.paddlex_defaults)
    write_serving_config(args.out, config)
    print(f"wrote {args.out}; start: paddlex --serve --pipeline {args.out} --host 127.0.0.1 --port 8080")
    return EXIT_OK
