"""`ocr-harness plan`: predicted wall time of a profile's run per phase, and the shard count for a budget."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness.checks import registry
from harness.config import find_config, load_profile
from harness.run.shards.costmodel import PhaseCost, fewest_shards, fit, most_shards, predict, shards_for_budget
from harness.model.settings import Profile
from harness.run.shards.ci_systems import ENGINES, Engine, engine
from harness.util.errors import EXIT_OK, EXIT_REGRESSION, UserError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    p.add_argument("--engine", choices=sorted(ENGINES),
                   help="with --budget: the engine the shards run on; its shard limit applies and the snippet its "
                        "job definition reads is printed (exit 1 when the budget needs more shards than it allows)")
    p.set_defaults(func=plan)


def plan(args: argparse.Namespace) -> int:
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
    if args.engine is not None and args.budget is None:
        raise UserError("--engine needs --budget: the engine's limit bounds the shard count a budget asks for")
    costs, missing = fit(report, profile)
    left = left_to_first_shard(report, missing)
    if left:
        raise UserError(f"{args.source}: shard {'/'.join(map(str, report['corpus']['shard']))} ran no "
                        f"{', '.join(left)} (model-level checks run on shard 1 only), so its times would leave them "
                        "out of every shard's plan; plan from shard 1's report.json or the merged one")
    print(f"plan for profile {profile.name}, from {measured_from(args.source, report)}")
    if missing:
        print(f"  not measured (run them once to plan them): {', '.join(missing)}")
    if args.engine is not None:
        return plan_engine(engine(args.engine), costs, profile, images, args.budget)
    if args.budget is not None:
        best = shards_for_budget(costs, profile, images, args.budget * 60)
        if best is None:
            print(f"no shard count up to {min(256, most_shards(images))} fits {args.budget:g} min for {images} images "
                  "(at most 256, and none left empty)")
            return EXIT_REGRESSION
        print(best.table())
        return EXIT_OK
    print(predict(costs, profile, images, args.shards).table())
    return EXIT_OK


def left_to_first_shard(report: dict[str, Any], missing: list[str]) -> list[str]:
    """The phases `missing` from `report` because it is a shard K > 1 and shard 1 runs them."""
    shard = report["corpus"].get("shard")
    if not shard:
        return []
    left = {spec.name for spec in registry.specs() if spec.left_to_first_shard(tuple(shard))}
    return [label for label in missing if label in left]


def measured_from(path: Path, report: dict[str, Any]) -> str:
    """Where the costs come from: the file, the run's profile, its images and selection, when, on what CPU."""
    corpus = report["corpus"]
    selection = corpus.get("selection") or {}
    of = f" of a {selection['images']}-image selection" if "images" in selection else ""
    subset = f", subset {corpus['subset']}" if corpus.get("subset") else ""
    shard = " (one shard: {}/{})".format(*corpus["shard"]) if corpus.get("shard") else ""
    cpu = (report.get("stack") or {}).get("cpu_model") or (report.get("environment") or {}).get("cpu_model")
    return (f"{path}: a run of profile {report.get('profile', {}).get('name')} measured "
            f"{report.get('started_at', 'at an unknown time')}, {corpus['selected']} images{of}{subset}{shard}, "
            f"{report['timing']['wall_s'] / 60:.2f} min" + (f", on {cpu}" if cpu else ""))


def plan_engine(e: Engine, costs: list[PhaseCost], profile: Profile, images: int, budget_min: float) -> int:
    """The fewest shards for the budget within the engine's limit, and the snippet its template reads."""
    best = fewest_shards(costs, profile, images, budget_min * 60)
    if best is None:
        most = predict(costs, profile, images, most_shards(images))
        print(f"no shard count fits {budget_min:g} min for {images} images: even {most.shards} shards (the most "
              f"that leave none empty) take {most.wall_s / 60:.2f} min for their largest shard")
        return EXIT_REGRESSION
    print(best.table())
    if best.shards > e.limit:
        print(f"{e.name}: {best.shards} shards are above the limit of {e.limit} ({e.limit_text}); "
              f"{e.over(best.shards)}")
        return EXIT_REGRESSION
    print(f"{e.name}: {best.shards} shards (limit {e.limit}: {e.limit_text}); put this in {e.where}:")
    print(e.snippet(best.shards))
    return EXIT_OK
