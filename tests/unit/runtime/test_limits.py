"""ExecutionLimits: global and per-workflow slots, a bounded FIFO queue, no lost tickets."""

import asyncio

import pytest

from conv3n.errors import Overloaded
from conv3n.runtime.limits import ExecutionLimits


async def test_a_free_slot_is_granted_at_once_and_given_back():
    limits = ExecutionLimits(max_running=2, max_queued=10)
    ticket = limits.enter("a", None)
    assert ticket.granted
    assert not ticket.queued
    assert limits.snapshot() == {"running": 1, "queued": 0, "max_running": 2, "max_queued": 10}
    ticket.release()
    ticket.release()  # idempotent
    assert limits.running == 0


async def test_waiters_beyond_the_global_limit_start_in_arrival_order():
    limits = ExecutionLimits(max_running=1, max_queued=10)
    first = limits.enter("a", None)
    waiting = [limits.enter(f"w{i}", None) for i in range(3)]
    assert all(t.queued for t in waiting)
    assert limits.queued == 3
    order: list[int] = []

    async def run(i: int) -> None:
        await waiting[i].wait()
        order.append(i)
        waiting[i].release()

    tasks = [asyncio.create_task(run(i)) for i in (2, 0, 1)]
    await asyncio.sleep(0)
    assert order == []
    first.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    assert limits.running == 0
    assert limits.queued == 0


async def test_a_workflow_at_its_own_limit_does_not_block_other_workflows():
    limits = ExecutionLimits(max_running=10, max_queued=10)
    busy = limits.enter("slow", 1)
    blocked = limits.enter("slow", 1)
    other = limits.enter("fast", 1)
    assert blocked.queued
    assert other.granted
    busy.release()
    assert blocked.granted
    assert limits.queued == 0


async def test_a_full_queue_refuses_with_retry_after_and_takes_nothing():
    limits = ExecutionLimits(max_running=1, max_queued=1)
    limits.enter("a", None)
    limits.enter("a", None)
    with pytest.raises(Overloaded) as caught:
        limits.enter("a", None)
    assert caught.value.http_status == 429
    assert caught.value.retry_after_s >= 1
    assert limits.queued == 1
    assert limits.running == 1


async def test_unbounded_entries_wait_even_when_the_queue_is_full():
    limits = ExecutionLimits(max_running=1, max_queued=0)
    running = limits.enter("a", None)
    resumed = limits.enter("a", None, bounded=False)
    assert resumed.queued
    running.release()
    assert resumed.granted


async def test_a_cancelled_waiter_leaves_the_queue_and_frees_its_place():
    limits = ExecutionLimits(max_running=1, max_queued=1)
    running = limits.enter("a", None)
    waiter = limits.enter("a", None)
    task = asyncio.create_task(waiter.wait())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limits.queued == 0
    late = limits.enter("a", None)  # the freed place is usable
    running.release()
    assert late.granted
    assert limits.running == 1


async def test_a_waiter_cancelled_just_after_its_grant_gives_the_slot_back():
    limits = ExecutionLimits(max_running=1, max_queued=5)
    running = limits.enter("a", None)
    waiter = limits.enter("a", None)
    task = asyncio.create_task(waiter.wait())
    await asyncio.sleep(0)
    running.release()  # grants `waiter` before its task resumes
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limits.running == 0


async def test_many_concurrent_entries_never_exceed_the_limits():
    limits = ExecutionLimits(max_running=3, max_queued=1000)
    peak = {"all": 0, "w": 0}
    per: dict[str, int] = {}

    async def job(i: int) -> None:
        wid = "w" if i % 2 else f"other{i}"
        ticket = limits.enter(wid, 1 if wid == "w" else None)
        await ticket.wait()
        per[wid] = per.get(wid, 0) + 1
        peak["all"] = max(peak["all"], limits.running)
        peak["w"] = max(peak["w"], per.get("w", 0))
        await asyncio.sleep(0)
        per[wid] -= 1
        ticket.release()

    await asyncio.gather(*(job(i) for i in range(200)))
    assert peak == {"all": 3, "w": 1}
    assert limits.running == 0
    assert limits.queued == 0
