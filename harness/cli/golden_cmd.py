"""`ocr-harness golden status|refresh`: goldens are refreshed deliberately, reviewed, and only from reproducible output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.checks.golden_check import open_store, preload
from harness.cli.run_cmd import add_profile_args, resolve_profile
from harness.corpus.loader import content_sha256
from harness.environment import stack
from harness.execution.scheduler import infer_all
from harness.golden.approval import APPROVAL_NAME
from harness.golden.status import golden_status
from harness.run.goldens.approve import approve_full, record_gaps
from harness.run.goldens.core import check_may_write_goldens, golden_repeats, golden_stack, plan_golden_refresh
from harness.run.goldens.refresh import apply_refresh
from harness.run.pipeline.plan import plan
from harness.util import atomic
from harness.util.errors import EXIT_OK, EXIT_REGRESSION, UserError
from harness.util.progress import terminal_progress


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("golden", help="golden status and the reviewed refresh workflow")
    gsub = p.add_subparsers(dest="golden_command", required=True)
    st = gsub.add_parser("status", help="missing and orphaned goldens, stack mismatch")
    add_profile_args(st)
    st.set_defaults(func=status)
    rf = gsub.add_parser("refresh", help="dry run by default: show what would change; --yes applies")
    add_profile_args(rf)
    mode = rf.add_mutually_exclusive_group()
    mode.add_argument("--new-only", dest="mode", action="store_const", const="new-only", help="only images without a golden")
    mode.add_argument("--failed", dest="mode", action="store_const", const="failed", help="new images and failing goldens (default)")
    mode.add_argument("--all", dest="mode", action="store_const", const="all", help="every selected image")
    rf.add_argument("--yes", action="store_true", help="apply the refresh (default: dry run)")
    rf.add_argument("--force", action="store_true", help="also write non-reproducible outputs (needs --reason)")
    rf.add_argument("--reason", help="why a forced refresh is acceptable; recorded in _meta.json")
    rf.add_argument("--restamp", action="store_true",
                    help="also re-stamp goldens whose output is unchanged with the current stack (after a deliberate "
                         "stack change that kept every output); by default they keep the stack that made them")
    rf.add_argument("--out", type=Path, default=Path("out"), help="where the review report goes (default: ./out)")
    rf.set_defaults(func=refresh, mode="failed")


def status(args: argparse.Namespace) -> int:
    profile, base = resolve_profile(args)
    p = plan(profile, base)
    profile = p.profile  # with the names its model dirs declare
    store = open_store(profile, base)
    preload(store, [it.id for it in p.items])  # a corrupt golden is exit 2 here too
    st = golden_status(store, [it.id for it in p.items], p.corpus.selection_is_complete,
                       stack(profile.golden_engine(), p.dirs.file_hashes()),
                       image_sha256={it.id: content_sha256(it) for it in p.items})
    print(st.summary())
    for image_id in st.missing:
        print(f"  missing   {image_id}")
    for image_id in st.orphaned:
        print(f"  orphaned  {image_id}  ({store.path_for(image_id)})")
    for image_id in st.changed_images:
        print(f"  changed   {image_id}: image changed since its golden was made")
    for rel in st.leftovers:
        print(f"  leftover  {rel}: temp file of an interrupted refresh ({store.directory / rel})")
    for diff in st.stack_differences:
        if isinstance(diff.golden, list) and isinstance(diff.current, list):  # ISA flags: what moved
            print(f"  stack     {diff.brief()} (+ this stack only, - the goldens' only)")
        else:
            print(f"  stack     {diff.key}: golden {diff.golden!r} -> current {diff.current!r}")
    if st.likely_cause:
        print(f"  note      {st.likely_cause}")
    records = record_gaps(p)
    for gap in records.gaps:
        print(f"  record    {gap}")
    for note in records.notes:
        print(f"  note      {note}")
    incomplete = st.missing or st.orphaned or st.changed_images or st.leftovers or records.gaps
    return EXIT_REGRESSION if incomplete else EXIT_OK


def refresh(args: argparse.Namespace) -> int:
    if args.force and not args.reason:
        raise UserError("--force needs --reason: say why non-reproducible output may become a golden")
    profile, base = resolve_profile(args)
    check_may_write_goldens(profile)
    p = plan(profile, base, log_dir=args.out)
    profile = p.profile  # with the names its model dirs declare
    args.out.mkdir(parents=True, exist_ok=True)
    store = open_store(profile, base)
    preload(store, [it.id for it in p.items])
    outcomes = infer_all(p, profile.golden_engine(), "refresh", golden_repeats(profile), profile.workers,
                         terminal_progress())
    for i, o in sorted(outcomes.items()):
        if not o.ok:
            print(f"  error     {i}: {o.error}")
    refresh_plan = plan_golden_refresh(store, outcomes, {it.id: it for it in p.items}, args.mode, profile)
    review = refresh_plan.to_markdown()
    atomic.write_text(args.out / "golden-review.md", review)
    print(review)
    if not args.yes:
        print(f"dry run: nothing written; review in {args.out / 'golden-review.md'}; add --yes to apply "
              f"(the approval record {APPROVAL_NAME}, speed and BN reference, is kept as it is)")
        return EXIT_OK
    # The approval record speaks for the profile's own selection: a refresh narrowed on the command line is partial.
    narrowed = [f"--{flag}" for flag, value in (("id", args.ids), ("tag", args.tag), ("subset", args.subset),
                                                  ("corpus", args.corpus)) if value]
    partial_why = (f"the selection was narrowed by {', '.join(narrowed)}; only a full approval of the profile's own "
                   "selection, --all without them, rewrites it") if narrowed else ""
    written = apply_refresh(refresh_plan, store, golden_stack(p), force_reason=args.reason if args.force else None,
                            restamp_unchanged=args.restamp)
    print(f"wrote {len(written)} goldens to {store.directory}")
    approval = approve_full(p, outcomes, args.mode == "all" and not narrowed, partial_why)
    for line in approval.lines:
        print(line)
    incomplete = approval.incomplete()
    if incomplete:
        print(incomplete, file=sys.stderr)
    return EXIT_OK if all(o.ok for o in outcomes.values()) and not incomplete else EXIT_REGRESSION
