"""Durability through the Runtime: stored results, resume, retry, fork, idempotency, concurrency."""

import asyncio
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from conv3n.compiler import compile_workflow, load_workflow
from conv3n.errors import Conflict, InvalidInput
from conv3n.model import ExecutionStatus, NodeRecord, NodeStatus
from conv3n.runtime.service import Runtime
from conv3n.sdk import BlockError, BlockRegistry, block
from conv3n.storage import executions

CALLS: Counter[str] = Counter()


class CountConfig(BaseModel):
    fail: bool = False


@block("count")
async def count(ctx, config: CountConfig):
    CALLS[ctx.node_id] += 1
    if config.fail:
        raise BlockError("asked to fail", retryable=True)
    return {"node": ctx.node_id, "calls": CALLS[ctx.node_id]}


@pytest.fixture
def registry():
    CALLS.clear()
    registry = BlockRegistry.discover()
    registry.add("test", [count], origin="(test)")
    return registry


@pytest.fixture
async def rt(settings, database_url, registry):
    from conv3n.storage import Database, schema

    database = Database(database_url)
    await schema.upgrade(database)
    await database.close()
    async with Runtime(settings, registry=registry) as runtime:
        yield runtime


def chain_doc(*nodes: str, fail: str | None = None, wid: str = "chain"):
    return load_workflow(
        {
            "version": 1,
            "id": wid,
            "nodes": [
                {"id": n, "type": "test/count", "config": {"fail": n == fail}} for n in nodes
            ],
            "connections": [{"from": a, "to": b} for a, b in itertools.pairwise(nodes)],
        }
    )


async def test_every_node_result_is_stored_with_the_record(rt):
    record = await rt.execute(rt.compile(chain_doc("a", "b", "c")), {"x": 1})
    stored = await rt.record(record.execution_id)
    assert stored.status == ExecutionStatus.SUCCESS
    assert list(stored.nodes) == ["a", "b", "c"]
    assert stored.nodes["c"].data == {"node": "c", "calls": 1}
    assert stored.input == {"x": 1}
    assert stored.output == record.output
    assert stored.model_dump(mode="json")["nodes"] == record.model_dump(mode="json")["nodes"]


async def test_failed_attempts_are_stored_one_row_each(rt):
    doc = chain_doc("a", fail="a").model_dump(by_alias=True)
    doc["nodes"][0]["retry"] = {"max_attempts": 3, "backoff_ms": 1, "jitter": 0}
    record = await rt.execute(rt.compile(load_workflow(doc)))
    assert record.nodes["a"].attempts == 3
    await rt.journal.flush()  # storage is read directly, past the group-commit window
    tried = await executions.attempts(rt.db, record.execution_id)
    assert [t["attempt"] for t in tried] == [1, 2]
    assert tried[0]["error"]["message"] == "asked to fail"


async def test_same_idempotency_key_returns_the_first_execution(rt):
    plan = rt.compile(chain_doc("a"))
    first = await rt.execute(plan, {"n": 1}, idempotency_key="order-42")
    second = await rt.execute(plan, {"n": 2}, idempotency_key="order-42")
    assert second.execution_id == first.execution_id
    assert second.input == {"n": 1}
    assert CALLS["a"] == 1


async def test_concurrent_idempotent_starts_run_once(rt):
    plan = rt.compile(chain_doc("a"))
    records = await asyncio.gather(*(rt.execute(plan, idempotency_key="k") for _ in range(20)))
    assert len({r.execution_id for r in records}) == 1


async def test_many_concurrent_executions_all_land(rt):
    plan = rt.compile(chain_doc("a", "b", "c"))
    records = await asyncio.gather(*(rt.execute(plan, {"i": i}) for i in range(150)))
    assert {r.status for r in records} == {ExecutionStatus.SUCCESS}
    listed = await rt.list_executions(limit=500)
    assert len(listed) == 150
    assert rt.journal.batches < 150 * 5  # group commit shared transactions


async def test_two_runtimes_writing_one_database_never_see_locked(settings, registry, database_url):
    from conv3n.storage import Database, schema

    database = Database(database_url)
    await schema.upgrade(database)
    await database.close()
    async with (
        Runtime(settings, registry=registry) as one,
        Runtime(settings, registry=registry) as two,
    ):
        plan = one.compile(chain_doc("a", "b"))
        results = await asyncio.gather(
            *(rt.execute(plan, {"i": i}) for i in range(60) for rt in (one, two))
        )
        assert {r.status for r in results} == {ExecutionStatus.SUCCESS}
        await two.journal.flush()
        assert len(await one.list_executions(limit=500)) == 120


