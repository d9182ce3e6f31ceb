"""`ocr-harness report merge`: shard runs combined into the report of one unsharded run (see
harness.run.shards.merge)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.checks import registry
from harness.config import find_config
from harness.util.errors import EXIT_OK, EXIT_REGRESSION, UserError
from harness.report.formats import add_flags as add_format_flags, asked_by, check_asked, needs_goldens
from harness.report.markdown import write_step_summary
from harness.run.shards.merge import merge_shards
from harness.run.shards.merged_files import checkout_settings, corpus_root_for, write_merged
from harness.run.shards.refusals import validate_shards
from harness.run.shards.shard_run import ShardRun


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="work with the reports of finished runs")
    rsub = p.add_subparsers(dest="report_command", required=True)
    m = rsub.add_parser("merge", help="combine the outputs of `run --shard K/N` (all K of one N) into one report",
                        description="Combine shard runs into the report an unsharded run writes: images in corpus "
                                    "order, every check recomputed over the whole selection. Refuses shards of "
                                    "different profiles, stacks or corpora, overlapping shards and missing shards.")
    m.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="output directories of the shard runs")
    m.add_argument("--out", type=Path, required=True, help="where the merged results and reports go")
    add_format_flags(m)  # --html, --history: each report format's own (harness.report.formats)
    m.add_argument("--config", type=Path, help="this checkout's harness.toml: the shards' profile there gives the "
                                                "golden store (orphaned goldens, the HTML golden boxes) and the "
                                                "picture limits; a shard's own paths are never used "
                                                "(default: nearest upwards)")
    m.add_argument("--golden-dir", type=Path, help="golden root dir (overrides the profile's)")
    m.add_argument("--allow-mixed-stacks", action="store_true",
                   help="merge shards whose stacks differ (CPU model, threads, package versions; never the model "
                        "files): report.json then lists each shard's stack under `stacks` and names each image's")
    m.set_defaults(func=merge)


def merge(args: argparse.Namespace) -> int:
    check_asked(asked_by(args))  # a --history path it cannot write to: exit 2 before anything is read
    out = args.out.resolve()
    for d in args.dirs:
        if d.resolve() == out:
            raise UserError(f"--out {args.out} is one of the shard directories; merge into a new directory")
    if args.config is not None and not args.config.is_file():
        raise UserError(f"{args.config}: config file not found")
    mixed = args.allow_mixed_stacks
    shards = validate_shards([ShardRun.read(d) for d in args.dirs], allow_mixed_stacks=mixed)
    first = shards[0].report
    settings = checkout_settings(first, args.config if args.config is not None else find_config(), registry.catalogue(),
                                 args.golden_dir)
    store = settings.store
    complete = bool(first.corpus["selection"].get("complete"))
    golden = first.checks.get("golden")
    if store is None and complete and golden is not None and not golden.skipped:
        print("ocr-harness: warning: golden store not found from here; orphaned goldens are not judged "
              "(run the merge in the checkout, or pass --config or --golden-dir)", file=sys.stderr)
    merged = merge_shards(shards, registry.specs(),
                          stored_goldens=store.ids() if store is not None and complete else None,
                          allow_mixed_stacks=mixed)
    pictures = needs_goldens(asked_by(args))  # a format that draws the slips (report.html)
    corpus = corpus_root_for(first, args.config) if pictures else None
    if pictures and corpus is None:
        print(f"ocr-harness: warning: corpus {first.corpus['root']!r} is not in this checkout; report.html "
              "shows no pictures (run the merge in the checkout, or pass --config)", file=sys.stderr)
    write_merged(args.out, merged, registry.layout(), formats=asked_by(args), store=store,
                 corpus_root=corpus, max_pixels=settings.max_pixels, max_bytes=settings.max_bytes)
    report = merged.report
    write_step_summary(report.laid_out(registry.layout()))  # only when $GITHUB_STEP_SUMMARY is set
    verdict = "PASS" if report.passed else "FAIL"
    print(f"{verdict}: {len(report.images)} images from {len(shards)} shards, "
          f"profile {report.profile_name} -> {args.out}")
    for name, check in report.checks.items():
        mark = "skip" if check.skipped else ("ok" if check.passed else "FAIL")
        print(f"  {mark:>4}  {name}: {check.summary}")
    sys.stdout.flush()
    return EXIT_OK if report.passed else EXIT_REGRESSION
