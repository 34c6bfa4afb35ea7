"""The trigger contract: `Trigger` (what runs), `Fire` (what it calls), `TriggerState` (what
`GET /api/triggers` shows).

Implemented by the modules of this package; driven by the runtime's trigger manager.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from conv3n.model import JSON

TriggerStatus = Literal["starting", "running", "reconnecting", "stopped", "failed"]


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

    Attributes:
        status: starting, running, reconnecting (the broker went away), stopped, failed.
        fire_count: executions started by this trigger in this process.
        last_fire_at, next_fire_at: the last start; the next due time (scheduled triggers).
        last_error, last_error_at: the most recent failure (connection lost, bad message).
    """

    status: TriggerStatus = "starting"
    fire_count: int = 0
    last_fire_at: datetime | None = None
    next_fire_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


class Trigger(Protocol):
    """One trigger of one active workflow."""

    @property
    def state(self) -> TriggerState:
        """Its current state (updated as it runs)."""

    async def run(self, fire: Fire) -> None:
        """Run until cancelled: wait for events and `fire` each. Connection failures are
        retried with backoff (status `reconnecting`), never raised."""