async def test_resume_reruns_only_unfinished_nodes(rt):
    plan = rt.compile(chain_doc("a", "b", "c"))
    execution_id, _ = await executions.create(
        rt.db,
        execution_id="01900000-0000-7000-8000-000000000001",
        workflow_id="chain",
        workflow_version=None,
        mode="manual",
        input={"x": 1},
        document=plan.workflow.to_document(),
        status=ExecutionStatus.RUNNING,
        owner="dead-process",
        lease_until=datetime.now(UTC) - timedelta(seconds=1),
    )
    done = NodeRecord(
        status=NodeStatus.SUCCESS, data={"node": "a", "calls": 0}, attempts=1, ports=["main"]
    )
    rt.journal.node_finished(execution_id, "a", done)
    await rt.journal.flush()

    resumed = await rt.resume_interrupted()

    assert [r.execution_id for r in resumed] == [execution_id]
    assert resumed[0].status == ExecutionStatus.SUCCESS
    assert CALLS == {"b": 1, "c": 1}
    assert (await rt.record(execution_id)).nodes["a"].data == {"node": "a", "calls": 0}


async def test_resume_leaves_executions_with_a_live_lease_alone(rt):
    plan = rt.compile(chain_doc("a"))
    await executions.create(
        rt.db,
        execution_id="01900000-0000-7000-8000-000000000002",
        workflow_id="chain",
        workflow_version=None,
        mode="manual",
        input=None,
        document=plan.workflow.to_document(),
        status=ExecutionStatus.RUNNING,
        owner="live-process",
        lease_until=datetime.now(UTC) + timedelta(minutes=5),
    )
    assert await rt.resume_interrupted() == []
    assert CALLS == {}


async def test_retry_reruns_from_the_failed_node_as_a_new_execution(rt):
    failed = await rt.execute(rt.compile(chain_doc("a", "b", "c", fail="b")))
    assert failed.status == ExecutionStatus.ERROR
    with pytest.raises(Conflict):
        await rt.retry((await rt.execute(rt.compile(chain_doc("z")))).execution_id)

    # the outside world is fixed; the stored document still says fail for b, so patch it
    CALLS.clear()
    retried = await rt.retry(failed.execution_id)
    assert retried.execution_id != failed.execution_id
    assert CALLS["a"] == 0
    assert CALLS["b"] == 1
    assert retried.nodes["a"].data == failed.nodes["a"].data
    listed = await rt.list_executions(limit=10)
    assert {s.mode for s in listed} >= {"retry"}


async def test_fork_reruns_from_a_chosen_node(rt):
    first = await rt.execute(rt.compile(chain_doc("a", "b", "c")))
    CALLS.clear()
    forked = await rt.fork(first.execution_id, "b")
    assert forked.status == ExecutionStatus.SUCCESS
    assert CALLS == {"b": 1, "c": 1}
    assert forked.nodes["a"].data == first.nodes["a"].data
    with pytest.raises(InvalidInput):
        await rt.fork(first.execution_id, "nope")


async def test_fork_on_the_latest_version(rt):
    await rt.save_workflow(chain_doc("a", "b"))
    first = await rt.run_workflow("chain")
    await rt.save_workflow(chain_doc("a", "b", "c"))
    CALLS.clear()
    forked = await rt.fork(first.execution_id, "b", latest=True)
    assert CALLS == {"b": 1, "c": 1}
    assert "c" in forked.nodes


async def test_large_results_go_to_the_side_table_with_a_marker_in_listings(
    settings, registry, database_url
):
    from conv3n.storage import Database, schema
    from conv3n.storage.executions import LARGE_MARKER

    database = Database(database_url)
    await schema.upgrade(database)
    await database.close()
    small = type(settings).from_env(
        dict(settings.environ), database_url=database_url, max_result_bytes=2048
    )
    async with Runtime(small, registry=registry) as rt:
        doc = load_workflow(
            {
                "version": 1,
                "nodes": [
                    {
                        "id": "big",
                        "type": "std/transform",
                        "config": {"template": "{{ 'x' * 100000 }}"},
                    }
                ],
            }
        )
        record = await rt.execute(rt.compile(doc))
        brief = await rt.record(record.execution_id, full=False)
        assert brief.nodes["big"].data == {LARGE_MARKER: {"bytes": 100002}}
        full = await rt.record(record.execution_id)
        assert full.nodes["big"].data == "x" * 100000


async def test_secret_values_never_reach_storage(rt):
    await rt.secrets.set("api_token", "tok-123456")
    doc = load_workflow(
        {
            "version": 1,
            "nodes": [
                {
                    "id": "leak",
                    "type": "std/transform",
                    "config": {
                        "template": {
                            "t": "{{ $secrets.api_token }}",
                            "q": "x{{ $secrets.api_token }}",
                        }
                    },
                },
                {
                    "id": "boom",
                    "type": "std/fail",
                    "config": {"message": "bad {{ $secrets.api_token }}"},
                },
            ],
            "connections": [{"from": "leak", "to": "boom"}],
        }
    )
    record = await rt.execute(rt.compile(doc))
    assert "tok-123456" not in record.model_dump_json()
    from sqlalchemy import text

    async with rt.db.read() as conn:
        for table in ("executions", "node_results", "node_attempts"):
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()  # noqa: S608
            assert "tok-123456" not in repr(rows)


