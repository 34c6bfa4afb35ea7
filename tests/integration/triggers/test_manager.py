"""The trigger manager on SQLite: activation starts an interval trigger and deactivation stops
it, GET /api/triggers shows its state, catch-up after a downtime fires what each policy says,
and two runtimes sharing a PostgreSQL database run each trigger once and hand it over."""

import asyncio
import itertools
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conv3n.model import Workflow
from conv3n.runtime import Settings
from conv3n.runtime.service import Runtime
from conv3n.runtime.triggers import TriggerManager, fingerprint
from conv3n.storage import Database, schema, workflows
from conv3n.storage import triggers as stored_triggers
from conv3n.triggers import interval
from tests.conftest import require_service
from tests.integration.triggers.conftest import (
    eventually,
    inputs,
    parse_time,
    settings_for,
    workflow,
)

TICK = {"type": "interval", "every_ms": 100, "catch_up": "all"}


def consecutive(times: list[datetime], step_ms: int) -> bool:
    return all(b - a == timedelta(milliseconds=step_ms) for a, b in itertools.pairwise(times))


def due_times(found: list[Any]) -> list[datetime]:
    return [parse_time(i["scheduled_at"]) for i in found]


async def test_activation_starts_an_interval_trigger_and_deactivation_stops_it(
    runtime: Runtime, client: httpx.AsyncClient
):
    assert (await client.post("/api/workflows", json=workflow("tick", TICK))).status_code == 201
    await runtime.triggers.start()
    assert await runtime.triggers.describe() == []  # not active yet: nothing runs
    assert (await client.post("/api/workflows/tick/activate")).status_code == 200

    found = await eventually(lambda: _at_least(runtime, "tick", 3))
    times = due_times(found)
    assert consecutive(times, 100)
    assert all(t.microsecond % 100_000 == 0 for t in times)  # multiples of 100 ms

    listed = (await client.get("/api/triggers")).json()["items"]
    assert len(listed) == 1
    item = listed[0]
    assert item["workflow_id"] == "tick"
    assert (item["index"], item["key"], item["type"], item["status"]) == (
        0,
        "0",
        "interval",
        "running",
    )
    assert item["fire_count"] >= 3
    assert item["owner"] == runtime.instance
    assert parse_time(item["next_fire_at"]) >= parse_time(item["last_fire_at"])
    assert item["last_error"] is None

    assert (await client.post("/api/workflows/tick/deactivate")).status_code == 200
    assert (await client.get("/api/triggers")).json() == {"items": []}
    stopped = len(await inputs(runtime, "tick"))
    await asyncio.sleep(0.35)  # three periods: a running trigger would have fired
    assert len(await inputs(runtime, "tick")) == stopped
    assert await stored_triggers.states(runtime.db) == {}  # deactivation forgets the state


async def _at_least(runtime: Runtime, workflow_id: str, count: int) -> list[Any] | None:
    found = await inputs(runtime, workflow_id)
    return found if len(found) >= count else None


async def test_editing_an_active_workflow_restarts_its_trigger_with_the_new_definition(
    runtime: Runtime, client: httpx.AsyncClient
):
    await client.post("/api/workflows", json=workflow("edit", TICK))
    await client.post("/api/workflows/edit/activate")
    await runtime.triggers.start()
    await eventually(lambda: _at_least(runtime, "edit", 1))
    # due times are multiples of every_ms since the epoch: an hourly one fired when the test
    # ran across a full hour; the longest interval is due once in 366 days
    slow = {"type": "interval", "every_ms": interval.MAX_EVERY_MS}
    assert (await client.put("/api/workflows/edit", json=workflow("edit", slow))).status_code == 200
    listed = await eventually(lambda: _next_fire_beyond(client, seconds=60))
    assert listed["fire_count"] == 0  # the state belonged to the old definition


