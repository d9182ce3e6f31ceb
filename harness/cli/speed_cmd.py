"""`ocr-harness speed baseline`: measure and approve a profile's speed and memory (harness.checks.speed).

A full approval (`golden refresh --all --yes`) writes the baseline of the refreshed profile too; this command is
for the rest: a profile that shares another backend's goldens, or a deliberate re-approval after a stack change
that kept every output.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from harness.checks.builtin import speed_stack
from harness.checks.golden_check import open_store
from harness.checks.speed import make_baseline
from harness.cli.run_cmd import add_profile_args, resolve_profile
from harness.golden.approval import Approval, SpeedBaseline, load_approval, write_approval
from harness.model.inference import ImageOutcome
from harness.runner import RunPlan, infer_all, plan, terminal_progress
from harness.util.errors import EXIT_OK, UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("speed", help="the approved speed and memory baseline of a profile")
    ssub = p.add_subparsers(dest="speed_command", required=True)
    b = ssub.add_parser("baseline", help="run the profile's main pass and record its latency, yardstick and peak "
                                         "memory in the golden set's _approval.json")
    add_profile_args(b)
    b.add_argument("--out", type=Path, default=Path("out"), help="where worker logs go (default: ./out)")
    b.set_defaults(func=baseline)


def approve_speed(p: RunPlan, outcomes: Mapping[str, ImageOutcome]) -> tuple[SpeedBaseline, Path]:
    """Writes the baseline of `p`'s profile from its main-pass outcomes; every image must have run."""
    failed = sorted(i for i, o in outcomes.items() if not o.ok)
    if failed:
        raise UserError(f"speed baseline not written: {len(failed)} image(s) did not run ({', '.join(failed[:5])}); "
                        "a baseline is made only from a run where every image ran")
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    made = make_baseline(outcomes, speed_stack(p), stamp)
    store = open_store(p.profile, p.base)
    approval = load_approval(store.directory) or Approval(p.profile.golden_name)
    return made, write_approval(store.directory, approval.with_speed(p.profile.name, made))


def describe(made: SpeedBaseline) -> str:
    ratios = sorted(s.ratio for s in made.images.values())
    peak = "not measured" if made.peak_rss_kib is None else f"{made.peak_rss_kib / 1024:.0f} MiB"
    return (f"{len(made.images)} images, median cost/yardstick ratio {ratios[len(ratios) // 2]:.1f} "
            f"({made.clock} seconds), "
            f"peak RSS {peak}")


def baseline(args: argparse.Namespace) -> int:
    profile, base = resolve_profile(args)
    p = plan(profile, base, log_dir=args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    outcomes = infer_all(p, profile.engine, "main", profile.checks.repeats, profile.workers, terminal_progress())
    made, path = approve_speed(p, outcomes)
    print(f"speed baseline of profile {profile.name}: {describe(made)} -> {path}")
    return EXIT_OK
