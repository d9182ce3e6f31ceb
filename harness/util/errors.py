"""The one user-error channel, and every exit code the CLI returns.

A mistake in input or configuration ends as one line and exit code 2; a bug (internal error) exits 3 with its
traceback saved to a file; a run stopped by a signal exits 128 + the signal number, after writing its reports.
"""

from __future__ import annotations

import errno
import signal
from pathlib import Path

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "every check passed"),
    (EXIT_REGRESSION, "a check failed (a regression)"),
    (EXIT_USAGE, "usage or input error (one line on stderr)"),
    (EXIT_INTERNAL, "internal error, a bug: reports marked incomplete, traceback saved to a file named on stderr"),
    (EXIT_SIGINT, "stopped by SIGINT (Ctrl-C): workers stopped, reports marked incomplete"),
    (EXIT_SIGTERM, "stopped by SIGTERM (a cancelled CI job): workers stopped, reports marked incomplete"),
)


# What the machine, not the harness, got wrong: a full disk or quota, no permission, a read-only file system,
# no file descriptors left, a failing device. Exit 2 naming the path and the errno, never "a bug".
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EMFILE,
                                errno.ENFILE, errno.EIO, errno.ENAMETOOLONG, errno.ELOOP})


def environment_problem(e: BaseException) -> str | None:
    """One line naming the path and the errno when `e` is an environment error, else None."""
    if not isinstance(e, OSError) or e.errno not in ENVIRONMENT_ERRNOS:
        return None
    where = e.filename if e.filename is not None else "(a file)"
    if isinstance(where, str) and len(where) > 300:  # a name too long to use is too long to print whole
        where = where[:300] + "..."
    also = f" -> {e.filename2}" if e.filename2 is not None else ""
    return f"{where}{also}: {e.strerror or 'error'} (errno {errno.errorcode.get(e.errno, e.errno)})"


class UserError(Exception):
    """Bad config, bad input file, missing model: the message is shown as-is, without a traceback."""


class ImageError(Exception):
    """One corpus image cannot be used; that image fails, the run goes on."""


class Cancelled(BaseException):
    """The run was stopped by a signal. A BaseException, like KeyboardInterrupt, so that no `except Exception`
    on the way up swallows it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"cancelled by {self.signal_name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class InternalError(Exception):
    """A bug surfaced by the run, after its reports were written as far as they could be."""

    def __init__(self, message: str, traceback_path: Path) -> None:
        super().__init__(message)
        self.traceback_path = traceback_path