async def _next_fire_beyond(client: httpx.AsyncClient, seconds: float) -> dict[str, Any] | None:
    items = (await client.get("/api/triggers")).json()["items"]
    if not items or items[0]["next_fire_at"] is None:
        return None
    ahead = parse_time(items[0]["next_fire_at"]) - datetime.now(UTC)
    return items[0] if ahead > timedelta(seconds=seconds) else None


async def test_triggers_are_listed_as_stopped_when_no_manager_runs(
    runtime: Runtime, client: httpx.AsyncClient
):
    hook = {"type": "webhook", "path": "p"}
    await client.post("/api/workflows", json=workflow("idle", hook, TICK, {"type": "manual"}))
    await client.post("/api/workflows/idle/activate")
    items = (await client.get("/api/triggers")).json()["items"]
    assert [(i["type"], i["status"]) for i in items] == [
        ("webhook", "running"),
        ("interval", "stopped"),
    ]


class FrozenClock:
    """A clock stopped at one moment: catch-up runs, then every wait lasts forever."""

    def __init__(self, moment: datetime):
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


NOW = datetime(2026, 1, 1, 12, 0, 0, 50_000, tzinfo=UTC)
MISSED = [NOW - timedelta(milliseconds=50 + 100 * n) for n in range(9, -1, -1)]


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [("none", []), ("last", MISSED[-1:]), ("all", MISSED)],
)
async def test_catch_up_after_a_downtime_fires_what_the_policy_says(
    runtime: Runtime, catch_up: str, expected: list[datetime]
):
    definition = {"type": "interval", "every_ms": 100, "catch_up": catch_up}
    await runtime.save_workflow(Workflow.model_validate(workflow("late", definition)))
    await workflows.set_active(runtime.db, "late", True)
    # a process that ran the trigger until one second ago, then went down
    await _stored_state(runtime, "late", definition, last_fire_at=NOW - timedelta(seconds=1))
    manager = TriggerManager(runtime, clock=FrozenClock(NOW))
    await manager.start()
    try:
        info = (await eventually(lambda: _scheduled(manager, len(expected))))[0]
    finally:
        await manager.close()
    assert due_times(await inputs(runtime, "late")) == expected
    assert info.fire_count == 7 + len(expected)
    assert info.next_fire_at == NOW + timedelta(milliseconds=50)
    stored = await stored_triggers.get(runtime.db, "late", "0")
    assert stored is not None
    assert stored.last_fire_at == (expected[-1] if expected else NOW - timedelta(seconds=1))
    assert stored.lease_owner is None  # released on close


async def test_a_changed_definition_does_not_catch_up_the_old_schedule(runtime: Runtime):
    await runtime.save_workflow(Workflow.model_validate(workflow("changed", TICK)))
    await workflows.set_active(runtime.db, "changed", True)
    old = {"type": "interval", "every_ms": 200, "catch_up": "all"}
    await _stored_state(runtime, "changed", old, last_fire_at=NOW - timedelta(seconds=1))
    manager = TriggerManager(runtime, clock=FrozenClock(NOW))
    await manager.start()
    try:
        items = await eventually(lambda: _status(manager, "running"))
        info = await eventually(lambda: _next_set(manager))
    finally:
        await manager.close()
    assert items.fire_count == 0
    assert await inputs(runtime, "changed") == []
    assert info.fire_count == 0


async def _stored_state(
    runtime: Runtime, workflow_id: str, definition: dict[str, Any], *, last_fire_at: datetime
) -> None:
    db, gone = runtime.db, "elsewhere:1:gone"
    assert await stored_triggers.acquire(
        db, workflow_id, "0", owner=gone, until=NOW, now=NOW - timedelta(hours=1)
    )
    await stored_triggers.save(
        db, workflow_id, "0", owner=gone, next_fire_at=last_fire_at, last_fire_at=last_fire_at,
        fire_count=7, last_error=None, cursor={"definition": fingerprint(definition)},
    )  # fmt: skip
    await stored_triggers.release(db, workflow_id, "0", owner=gone)


