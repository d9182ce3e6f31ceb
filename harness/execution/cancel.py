"""Stopping a run on SIGINT or SIGTERM (Ctrl-C, a cancelled CI job) without losing what finished.

The first signal kills every worker process (none may outlive the harness or start afterwards), cuts every
request to a service in flight (a silent service would otherwise hold the run for its timeout), and raises
`Cancelled` in the main thread, which unwinds to the code that writes the incomplete reports. A second signal
ends the process at once, as the default handler would.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any

from harness.backends import specs
from harness.execution.worker import allow_workers, cancel_workers
from harness.util.errors import Cancelled

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def cancel_on_signals() -> Iterator[None]:
    """Installs the handlers for the duration of a run (main thread only); restores the previous ones after."""
    previous: dict[signal.Signals, Any] = {}
    cancels = [s.cancel for s in specs() if s.cancel is not None]  # gathered now: the handler only calls
    allows = [s.allow for s in specs() if s.allow is not None]

    def handler(signum: int, frame: FrameType | None) -> None:
        for s in previous:
            signal.signal(s, signal.SIG_DFL)
        cancel_workers()
        for cancel in cancels:  # a request blocked on a silent service returns now, not at its timeout
            cancel()
        raise Cancelled(signum)

    allow_workers()
    for allow in allows:
        allow()
    for s in SIGNALS:
        if signal.getsignal(s) is not signal.SIG_IGN:  # ignored on purpose (nohup, a background job): keep it so
            previous[s] = signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        allow_workers()
        for allow in allows:
            allow()
