"""`ocr-harness models prepare|verify|list`: the offline model pack."""

from __future__ import annotations

import argparse

from harness import modelpack
from harness.cli.run_cmd import add_profile_args, resolve_profile
from harness.errors import EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="prepare, verify or list the offline model pack")
    msub = p.add_subparsers(dest="models_command", required=True)
    for name, func, what in (("prepare", prepare, "verify the bundled files and materialise PaddleX model dirs"),
                             ("verify", verify, "check every model file against its pinned sha256"),
                             ("list", list_models, "show the model dirs the profile will load")):
        sp = msub.add_parser(name, help=what)
        add_profile_args(sp)
        sp.set_defaults(func=func)


def prepare(args: argparse.Namespace) -> int:
    profile, base = resolve_profile(args)
    dirs = modelpack.resolve_model_dirs(profile.engine, base, profile.model_cache)
    print(f"det: {dirs.det}\nrec: {dirs.rec}")
    return EXIT_OK


def verify(args: argparse.Namespace) -> int:
    profile, base = resolve_profile(args)
    found = modelpack.verify_sources()
    for pf in modelpack.PACK_FILES:
        print(f"ok  {pf.sha256[:16]}  {found[pf.source]}")
    dirs = modelpack.resolve_model_dirs(profile.engine, base, profile.model_cache)
    if dirs.source == "bundled":
        modelpack.verify_prepared(dirs.det.parent)
        print(f"ok  prepared pack {dirs.det.parent}")
    return EXIT_OK


def list_models(args: argparse.Namespace) -> int:
    profile, base = resolve_profile(args)
    dirs = modelpack.resolve_model_dirs(profile.engine, base, profile.model_cache)
    e = profile.engine
    print(f"source: {dirs.source} ({modelpack.PACK_ID} from {modelpack.CARRIER} {modelpack.CARRIER_VERSION})")
    print(f"det  {e.det_model_name:<22} {dirs.det}")
    print(f"rec  {e.rec_model_name:<22} {dirs.rec}")
    for name, digest in dirs.file_hashes().items():
        print(f"     {name:<28} {digest}")
    return EXIT_OK