async def _next_set(manager: TriggerManager) -> Any:
    items = await manager.describe()
    return items[0] if items and items[0].next_fire_at and items[0].next_fire_at > NOW else None


async def _status(manager: TriggerManager, status: str) -> Any:
    items = await manager.describe()
    return items[0] if items and items[0].status == status else None


async def _scheduled(manager: TriggerManager, fires: int = 0) -> list[Any] | None:
    """The listing once the trigger has caught up (`fires` more starts since the stored 7)."""
    items = await manager.describe()
    ready = items and items[0].next_fire_at is not None and items[0].next_fire_at > NOW
    return items if ready and items[0].fire_count == 7 + fires else None


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL schema (two SQLite Runtimes in one process contend for
    the file's lock; separate processes on SQLite are the e2e suite's business)."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    admin = "postgresql://postgres@127.0.0.1:5432/test"
    name = f"conv3n_t_{uuid.uuid4().hex[:12]}"
    await _admin(admin, f"CREATE SCHEMA {name}")
    url = f"{admin}?options=-csearch_path%3D{name}"
    database = Database(url)
    await schema.upgrade(database)
    await database.close()
    try:
        yield url
    finally:
        await _admin(admin, f"DROP SCHEMA {name} CASCADE")


async def _admin(url: str, statement: str) -> None:
    database = Database(url)
    try:
        async with database.write() as conn:
            await conn.exec_driver_sql(statement)
    finally:
        await database.close()


@pytest.mark.slow
@pytest.mark.postgres
async def test_two_runtimes_on_one_database_fire_each_due_time_once_and_hand_over(
    tmp_path: Path, postgres_url: str
):
    def settings(name: str) -> Settings:
        return Settings.from_env(
            {"CONV3N_DATA_DIR": str(tmp_path / name)}, database_url=postgres_url
        )

    async with Runtime(settings("a")) as first, Runtime(settings("b")) as second:
        first_manager = TriggerManager(first, poll_s=0.05)
        second_manager = TriggerManager(second, poll_s=0.05)
        try:
            await first.save_workflow(Workflow.model_validate(workflow("shared", TICK)))
            await workflows.set_active(first.db, "shared", True)
            await first_manager.start()
            await eventually(lambda: _at_least(first, "shared", 1))
            await second_manager.start()
            standby = await eventually(lambda: _status(second_manager, "standby"))
            assert standby.owner == first.instance
            await eventually(lambda: _at_least(first, "shared", 6))

            await first_manager.close()  # releases the lease: the other takes over at once
            handed = len(await inputs(second, "shared"))
            await eventually(lambda: _at_least(second, "shared", handed + 5))
            running = await eventually(lambda: _status(second_manager, "running"))
            assert running.owner == second.instance
        finally:
            await first_manager.close()
            await second_manager.close()
        times = due_times(await inputs(second, "shared"))
    assert len(set(times)) == len(times), "a due time started twice"
    assert consecutive(sorted(times), 100), "a due time was missed in the handover"


async def test_fires_and_failures_are_counted_in_the_metrics(tmp_path: Path):
    from conv3n.observability import Metrics

    metrics = Metrics()
    async with Runtime(settings_for(tmp_path / "m"), metrics=metrics) as runtime:
        broken = {"type": "file", "path": "missing"}
        await runtime.save_workflow(Workflow.model_validate(workflow("counted", TICK, broken)))
        await workflows.set_active(runtime.db, "counted", True)
        await runtime.triggers.start()
        await eventually(lambda: _at_least(runtime, "counted", 2))
        await eventually(lambda: _status_at(runtime.triggers, 1, "failed"))
        await runtime.triggers.close()
    text = metrics.render()[0].decode()
    assert 'conv3n_trigger_fires_total{type="interval"}' in text
    assert re.search(r'conv3n_trigger_errors_total\{type="file"\} [1-9]', text)


async def _status_at(manager: TriggerManager, index: int, status: str) -> Any:
    items = await manager.describe()
    return items[index] if len(items) > index and items[index].status == status else None
