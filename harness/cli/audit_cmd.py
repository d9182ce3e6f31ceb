from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Adds this command group's subcommands (filled in by its module's owner)."""
