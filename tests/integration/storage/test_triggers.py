"""Trigger state and leases on every database: one holder at a time, takeover after expiry or
a known-dead owner, state written only by the holder, forgotten on deactivation."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from conv3n.compiler import load_workflow
from conv3n.storage import Database, workflows
from conv3n.storage import triggers as stored

NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)


async def active_workflow(db: Database, workflow_id: str = "tick") -> None:
    document = {"version": 1, "nodes": [{"id": "a", "type": "std/noop"}]}
    await workflows.create(db, workflow_id, load_workflow(document))
    await workflows.set_active(db, workflow_id, True)


async def test_the_first_taker_holds_the_lease_until_it_expires_or_is_released(db):
    await active_workflow(db)
    assert await stored.acquire(db, "tick", "0", owner="a", until=LATER, now=NOW)
    assert not await stored.acquire(db, "tick", "0", owner="b", until=LATER, now=NOW)
    assert await stored.acquire(db, "tick", "0", owner="a", until=LATER, now=NOW)  # again: kept
    # expired: another process may take it
    assert await stored.acquire(
        db, "tick", "0", owner="b", until=LATER + timedelta(minutes=1), now=LATER + timedelta(1)
    )
    assert not await stored.renew(db, "tick", "0", owner="a", until=LATER)
    await stored.release(db, "tick", "0", owner="b")
    assert await stored.acquire(db, "tick", "0", owner="c", until=LATER, now=NOW)


async def test_a_dead_owners_lease_is_void_before_it_expires(db):
    await active_workflow(db)
    assert await stored.acquire(db, "tick", "0", owner="dead", until=LATER, now=NOW)
    assert not await stored.acquire(db, "tick", "0", owner="b", until=LATER, now=NOW)
    assert await stored.acquire(db, "tick", "0", owner="b", until=LATER, now=NOW, dead_owner="dead")


async def test_only_the_holder_writes_the_state(db):
    await active_workflow(db)
    await stored.acquire(db, "tick", "0", owner="a", until=LATER, now=NOW)
    state: dict[str, Any] = {
        "next_fire_at": LATER,
        "last_fire_at": NOW,
        "fire_count": 3,
        "last_error": None,
        "cursor": {"definition": "f1"},
    }
    assert not await stored.save(db, "tick", "0", owner="b", **state)
    assert await stored.save(db, "tick", "0", owner="a", **state)
    found = await stored.get(db, "tick", "0")
    assert found is not None
    assert (found.last_fire_at, found.next_fire_at, found.fire_count) == (NOW, LATER, 3)
    assert found.cursor == {"definition": "f1"}
    assert found.lease_owner == "a"
    assert list(await stored.states(db, ["tick"])) == [("tick", "0")]


async def test_no_lease_is_taken_for_an_inactive_or_missing_workflow(db):
    await active_workflow(db)
    await workflows.set_active(db, "tick", False)
    assert not await stored.acquire(db, "tick", "0", owner="a", until=LATER, now=NOW)
    assert not await stored.acquire(db, "ghost", "0", owner="a", until=LATER, now=NOW)
    assert await stored.states(db) == {}


async def test_deactivating_or_deleting_a_workflow_forgets_its_trigger_state(db):
    await active_workflow(db)
    await stored.acquire(db, "tick", "0", owner="a", until=LATER, now=NOW)
    await workflows.set_active(db, "tick", False)
    assert await stored.get(db, "tick", "0") is None
    assert not await stored.renew(db, "tick", "0", owner="a", until=LATER)  # the holder stops
    await workflows.set_active(db, "tick", True)
    await stored.acquire(db, "tick", "0", owner="a", until=LATER, now=NOW)
    await workflows.remove(db, "tick")
    assert await stored.states(db) == {}


async def test_concurrent_takers_on_a_new_trigger_get_one_holder(database_url, db):
    await active_workflow(db)
    others = [Database(database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(
                stored.acquire(each, "tick", "0", owner=f"p{n}", until=LATER, now=NOW)
                for n, each in enumerate([db, *others])
            )
        )
    finally:
        for each in others:
            await each.close()
    assert sorted(results) == [False, False, False, False, True]
