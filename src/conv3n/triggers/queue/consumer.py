"""What every broker's queue trigger shares: state, the reconnect loop, firing one message.

A broker module subclasses `QueueConsumer` and implements `consume(url)`: connect, subscribe,
call `connected()`, then `deliver(...)` each message and acknowledge it once that says so.
`consume` raises when the connection is lost; `run` (driven by the trigger manager) reconnects
with exponential backoff and jitter until cancelled.
"""

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Generic, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from conv3n import errors
from conv3n.model import JSON
from conv3n.triggers import base
from conv3n.triggers.queue import config, payload

C = TypeVar("C", bound=config.QueueConfig)
Outcome = Literal["stored", "retry", "refused"]
Secret = Callable[[str], Awaitable[str]]

log = logging.getLogger("conv3n.triggers.queue")

HEALTHY_S = 5.0
"""A connection that stayed up this long resets the backoff to `reconnect_min_ms`."""


def backoff_delay(attempt: int, min_ms: int, max_ms: int, rng: random.Random) -> float:
    """Seconds to wait before attempt `attempt` (1-based): doubling from `min_ms` up to
    `max_ms`, with "equal jitter" (half fixed, half random) so restarted processes spread out.

    >>> 0.1 <= backoff_delay(1, 200, 30_000, random.Random(1)) <= 0.2
    True
    """
    ceiling = min(max_ms, min_ms << min(max(attempt - 1, 0), 32)) / 1000
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def checkpoint() -> None:
    """Raise CancelledError if this task was cancelled and a library swallowed it.

    On Python 3.11, `asyncio.wait_for` (used inside redis-py and others) drops a cancellation
    that races with the awaited call's completion (CPython gh-86296); the task then keeps
    `cancelling() > 0`. Broker loops call this before every blocking read.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def describe(error: BaseException) -> str:
    """An error as one line for `last_error`."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    name = type(error).__name__
    return f"{name}: {text}"[:500] if text else name


async def _not_running(payload: JSON, *, key: str | None = None) -> str:
    raise RuntimeError("deliver() is called only while run() runs")


