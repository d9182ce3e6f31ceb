"""`ocr-harness speed baseline`: measure and approve a profile's speed and memory (harness.checks.speed).

A full approval (`golden refresh --all --yes`) writes the baseline of the refreshed profile too; this command is
for the rest: a profile that shares another backend's goldens, or a deliberate re-approval after a stack change
that kept every output.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.run_cmd import add_profile_args, resolve_profile
from harness.execution.scheduler import infer_all
from harness.run.goldens.approve import approve_speed, describe
from harness.run.pipeline.plan import plan
from harness.util.errors import EXIT_OK
from harness.util.progress import terminal_progress


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("speed", help="the approved speed and memory baseline of a profile")
    ssub = p.add_subparsers(dest="speed_command", required=True)
    b = ssub.add_parser("baseline", help="run the profile's main pass and record its latency, yardstick and peak "
                                         "memory in the golden set's _approval.json")
    add_profile_args(b)
    b.add_argument("--out", type=Path, default=Path("out"), help="where worker logs go (default: ./out)")
    b.set_defaults(func=baseline)


def baseline(args: argparse.Namespace) -> int:
    profile, base = resolve_profile(args)
    p = plan(profile, base, log_dir=args.out)
    profile = p.profile  # with the names its model dirs declare
    args.out.mkdir(parents=True, exist_ok=True)
    outcomes = infer_all(p, profile.engine, "main", profile.checks.repeats, profile.workers, terminal_progress())
    made, path = approve_speed(p, outcomes)
    print(f"speed baseline of profile {profile.name}: {describe(made)} -> {path}")
    return EXIT_OK
