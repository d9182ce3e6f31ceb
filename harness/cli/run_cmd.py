"""`ocr-harness run`: the harness on a corpus, with the profile's checks; writes results and reports."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import Any

from harness.backends import with_service_url
from harness.checks import registry
from harness.config import find_config, load_profile
from harness.model.settings import Profile
from harness.run.shards.from_env import ShardSource, detect
from harness.util.errors import EXIT_CODES, EXIT_OK, EXIT_REGRESSION, UserError
from harness.run.pipeline.incomplete import write_not_started
from harness.util.portable import for_run
from harness.report.writer import REPORT_JSON, clear_run_files
from harness.execution.cancel import cancel_on_signals
from harness.run.pipeline.job import run_and_report
from harness.report.formats import add_flags as add_format_flags, asked_by, check_asked
from harness.report.markdown import write_step_summary


def add_profile_args(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that resolves a profile."""
    p.add_argument("--config", type=Path, help="harness.toml (default: nearest one upwards from the cwd)")
    p.add_argument("--profile", default="default", help="profile name in harness.toml (default: default)")
    p.add_argument("--corpus", help="corpus dir or manifest (overrides the profile)")
    p.add_argument("--subset", help="named subset of the manifest, e.g. smoke or full")
    p.add_argument("--tag", action="append", default=None, help="select images with this tag (repeatable)")
    p.add_argument("--id", dest="ids", action="append", default=None, help="select this image id (repeatable)")
    p.add_argument("--golden-dir", help="golden root dir (overrides the profile)")
    p.add_argument("--threads", type=int, help="engine.cpu_threads")
    p.add_argument("--rec-batch-size", type=int, help="engine.rec_batch_size")
    p.add_argument("--onednn", action=argparse.BooleanOptionalAction, default=None, help="engine.enable_mkldnn")
    p.add_argument("--repeats", type=int, help="checks.repeats")
    p.add_argument("--service-url", help="engine.http.url: the service endpoint (http backend profiles)")


def resolve_profile(args: argparse.Namespace) -> tuple[Profile, Path]:
    config = args.config if args.config is not None else find_config()
    if args.config is not None and not args.config.is_file():
        raise UserError(f"{args.config}: config file not found")
    catalogue = registry.catalogue()
    profile, base = load_profile(config, args.profile, catalogue)
    top: dict[str, Any] = {}
    if args.corpus is not None:
        top["corpus"] = str(Path(args.corpus).resolve())
        top["subset"] = None  # the profile's subset names belong to the profile's corpus
    if args.subset is not None:
        top["subset"] = args.subset or None
    if args.tag:
        top["tags"] = tuple(args.tag)
    if args.ids:
        top["ids"] = tuple(args.ids)
    if args.golden_dir is not None:
        top["golden_dir"] = str(Path(args.golden_dir).resolve())
    engine: dict[str, Any] = {}
    if args.threads is not None:
        engine["cpu_threads"] = args.threads
    if args.rec_batch_size is not None:
        engine["rec_batch_size"] = args.rec_batch_size
    if args.onednn is not None:
        engine["enable_mkldnn"] = args.onednn
    if getattr(args, "service_url", None) is not None:
        engine["tables"] = with_service_url(profile.engine, args.service_url).tables
    checks: dict[str, Any] = {}
    if getattr(args, "repeats", None) is not None:
        checks["repeats"] = args.repeats
    for spec in registry.specs():  # each check's own --<key>/--no-<key> flag
        if spec.flag is not None and getattr(args, spec.key or "", None) is not None:
            checks[spec.key or ""] = getattr(args, spec.key or "")
    if getattr(args, "workers", None) is not None:
        top["workers"] = args.workers
    executor: dict[str, Any] = {key: getattr(args, flag) for key, flag in
                                (("kind", "executor"), ("address", "ray_address"), ("slots", "ray_slots"))
                                if getattr(args, flag, None) is not None}
    if executor:
        top["executor"] = dataclasses.replace(profile.executor, **executor)
    profile = profile.replace(
        **top,
        engine=dataclasses.replace(profile.engine, **engine),
        checks=profile.checks.with_values(**checks),
    )
    profile.validate(catalogue)  # flags are validated exactly like the file
    return profile, base


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected K/N, e.g. 1/4") from None
    if not (1 <= k <= n):
        raise UserError(f"--shard {text!r}: need 1 <= K <= N")
    return k, n


def exit_codes_epilog() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the harness on a corpus and write results and reports",
                       epilog=exit_codes_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    add_profile_args(p)
    p.add_argument("--out", type=Path, default=Path("out"), help="output dir (default: ./out)")
    p.add_argument("--workers", type=int, help="parallel worker processes")
    p.add_argument("--executor", choices=("local", "ray"), help="executor.kind: local worker processes (default) "
                                                                "or Ray actors on a cluster (docs/scale-out.md)")
    p.add_argument("--ray-address", help="executor.address: local (a private cluster for this run), auto, or "
                                         "host:port of a cluster's GCS")
    p.add_argument("--ray-slots", type=int, help="executor.slots: calls in flight on the cluster (default: its "
                                                 "CPUs / the engine's threads)")
    p.add_argument("--shard", help="K/N: run only shard K of N (deterministic split by image id); auto: K/N from "
                                   "the engine's variables (GitHub OCR_HARNESS_SHARD, GitLab parallel, Kubernetes "
                                   "Indexed Job, SLURM array; docs/scale-out.md)")
    for spec in registry.specs():
        if spec.flag is not None:
            p.add_argument(spec.flag, dest=spec.key, action=argparse.BooleanOptionalAction, default=None,
                           help=spec.flag_help)
    add_format_flags(p)  # --html, --history: each report format's own (harness.report.formats)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Every way this ends leaves this run's reports in --out and none of an earlier run's."""
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: not a directory")
    clear_run_files(out)
    started, t0 = dt.datetime.now(dt.timezone.utc), time.perf_counter()
    try:
        return _run(args)
    except BaseException as e:
        if not (out / REPORT_JSON).is_file():  # stopped before the run had a plan (which writes its own)
            with contextlib.suppress(Exception):  # an unwritable --out must not hide the reason
                out.mkdir(parents=True, exist_ok=True)
                write_not_started(out, e, started, time.perf_counter() - t0, args.profile,
                                  for_run(checkout=Path.cwd()))
        raise


def _run(args: argparse.Namespace) -> int:
    profile, base = resolve_profile(args)
    source: ShardSource | None = detect(os.environ) if args.shard == "auto" else None
    shard = source.shard if source is not None else parse_shard(args.shard)
    if source is not None:
        print(f"shard {source.k}/{source.n} from {source.describe()}", file=sys.stderr)
    check_asked(asked_by(args))  # a --history path it cannot write to: exit 2 before anything runs
    with cancel_on_signals():  # SIGINT/SIGTERM: workers stopped, reports of what finished written, exit 130/143
        report = run_and_report(profile, base, args.out, shard=shard, formats=asked_by(args),
                                shard_source=source.to_dict() if source is not None else None)
    write_step_summary(report.laid_out(registry.layout()))  # only when $GITHUB_STEP_SUMMARY is set
    code = EXIT_OK if report.passed else EXIT_REGRESSION
    verdict = "PASS" if report.passed else "FAIL"
    try:
        print(f"{verdict}: {len(report.images)} images, profile {profile.name} -> {args.out}")
        for name, check in report.checks.items():
            mark = "skip" if check.skipped else ("ok" if check.passed else "FAIL")
            print(f"  {mark:>4}  {name}: {check.summary}")
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: the reports are on disk; the exit code still tells the verdict
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code
