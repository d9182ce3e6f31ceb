"""`ocr-harness corpus generate|import|validate|list`: make, import, check and inspect an image corpus."""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from harness.corpus.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from harness.util.errors import EXIT_OK, EXIT_USAGE, InternalError, UserError, environment_problem
from harness.corpus.generate import generate
from harness.corpus.templates import TEMPLATES
from harness.corpus.importers import ImportErrors, formats, import_corpus, parse_field_rules, summary
from harness.corpus.loader import load_corpus, validate_corpus
from harness.corpus.schema import schema_problems


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `corpus` and its subcommands."""
    corpus = sub.add_parser("corpus", help="generate, validate or list an image corpus")
    actions = corpus.add_subparsers(dest="corpus_command", required=True, parser_class=type(corpus))

    gen = actions.add_parser("generate", help="render synthetic Chinese bank slips with ground truth")
    gen.add_argument("--seed", type=int, required=True, help="same seed and version give the same bytes")
    gen.add_argument("--count", type=int, required=True, help="number of slips")
    gen.add_argument("--out", type=Path, required=True, help="output directory (created; must be empty)")
    gen.add_argument("--templates", nargs="+", metavar="NAME", default=None,
                     help="templates to cycle through (default: all); comma- or space-separated")
    gen.add_argument("--force", action="store_true", help="replace a corpus this command generated before")
    gen.set_defaults(func=_generate)

    imp = actions.add_parser(
        "import", help="convert PPOCRLabel / PaddleOCR det or rec / ICDAR 2015 labels into a corpus with manifest",
        description="Reads the labels, checks every line and image, then writes OUT/manifest.jsonl and OUT/images/ "
                    "all at once (nothing on any error). Key fields come from --field NAME=REGEX (group 1 or the "
                    "whole match, over each transcription); a field not found is reported per image.")
    imp.add_argument("labels", type=Path,
                     help="Label.txt (ppocrlabel), a det/rec label file, or a gt_*.txt file or folder (icdar2015)")
    imp.add_argument("--from", dest="fmt", required=True, choices=formats())
    imp.add_argument("--out", type=Path, required=True, help="corpus directory to write (must be new or empty)")
    imp.add_argument("--images", type=Path, default=None,
                     help="folder the image paths are relative to (default: next to the label file)")
    imp.add_argument("--field", action="append", default=[], metavar="NAME=REGEX",
                     help="a key field, e.g. amount='[¥￥]\\s*([\\d,]+\\.\\d{2})' (repeatable)")
    imp.add_argument("--fields", type=Path, default=None, metavar="FILE",
                     help="TOML or JSON mapping of field name = regex (--field overrides a name)")
    imp.add_argument("--subset", action="append", default=None, help="subset(s) to put every image in (default: full)")
    imp.add_argument("--force", action="store_true",
                     help="replace a corpus an earlier import wrote at --out (never a directory it did not write)")
    imp.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="the profile's max_image_pixels")
    imp.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="the profile's max_image_bytes")
    imp.set_defaults(func=_import)

    val = actions.add_parser("validate", help="check every item of a corpus; exit 2 listing all problems")
    val.add_argument("path", type=Path, help="corpus directory, manifest file, or a plain directory of images")
    val.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="the profile's max_image_pixels")
    val.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="the profile's max_image_bytes")
    val.set_defaults(func=_validate)

    lst = actions.add_parser("list", help="print the selected items: id, template, tags")
    lst.add_argument("path", type=Path)
    lst.add_argument("--subset", default=None)
    lst.add_argument("--tag", action="append", default=[], help="select items with this tag (repeatable: any)")
    lst.add_argument("--id", action="append", default=[], dest="ids", help="select this id (repeatable)")
    lst.set_defaults(func=_list)


def _bugs_outside_out(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A bug in a command that writes a corpus saves its traceback in the system temp dir, named on stderr.
    Never in --out: a stray file there would sit in the corpus, and make the next run refuse the directory."""
    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (UserError, InternalError):
            raise
        except Exception as e:
            left = f"; nothing written to {args.out}" if args.corpus_command == "import" else ""
            if (problem := environment_problem(e)) is not None:  # a full disk, no permission: not a bug
                raise UserError(problem + left) from e
            fd, name = tempfile.mkstemp(prefix=f"ocr-harness-corpus-{args.corpus_command}-traceback-", suffix=".txt")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("".join(traceback.format_exception(e)))
            # An import builds its corpus beside --out and renames it in last: a bug leaves nothing there.
            raise InternalError(f"{type(e).__name__}: {e}{left}", Path(name)) from e
    return run


@_bugs_outside_out
def _generate(args: argparse.Namespace) -> int:
    templates = tuple(t for item in (args.templates or TEMPLATES) for t in item.split(",") if t)
    # Recorded in generator.json, which gets committed: an absolute --out would name this machine's folders.
    out_text = args.out.name if args.out.is_absolute() else args.out.as_posix()
    argv = ["ocr-harness", "corpus", "generate", "--seed", str(args.seed), "--count", str(args.count),
            "--out", out_text] + (["--templates", *templates] if args.templates else [])
    slips = generate(args.seed, args.count, args.out, templates, force=args.force, command=shlex.join(argv))
    size = sum(len(s.data) for s in slips)
    print(f"wrote {len(slips)} slips ({size / 1e6:.1f} MB) and manifest.jsonl to {args.out}")
    return EXIT_OK


@_bugs_outside_out
def _import(args: argparse.Namespace) -> int:
    rules = parse_field_rules(args.field, args.fields)
    try:
        result = import_corpus(args.fmt, args.labels, args.out, images=args.images, rules=rules,
                               subsets=tuple(args.subset or ("full",)), force=args.force,
                               max_pixels=args.max_pixels, max_bytes=args.max_bytes)
    except ImportErrors as e:
        for line in e.problems:
            print(line, file=sys.stderr)
        raise
    for line in result.missing_fields:
        print(f"warning: {line}", file=sys.stderr)
    print(summary(result))
    if rules:
        found = result.images * len(rules) - len(result.missing_fields)
        print(f"key fields: {found} of {result.images * len(rules)} found ({', '.join(r.name for r in rules)})")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    problems = validate_corpus(args.path, max_pixels=args.max_pixels, max_bytes=args.max_bytes)
    manifest = args.path / "manifest.jsonl" if args.path.is_dir() else args.path
    if manifest.suffix == ".jsonl" and manifest.is_file():
        problems = schema_problems(manifest) + problems
    if problems:
        for line in problems:
            print(line)
        print(f"ocr-harness: error: {len(problems)} problem(s) in corpus {args.path}", file=sys.stderr)
        return EXIT_USAGE
    corpus = load_corpus(args.path)
    with_truth = sum(1 for item in corpus.items if item.truth)
    subsets = ", ".join(sorted(corpus.subsets)) or "-"
    print(f"OK: {len(corpus.items)} images, {with_truth} with ground truth, "
          f"{'manifest' if corpus.has_manifest else 'no manifest'}, subsets: {subsets}")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    corpus = load_corpus(args.path, subset=args.subset, tags=args.tag, ids=args.ids)
    for item in corpus.items:
        status = f"  PROBLEM: {item.problem}" if item.problem else ""
        print(f"{item.id}\t{item.template or '-'}\t{','.join(item.tags) or '-'}{status}")
    return EXIT_OK
