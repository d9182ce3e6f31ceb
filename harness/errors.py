"""The one user-error channel: a mistake in input or configuration ends as one line and exit code 2."""

from __future__ import annotations

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_USAGE = 2


class UserError(Exception):
    """Bad config, bad input file, missing model: the message is shown as-is, without a traceback."""


class ImageError(Exception):
    """One corpus image cannot be used; that image fails, the run goes on."""
