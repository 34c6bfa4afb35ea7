"""The scheduled trigger's loop on a manual clock: keys name due times, a database outage is
retried on the same due time, any other failure is recorded and the schedule goes on, and the
state is checkpointed after each fire."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conv3n.errors import Unavailable, WorkflowNotFound
from conv3n.model import JSON
from conv3n.triggers import TriggerState, factory
from conv3n.triggers.interval import IntervalSchedule
from conv3n.triggers.schedule import ScheduledTrigger

START = datetime(2026, 6, 1, 8, 0, 0, 10_000, tzinfo=UTC)


class Enough(Exception):
    """Ends a test's run after a number of waits."""


class ManualClock:
    """Time moves only when the trigger waits; the test ends after `waits` waits."""

    def __init__(self, moment: datetime, waits: int):
        self.moment = moment
        self.waits = waits
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.moment

    async def sleep(self, seconds: float) -> None:
        if len(self.slept) >= self.waits:
            raise Enough
        self.slept.append(seconds)
        self.moment += timedelta(seconds=seconds)


class Recorder:
    def __init__(self, failures: list[Exception] | None = None):
        self.failures = list(failures or [])
        self.fired: list[tuple[JSON, str | None]] = []

    async def __call__(self, payload: JSON, *, key: str | None = None) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.fired.append((payload, key))
        return f"e{len(self.fired)}"


def trigger(clock: ManualClock, saved: list[TriggerState] | None = None) -> ScheduledTrigger:
    async def checkpoint(state: TriggerState) -> None:
        if saved is not None:
            saved.append(TriggerState(**{f: getattr(state, f) for f in state.__slots__}))

    return ScheduledTrigger(
        "interval",
        IntervalSchedule(1000),
        workflow_id="wf",
        trigger_key="0",
        catch_up="all",
        clock=clock,
        checkpoint=checkpoint,
    )


async def run(scheduled: ScheduledTrigger, fire: Any) -> None:
    with pytest.raises(Enough):
        await scheduled.run(fire)


async def test_each_due_time_fires_once_with_a_key_naming_it():
    clock = ManualClock(START, waits=3)
    fire = Recorder()
    saved: list[TriggerState] = []
    await run(trigger(clock, saved), fire)
    assert fire.fired == [
        (
            {"scheduled_at": f"2026-06-01T08:00:0{s}.000Z"},
            f"interval:wf:0:2026-06-01T08:00:0{s}+00:00",
        )
        for s in (1, 2, 3)
    ]
    assert clock.slept == pytest.approx([0.99, 1.0, 1.0])
    assert saved[-1].fire_count == 3
    assert saved[-1].next_fire_at == datetime(2026, 6, 1, 8, 0, 4, tzinfo=UTC)


async def test_a_database_outage_is_retried_on_the_same_due_time():
    clock = ManualClock(START, waits=4)
    fire = Recorder([Unavailable("the database is unavailable: down")])
    scheduled = trigger(clock)
    await run(scheduled, fire)
    keys = [key for _, key in fire.fired]
    assert keys[0] == "interval:wf:0:2026-06-01T08:00:01+00:00"  # retried, not skipped
    assert len(keys) == len(set(keys))
    assert scheduled.state.last_error == "the database is unavailable: down"


async def test_another_failure_is_recorded_and_the_schedule_goes_on():
    clock = ManualClock(START, waits=3)
    fire = Recorder([WorkflowNotFound("no workflow has id 'wf'")])
    scheduled = trigger(clock)
    await run(scheduled, fire)
    assert [p for p, _ in fire.fired] == [
        {"scheduled_at": "2026-06-01T08:00:02.000Z"},
        {"scheduled_at": "2026-06-01T08:00:03.000Z"},
    ]
    assert scheduled.state.last_error == "no workflow has id 'wf'"
    assert scheduled.state.fire_count == 2
    assert scheduled.state.last_fire_at == datetime(2026, 6, 1, 8, 0, 3, tzinfo=UTC)


async def test_a_late_loop_fires_every_due_time_it_overslept():
    class LateClock(ManualClock):
        async def sleep(self, seconds: float) -> None:
            await super().sleep(seconds + 2.5 if not self.slept else seconds)

    clock = LateClock(START, waits=2)
    fire = Recorder()
    await run(trigger(clock), fire)
    assert [p["scheduled_at"][17:19] for p, _ in fire.fired] == ["01", "02", "03", "04"]


async def test_catch_up_starts_from_the_restored_last_fire():
    clock = ManualClock(START, waits=1)
    fire = Recorder()
    scheduled = trigger(clock)
    scheduled.state.last_fire_at = START - timedelta(seconds=3, milliseconds=10)
    await run(scheduled, fire)
    assert [p["scheduled_at"][17:19] for p, _ in fire.fired] == ["58", "59", "00", "01"]


def test_the_factory_builds_cron_and_interval_triggers_and_refuses_webhooks():
    clock = ManualClock(START, waits=0)
    built = factory.build(
        {"type": "cron", "expression": "0 9 * * *", "timezone": "Asia/Tokyo", "key": "morning"},
        workflow_id="wf",
        index=2,
        clock=clock,
    )
    assert isinstance(built, ScheduledTrigger)
    assert built.key(START) == "cron:wf:morning:2026-06-01T08:00:00.010000+00:00"
    with pytest.raises(Exception, match=r"triggers\[0\]: webhook triggers are not run"):
        factory.build({"type": "webhook", "path": "x"}, workflow_id="wf", index=0)
