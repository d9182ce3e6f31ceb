"""`ocr-harness`: a thin shell over the core. Each command group lives in its own module with `register()`.

Exit codes: 0 all good, 1 a check failed, 2 usage or input error (one line on stderr, no traceback).
Internal bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from harness import __version__
from harness.errors import EXIT_USAGE, UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors: one line, exit 2
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    from harness.cli import audit_cmd, corpus_cmd, doctor_cmd, golden_cmd, models_cmd, report_cmd, run_cmd
    from harness.cli import init_cmd

    parser = _Parser(prog="ocr-harness", description="Deployment regression harness for PaddleOCR.")
    parser.add_argument("--version", action="version", version=f"ocr-harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in (run_cmd, models_cmd, doctor_cmd, corpus_cmd, golden_cmd, audit_cmd, report_cmd):
        module.register(sub)
    init_cmd.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except UserError as e:
        print(f"ocr-harness: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ocr-harness: interrupted", file=sys.stderr)
        return 130