class QueueConsumer(Generic[C]):
    """A queue trigger (implements `conv3n.triggers.Trigger`)."""

    def __init__(self, settings: C, *, secret: Secret, rng: random.Random | None = None):
        self.config = settings
        self._secret = secret
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._state = base.TriggerState()
        self._entered: Counter[str] = Counter()
        self._changed = asyncio.Event()
        self._fire_failures = 0
        self.acked = 0
        """Messages acknowledged to the broker after their fire (diagnostics and tests)."""
        self._connected_at: float | None = None
        self._fire: base.Fire = _not_running
        self._hidden: set[str] = set()
        self._broker = settings.broker

    @property
    def state(self) -> base.TriggerState:
        """Its current state (updated as it runs)."""
        return self._state

    def entered(self, status: base.TriggerStatus) -> int:
        """How many times the trigger has entered `status` (tests and diagnostics)."""
        return self._entered[status]

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until `condition()` holds; it is checked on every state change."""
        while not condition():
            changed = self._changed
            await changed.wait()

    def _status(self, status: base.TriggerStatus, error: BaseException | str | None = None) -> None:
        if error is not None:
            text = error if isinstance(error, str) else describe(error)
            for secret in self._hidden:
                text = text.replace(secret, "***")
            self._state.last_error = text
            self._state.last_error_at = datetime.now(UTC)
        if status != self._state.status:
            self._state.status = status
            self._entered[status] += 1
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def connected(self) -> None:
        """Called by `consume` once subscribed: the trigger is running again."""
        self._connected_at = time.monotonic()
        self._status("running")
        self._log(logging.INFO, "queue trigger running")

    def _log(self, level: int, event: str, **fields: object) -> None:
        """A log line with the broker and `fields` as its structured fields (SPEC §9)."""
        log.log(level, event, extra={"broker": self._broker, **fields})

    def report(self, error: BaseException | str) -> None:
        """Record a problem that does not stop the trigger (a bad or oversized message)."""
        self._status(self._state.status, error)
        self._log(logging.WARNING, "queue trigger message problem", error=self._state.last_error)

    async def url(self) -> str:
        """The broker URL, from `url` or the `credential` secret (read at every connect).

        Its password never reaches last_error, whatever a library puts in its messages.
        """
        if self.config.url is not None:
            url = self.config.url
        else:
            url = await self._secret(self.config.credential or "")  # the model requires one
        password = urlsplit(url).password
        if password:
            self._hidden = {p for p in (password, unquote(password)) if len(p) >= 3}
        return url

    async def run(self, fire: base.Fire) -> None:
        """Run until cancelled; connection failures are retried with backoff, never raised."""
        self._fire = fire
        attempt = 0
        try:
            while True:
                self._connected_at = None
                try:
                    await self.consume(await self.url())
                    error: BaseException | str = "the broker closed the connection"
                # A trigger outlives every broker, library or secret failure: each is shown in
                # last_error and retried (cancellation is a BaseException and passes through).
                except Exception as failure:  # noqa: BLE001
                    error = failure
                # A connection that failed right after connecting (a bug, a broker refusing the
                # subscription) must not reconnect in a tight loop: only a healthy one resets.
                healthy = self._connected_at is not None and (
                    time.monotonic() - self._connected_at >= HEALTHY_S
                )
                attempt = 1 if healthy else attempt + 1
                self._status("reconnecting", error)
                delay = backoff_delay(
                    attempt, self.config.reconnect_min_ms, self.config.reconnect_max_ms,
                    self._rng,
                )
                self._log(
                    logging.WARNING,
                    "queue trigger disconnected",
                    error=self._state.last_error,
                    retry_in_s=round(delay, 3),
                )
                await asyncio.sleep(delay)
        finally:
            self._status("stopped")

    async def consume(self, url: str) -> None:
        """Connect, subscribe, deliver until the connection is lost (then raise)."""
        raise NotImplementedError

    async def deliver(self, message: JSON, *, key: str | None) -> Outcome:
        """Fire one message and say what the broker should do with it.

        `stored`: the execution is durably stored; acknowledge the message. `retry`: `fire`
        failed (the database is down, ...); return the message to the broker, then await
        `after_failed_fire()`. `refused`: the runtime refused this input for good
        (`InvalidInput`); acknowledge or reject it without redelivery, as for an oversized one.
        The error of the last two is in last_error.
        """
        try:
            await self._fire(message, key=key)
        except errors.InvalidInput as refusal:
            self.report(f"the message was refused and will not be retried: {describe(refusal)}")
            return "refused"
        except Exception as failure:  # noqa: BLE001 - any other failure returns the message
            self._fire_failures += 1
            self._status(self._state.status, failure)
            self._log(logging.WARNING, "queue trigger could not fire", error=self._state.last_error)
            return "retry"
        self._fire_failures = 0
        self._state.fire_count += 1
        self._state.last_fire_at = datetime.now(UTC)
        self._notify()
        return "stored"

    async def after_failed_fire(self) -> None:
        """Wait (growing with consecutive failures) before the message comes back."""
        await asyncio.sleep(
            backoff_delay(
                self._fire_failures, self.config.reconnect_min_ms, self.config.reconnect_max_ms,
                self._rng,
            )
        )

    def acknowledged(self) -> None:
        """Called by a broker module once the broker has a message's acknowledgement."""
        self.acked += 1
        self._notify()

    def oversized(self, size: int) -> bool:
        """True (and reported) when a message of `size` bytes exceeds the limit."""
        try:
            payload.check_size(size, self.config.max_message_bytes)
        except payload.MessageTooLarge as error:
            self.report(str(error))
            return True
        return False
