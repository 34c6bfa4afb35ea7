"""std/wait through the Runtime: parked durably, resumed with a payload (also after a restart),
timed out by the durable timer, resumed once under concurrent resumes."""

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from pydantic import BaseModel

from conv3n.compiler import load_workflow
from conv3n.errors import Conflict, InvalidInput
from conv3n.model import ExecutionStatus, NodeStatus, Workflow
from conv3n.runtime.service import Runtime
from conv3n.sdk import BlockRegistry, block
from conv3n.storage import Database, schema
from tests.integration.storage.test_runtime import StepClock

CALLS: Counter[str] = Counter()


class NoConfig(BaseModel):
    pass


@block("count")
async def count(ctx, config: NoConfig):
    CALLS[ctx.node_id] += 1
    return {"calls": CALLS[ctx.node_id]}


@pytest.fixture
def registry():
    CALLS.clear()
    registry = BlockRegistry.discover()
    registry.add("test", [count], origin="(test)")
    return registry


@pytest.fixture
async def migrated(database_url):
    database = Database(database_url)
    await schema.upgrade(database)
    await database.close()


@pytest.fixture
def clock():
    return StepClock()


@pytest.fixture
async def rt(settings, registry, clock, migrated):
    async with Runtime(settings, registry=registry, clock=clock) as runtime:
        yield runtime


def approval_doc(**wait_config: object) -> Workflow:
    return load_workflow(
        {
            "version": 1,
            "id": "approve",
            "nodes": [
                {"id": "before", "type": "test/count"},
                {"id": "ask", "type": "std/wait", "config": {"for": "approval", **wait_config}},
                {
                    "id": "after",
                    "type": "std/transform",
                    "config": {"template": {"ok": "{{ $node.ask.data.approved }}"}},
                },
            ],
            "connections": [{"from": "before", "to": "ask"}, {"from": "ask", "to": "after"}],
        }
    )


async def test_wait_parks_the_execution_as_waiting(rt):
    parked = await rt.execute(rt.compile(approval_doc(timeout_ms=60_000)))
    assert parked.status == ExecutionStatus.WAITING
    stored = await rt.record(parked.execution_id)
    assert stored.status == ExecutionStatus.WAITING
    assert stored.nodes["ask"].status == NodeStatus.RUNNING
    assert "after" not in stored.nodes
    assert stored.wake_at == rt.engine.clock.now() + timedelta(minutes=1)


async def test_resume_with_a_payload_gives_it_to_the_node_and_runs_on(rt):
    parked = await rt.execute(rt.compile(approval_doc()))
    done = await rt.resume_now(parked.execution_id, {"approved": True, "by": "ada"})
    assert done.status == ExecutionStatus.SUCCESS
    assert done.nodes["ask"].data == {"approved": True, "by": "ada"}
    assert done.output == {"ok": True}
    assert CALLS == {"before": 1}  # the finished node was not re-run


async def test_a_restarted_runtime_resumes_a_wait_with_its_payload(
    settings, registry, clock, migrated
):
    async with Runtime(settings, registry=registry, clock=clock) as first:
        parked = await first.execute(first.compile(approval_doc()))
    async with Runtime(settings, registry=registry, clock=clock) as second:
        assert await second.resume_interrupted() == []  # waiting is not interrupted
        done = await second.resume_now(parked.execution_id, {"approved": False})
    assert done.status == ExecutionStatus.SUCCESS
    assert done.output == {"ok": False}
    assert CALLS == {"before": 1}


async def test_a_wait_times_out_through_the_durable_timer(rt, clock):
    parked = await rt.execute(rt.compile(approval_doc(timeout_ms=1_000)))
    assert await rt.resume_due() == []
    clock.moment += timedelta(seconds=2)
    [timed_out] = await rt.resume_due()
    assert timed_out.execution_id == parked.execution_id
    assert timed_out.status == ExecutionStatus.ERROR
    assert timed_out.nodes["ask"].error is not None
    assert "no resume came within 1,000 ms" in timed_out.nodes["ask"].error.message


async def test_on_timeout_continue_passes_timed_out(rt, clock):
    parked = await rt.execute(rt.compile(approval_doc(timeout_ms=1_000, on_timeout="continue")))
    clock.moment += timedelta(seconds=2)
    [done] = await rt.resume_due()
    assert done.execution_id == parked.execution_id
    assert done.status == ExecutionStatus.SUCCESS
    assert done.nodes["ask"].data == {"timed_out": True}


async def test_concurrent_resumes_run_the_execution_once(rt):
    parked = await rt.execute(rt.compile(approval_doc()))
    results = await asyncio.gather(
        *(rt.resume_now(parked.execution_id, {"approved": True}) for _ in range(10)),
        return_exceptions=True,
    )
    finished = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(finished) == 1
    assert finished[0].status == ExecutionStatus.SUCCESS
    assert all(isinstance(r, Conflict) for r in refused)
    with pytest.raises(Conflict, match="is success, not waiting"):
        await rt.resume_now(parked.execution_id, {"approved": True})


async def test_resuming_a_node_that_does_not_wait_is_refused(rt):
    parked = await rt.execute(rt.compile(approval_doc()))
    with pytest.raises(InvalidInput, match="'before' is not waiting"):
        await rt.resume_now(parked.execution_id, {}, node="before")
    done = await rt.resume_now(parked.execution_id, {"approved": True}, node="ask")
    assert done.status == ExecutionStatus.SUCCESS


async def test_two_parallel_waits_are_resumed_one_by_one(rt):
    doc = load_workflow(
        {
            "version": 1,
            "id": "two",
            "nodes": [
                {"id": "left", "type": "std/wait"},
                {"id": "right", "type": "std/wait"},
                {"id": "join", "type": "std/merge"},
            ],
            "connections": [{"from": "left", "to": "join"}, {"from": "right", "to": "join"}],
        }
    )
    parked = await rt.execute(rt.compile(doc))
    half = await rt.resume_now(parked.execution_id, "L", node="left")
    assert half.status == ExecutionStatus.WAITING
    done = await rt.resume_now(parked.execution_id, "R", node="right")
    assert done.status == ExecutionStatus.SUCCESS
    assert done.output == {"left": "L", "right": "R"}


async def test_resume_url_names_the_execution(rt):
    doc = load_workflow(
        {
            "version": 1,
            "id": "url",
            "nodes": [
                {
                    "id": "url",
                    "type": "std/transform",
                    "config": {"template": "{{ $execution.resume_url }}"},
                }
            ],
        }
    )
    record = await rt.execute(rt.compile(doc))
    assert record.output == (
        f"http://127.0.0.1:5680/api/executions/{record.execution_id}/resume"
    )
