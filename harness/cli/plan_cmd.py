"""`ocr-harness plan`: predicted wall time of a profile's run per phase, and the shard count for a budget."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.checks import registry
from harness.config import find_config, load_profile
from harness.util.errors import EXIT_OK, EXIT_REGRESSION, UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="predict a profile's wall time per phase from a measured run",
                       description="Fits a fixed start and a per-image cost to every phase of a measured run "
                                   "(report.json's timing.phases) and predicts the profile's run for N images on "
                                   "K shards, or the fewest shards that meet --budget. Measure on the machine "
                                   "type the runs will use.")
    p.add_argument("--config", type=Path, help="harness.toml (default: nearest one upwards from the cwd)")
    p.add_argument("--profile", default="nightly", help="profile to plan (default: nightly)")
    p.add_argument("--from", dest="source", type=Path, default=Path("out/report.json"),
                   help="report.json of a measured run of the profile, ideally on a sample of the corpus "
                        "(default: out/report.json)")
    p.add_argument("--images", type=int, help="corpus size to plan for (default: the measured run's selection)")
    p.add_argument("--shards", type=int, default=1, help="shards run side by side (default: 1)")
    p.add_argument("--budget", type=float, help="minutes per shard: print the fewest shards that fit")
    p.set_defaults(func=plan)


def plan(args: argparse.Namespace) -> int:
    from harness.costmodel import fit, predict, shards_for_budget

    config = args.config if args.config is not None else find_config()
    profile, _ = load_profile(config, args.profile, registry.catalogue())
    try:
        report = json.loads(args.source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{args.source}: no measured run; run `ocr-harness run --profile {args.profile}` on a "
                        "sample first, or pass --from") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{args.source}: not a report.json ({e.msg} at line {e.lineno})") from None
    if not isinstance(report, dict) or "timing" not in report or "corpus" not in report:
        raise UserError(f"{args.source}: not a report.json of `ocr-harness run`")
    images = args.images if args.images is not None else int(report["corpus"]["selected"])
    if images < 1 or args.shards < 1:
        raise UserError("--images and --shards must be >= 1")
    costs, missing = fit(report, profile)
    measured_on = report.get("profile", {}).get("name")
    print(f"plan for profile {profile.name}, from {args.source} (profile {measured_on}, "
          f"{report['corpus']['selected']} images, {report['timing']['wall_s'] / 60:.2f} min)")
    if missing:
        print(f"  not measured (run them once to plan them): {', '.join(missing)}")
    if args.budget is not None:
        best = shards_for_budget(costs, profile, images, args.budget * 60)
        if best is None:
            print(f"no shard count up to 256 fits {args.budget:g} min for {images} images")
            return EXIT_REGRESSION
        print(best.table())
        return EXIT_OK
    print(predict(costs, profile, images, args.shards).table())
    return EXIT_OK
