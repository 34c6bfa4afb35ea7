"""Scheduled triggers (cron, interval): the pure due-time arithmetic and the loop that fires.

`due(schedule, since=..., now=...)` is pure — no clock reads, no I/O — so catch-up, DST and
leap days are tested without an event loop. `ScheduledTrigger` runs a `Schedule` on a `Clock`:
every due time starts one execution whose idempotency key names the due time, so processes
sharing a database start exactly one execution per due time.

Catch-up applies to due times that passed while no process ran the trigger (a restart, a
downtime): `none` skips them, `last` fires the most recent one, `all` fires each (at most
`max_catch_up`, the most recent). While the trigger runs, every due time fires, even when the
loop is late.
"""

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from conv3n.errors import Unavailable
from conv3n.model import JSON
from conv3n.triggers.base import Checkpoint, Clock, Fire, TriggerState, no_checkpoint

CatchUp = Literal["none", "last", "all"]
DEFAULT_MAX_CATCH_UP = 100
_RETRY_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Schedule(Protocol):
    """The due times of a scheduled trigger, as aware UTC datetimes."""

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after `moment`."""

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last due time at or before `moment` (None if there is none)."""

    def previous(self, moment: datetime) -> datetime | None:
        """The last due time strictly before `moment`."""


@dataclass(frozen=True, slots=True)
class Due:
    """What to do now: fire `times` (oldest first), then wait for `next_at`.

    Attributes:
        missed: due times in the window, including those the catch-up policy skips
            (counted up to `max_catch_up + 1`).
    """

    times: tuple[datetime, ...]
    next_at: datetime
    missed: int


def due(
    schedule: Schedule,
    *,
    since: datetime,
    now: datetime,
    catch_up: CatchUp = "all",
    max_catch_up: int = DEFAULT_MAX_CATCH_UP,
) -> Due:
    """The due times in (`since`, `now`] to fire under `catch_up`, and the next one after now."""
    window: list[datetime] = []
    moment = schedule.latest_at_or_before(now)
    while moment is not None and moment > since and len(window) <= max_catch_up:
        window.append(moment)
        moment = schedule.previous(moment)
    window.reverse()
    if catch_up == "none":
        times: list[datetime] = []
    elif catch_up == "last":
        times = window[-1:]
    else:
        times = window[-max_catch_up:]
    return Due(tuple(times), schedule.next_after(now), len(window))


def scheduled_at(moment: datetime) -> str:
    """A due time as `$input.scheduled_at`: ISO 8601 in UTC with milliseconds and `Z`."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ScheduledTrigger:
    """Fires an execution at each due time of a schedule, until cancelled.

    `state.last_fire_at` (restored by the manager before `run`) is where catch-up starts;
    without one, only due times after the start fire.
    """

    def __init__(
        self,
        kind: str,
        schedule: Schedule,
        *,
        workflow_id: str,
        trigger_key: str,
        catch_up: CatchUp,
        max_catch_up: int = DEFAULT_MAX_CATCH_UP,
        clock: Clock,
        checkpoint: Checkpoint = no_checkpoint,
    ):
        self.kind = kind
        self.schedule = schedule
        self.workflow_id = workflow_id
        self.trigger_key = trigger_key
        self.catch_up: CatchUp = catch_up
        self.max_catch_up = max_catch_up
        self._clock = clock
        self._checkpoint = checkpoint
        self._state = TriggerState()

    @property
    def state(self) -> TriggerState:
        """Status, fire count, last and next due time."""
        return self._state

    def key(self, moment: datetime) -> str:
        """The idempotency key of a due time: one execution per due time, in any process."""
        return f"{self.kind}:{self.workflow_id}:{self.trigger_key}:{moment.isoformat()}"

    async def run(self, fire: Fire) -> None:
        """Catch up per the policy, then fire each due time as it comes, until cancelled."""
        state = self._state
        state.status = "running"
        now = self._clock.now()
        since = state.last_fire_at or now
        policy = self.catch_up if state.last_fire_at is not None else "all"
        while True:
            plan = due(
                self.schedule,
                since=since,
                now=now,
                catch_up=policy,
                max_catch_up=self.max_catch_up,
            )
            state.next_fire_at = plan.next_at
            for moment in plan.times:
                await self._fire(fire, moment)
            since, policy = now, "all"
            await self._checkpoint(state)
            await self._clock.sleep(max(0.0, (plan.next_at - self._clock.now()).total_seconds()))
            now = max(self._clock.now(), plan.next_at)

    async def _fire(self, fire: Fire, moment: datetime) -> None:
        """Start the execution of one due time; a database outage is retried (the key makes a
        retry safe), any other failure is recorded and the due time is given up."""
        payload: JSON = {"scheduled_at": scheduled_at(moment)}
        attempt = 0
        while True:
            try:
                await fire(payload, key=self.key(moment))
            except Unavailable as exc:
                self._failed(exc)
                await self._checkpoint(self._state)
                await self._clock.sleep(_RETRY_S[min(attempt, len(_RETRY_S) - 1)])
                attempt += 1
                continue
            except Exception as exc:  # noqa: BLE001 - one failed start must not stop the schedule
                self._failed(exc)
                break
            self._state.fire_count += 1
            self._state.status = "running"
            break
        self._state.last_fire_at = moment
        with contextlib.suppress(Exception):
            await self._checkpoint(self._state)

    def _failed(self, exc: Exception) -> None:
        self._state.last_error = error_text(exc)
        self._state.last_error_at = self._clock.now()


def error_text(exc: BaseException) -> str:
    """A failure as one line for `last_error` (a conv3n error's message, else the exception)."""
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {message}" if not hasattr(exc, "message") else str(message)