def test_plan_compiles(registry):
    assert compile_workflow(chain_doc("a"), registry).nodes[0].id == "a"


async def test_resume_takes_executions_of_a_dead_process_on_this_host_at_once(rt):
    import socket
    import subprocess

    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    plan = rt.compile(chain_doc("a"))
    await executions.create(
        rt.db,
        execution_id="01900000-0000-7000-8000-000000000003",
        workflow_id="chain",
        workflow_version=None,
        mode="manual",
        input=None,
        document=plan.workflow.to_document(),
        status=ExecutionStatus.RUNNING,
        owner=f"{socket.gethostname()}:{dead_pid.pid}:dead",
        lease_until=datetime.now(UTC) + timedelta(minutes=5),
    )
    resumed = await rt.resume_interrupted()
    assert [r.status for r in resumed] == [ExecutionStatus.SUCCESS]
    assert CALLS == {"a": 1}


async def test_resume_from_storage_restores_vars_a_finished_node_set(rt):
    doc = load_workflow(
        {
            "version": 1,
            "id": "vars",
            "nodes": [
                {"id": "setter", "type": "std/set", "config": {"values": {"limit": 5}}},
                {
                    "id": "use",
                    "type": "std/transform",
                    "config": {"template": "{{ $vars.limit * 2 }}"},
                },
            ],
            "connections": [{"from": "setter", "to": "use"}],
        }
    )
    plan = rt.compile(doc)
    execution_id, _ = await executions.create(
        rt.db,
        execution_id="01900000-0000-7000-8000-000000000004",
        workflow_id="vars",
        workflow_version=None,
        mode="manual",
        input=None,
        document=plan.workflow.to_document(),
        status=ExecutionStatus.RUNNING,
        owner="gone",
        lease_until=datetime.now(UTC),
    )
    setter = NodeRecord(
        status=NodeStatus.SUCCESS,
        data={"limit": 5},
        attempts=1,
        ports=["main"],
        effects={"vars": {"limit": 5}},
    )
    rt.journal.node_finished(execution_id, "setter", setter)
    await rt.journal.flush()
    [resumed] = await rt.resume_interrupted()
    assert resumed.output == 10


class StepClock:
    """A clock tests move by hand; sleep() returns at once."""

    def __init__(self) -> None:
        self.moment = datetime(2030, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    async def sleep(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


async def test_a_long_delay_parks_the_execution_and_a_restart_resumes_it_when_due(
    settings, registry, database_url
):
    from conv3n.storage import Database, schema

    database = Database(database_url)
    await schema.upgrade(database)
    await database.close()
    parking = type(settings).from_env(
        dict(settings.environ), database_url=database_url, park_after_seconds=5
    )
    doc = load_workflow(
        {
            "version": 1,
            "id": "parks",
            "nodes": [
                {"id": "a", "type": "test/count"},
                {"id": "wait", "type": "std/delay", "config": {"ms": 3_600_000}},
                {"id": "b", "type": "test/count"},
            ],
            "connections": [{"from": "a", "to": "wait"}, {"from": "wait", "to": "b"}],
        }
    )
    clock = StepClock()
    async with Runtime(parking, registry=registry, clock=clock) as first:
        parked = await first.execute(first.compile(doc))
        assert parked.status == ExecutionStatus.WAITING
        assert parked.wake_at == clock.moment + timedelta(hours=1)
        assert "b" not in parked.nodes
        stored = await first.record(parked.execution_id)
        assert stored.status == ExecutionStatus.WAITING
        assert stored.wake_at == parked.wake_at
        assert await first.resume_due() == []  # not due yet
    assert CALLS == {"a": 1}

    clock.moment += timedelta(hours=1, seconds=1)
    async with Runtime(parking, registry=registry, clock=clock) as restarted:
        [resumed] = await restarted.resume_due()
        assert resumed.execution_id == parked.execution_id
        assert resumed.status == ExecutionStatus.SUCCESS
        assert resumed.nodes["wait"].data == {"waited_ms": 3_600_000}
        assert await restarted.resume_due() == []
    assert CALLS == {"a": 1, "b": 1}


async def test_short_delays_wait_in_memory(rt):
    doc = load_workflow(
        {"version": 1, "nodes": [{"id": "wait", "type": "std/delay", "config": {"ms": 1}}]}
    )
    record = await rt.execute(rt.compile(doc))
    assert record.status == ExecutionStatus.SUCCESS
