"""The trigger contract: `Trigger` (what runs), `Fire` (what it calls), `TriggerState` (what
`GET /api/triggers` shows), `Checkpoint` (how its state is kept) and `Clock` (its time).

Implemented by the modules of this package; driven by the runtime's trigger manager.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from conv3n.model import JSON

TriggerStatus = Literal["starting", "running", "reconnecting", "standby", "stopped", "failed"]


class Fire(Protocol):
    """Start one execution of the trigger's workflow.

    Returns its execution id once the execution is durably stored (so a broker message may be
    acknowledged). `key` is an idempotency key: a second fire with the same key starts nothing
    and returns the first execution's id (a redelivered message, a due time another process
    already fired).
    """

    async def __call__(self, payload: JSON, *, key: str | None = None) -> str: ...


@dataclass(slots=True)
class TriggerState:
    """A running trigger's state, as `GET /api/triggers` reports it.

    The manager restores `last_fire_at` and `fire_count` from storage before `run` (so a
    scheduled trigger knows which due times a downtime missed) and stores them again on every
    `Checkpoint`.

    Attributes:
        status: starting, running, reconnecting (the broker went away), standby (another
            process runs this trigger), stopped, failed.
        fire_count: executions started by this trigger (kept across restarts for scheduled
            and file triggers; since the start of this process for queue triggers).
        last_fire_at, next_fire_at: the last start (the due time, for scheduled triggers); the
            next due time (scheduled triggers).
        last_error, last_error_at: the most recent failure (connection lost, bad message).
    """

    status: TriggerStatus = "starting"
    fire_count: int = 0
    last_fire_at: datetime | None = None
    next_fire_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


Checkpoint = Callable[[TriggerState], Awaitable[None]]
"""Keep a trigger's state durably (the manager stores it in `trigger_state`); a trigger calls it
after each fire. It never raises: a failed write is retried at the next checkpoint."""


async def no_checkpoint(state: TriggerState) -> None:
    """A checkpoint that keeps nothing (a trigger run outside the manager)."""


class Clock(Protocol):
    """Where triggers read the time and wait (the engine's `Clock` satisfies it)."""

    def now(self) -> datetime:
        """The current UTC time."""

    async def sleep(self, seconds: float) -> None:
        """Wait this long."""


class SystemClock:
    """Real time; `sleep` is `asyncio.sleep`."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Wait on the event loop."""
        await asyncio.sleep(seconds)


class Trigger(Protocol):
    """One trigger of one active workflow."""

    @property
    def state(self) -> TriggerState:
        """Its current state (updated as it runs)."""

    async def run(self, fire: Fire) -> None:
        """Run until cancelled: wait for events and `fire` each. Connection failures are
        retried with backoff (status `reconnecting`), never raised."""
