"""`ocr-harness`: a thin shell over the core. Each command group lives in its own module with `register()`.

Exit codes (harness.util.errors.EXIT_CODES): 0 all good, 1 a check failed, 2 usage or input error (one line on
stderr, no traceback), 3 internal error (a bug: one line on stderr naming the file that holds the traceback),
130 / 143 stopped by SIGINT / SIGTERM (after writing the reports of what finished, marked incomplete).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from harness import __version__
from harness.backends import builtin as builtin_backends
from harness.backends import registry as backend_registry
from harness.checks import builtin, registry
from harness.cli import (audit_cmd, bn_cmd, corpus_cmd, doctor_cmd, golden_cmd, init_cmd, models_cmd, plan_cmd,
                         report_cmd, run_cmd, speed_cmd)
from harness.cli.run_cmd import exit_codes_epilog
from harness.util.errors import (EXIT_INTERNAL, EXIT_SIGINT, EXIT_USAGE, Cancelled, InternalError, UserError,
                                 environment_problem)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own usage errors: one line, exit 2
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    registry.load(builtin)  # the composition root: the harness's checks and the plug-ins, before any flag
    backend_registry.load(builtin_backends)  # and the backends, before a profile is read
    parser = _Parser(prog="ocr-harness", description="Deployment regression harness for PaddleOCR.",
                     epilog=exit_codes_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ocr-harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in (run_cmd, models_cmd, doctor_cmd, corpus_cmd, golden_cmd, audit_cmd, report_cmd, plan_cmd,
                   init_cmd, speed_cmd, bn_cmd):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args: argparse.Namespace | None = None
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except UserError as e:
        print(f"ocr-harness: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Cancelled as e:
        out = getattr(args, "out", None)
        print(f"ocr-harness: {e}" + (f"; reports of what finished, marked incomplete, in {out}" if out else ""),
              file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("ocr-harness: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except InternalError as e:
        print(f"ocr-harness: internal error (a bug): {e}; traceback in {e.traceback_path}", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as e:  # a bug outside a run: the traceback goes to a file, one line here says where
        if (problem := environment_problem(e)) is not None:  # a full disk, no permission: not a bug
            print(f"ocr-harness: error: {problem}", file=sys.stderr)
            return EXIT_USAGE
        # A command whose --out is a result that must not exist yet (a model dir) keeps its traceback elsewhere.
        out = getattr(args, "out", None) if getattr(args, "traceback_in_out", True) else None
        path = _save_traceback(e, out)
        print(f"ocr-harness: internal error (a bug): {type(e).__name__}: {e}; traceback in {path}", file=sys.stderr)
        return EXIT_INTERNAL


def _save_traceback(e: BaseException, out: object) -> Path:
    text = "".join(traceback.format_exception(e))
    if isinstance(out, Path):
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "traceback.txt").write_text(text, encoding="utf-8")
            return out / "traceback.txt"
        except OSError:
            pass
    fd, name = tempfile.mkstemp(prefix="ocr-harness-traceback-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(name)
