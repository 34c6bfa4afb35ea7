"""`GracefulServer`: uvicorn's Server as `conv3n serve` stops on SIGTERM or SIGINT.

uvicorn stops accepting connections, waits for running requests (up to its
`timeout_graceful_shutdown`, after which it cancels them) and then re-raises the signal,
so the process would die *by* the signal. conv3n parks what is still running for the next
start and exits 0 instead, and the grace period counts from the first signal; a second
signal stops waiting at once.
"""

import time
from collections.abc import Callable
from types import FrameType

import uvicorn


class GracefulServer(uvicorn.Server):
    """uvicorn's Server that remembers when it was asked to stop and does not re-raise."""

    stop_requested_at: float | None = None
    on_stop: Callable[[], None] | None = None
    """Called once, at the first signal (`serve --processes` passes the stop on)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: shut down gracefully; a second one: stop waiting."""
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()
            if self.on_stop is not None:
                self.on_stop()
        elif self.should_exit:
            self.force_exit = True
        self.should_exit = True
