"""SPEC §2 retries with backoff, per-attempt and whole-execution timeouts, and cancellation."""

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from conv3n.engine import Engine, SystemClock
from conv3n.errors import BlockError
from conv3n.model import JSON, ExecutionRecord, ExecutionStatus, NodeStatus
from conv3n.sdk import BlockSpec, Context, block
from tests.integration.engine.helpers import (
    Empty,
    FakeClock,
    RecordingJournal,
    compile_doc,
    execute,
)


def flaky(failures: int, retry_after_ms: float | None = None) -> tuple[BlockSpec, list[int]]:
    """A block that fails `failures` times with a retryable BlockError, then returns its attempt."""
    attempts: list[int] = []

    @block("flaky")
    async def run(ctx: Context, config: Empty) -> JSON:
        attempts.append(ctx.attempt)
        if len(attempts) <= failures:
            raise BlockError(
                f"failure {len(attempts)}", retryable=True, retry_after_ms=retry_after_ms
            )
        return ctx.attempt

    return run, attempts


RETRY = {"max_attempts": 4, "backoff_ms": 100, "factor": 2.0, "max_backoff_ms": 30_000, "jitter": 0}


async def test_retry_waits_with_exponential_backoff_and_counts_attempts():
    spec, attempts = flaky(3)
    clock = FakeClock()
    record = await execute(
        {"nodes": [{"id": "f", "type": "test/flaky", "retry": RETRY}]}, spec, clock=clock
    )
    assert record.status is ExecutionStatus.SUCCESS
    assert attempts == [1, 2, 3, 4]
    assert clock.slept == pytest.approx([0.1, 0.2, 0.4])
    assert record.nodes["f"].attempts == 4
    assert record.nodes["f"].data == 4


async def test_retries_stop_after_max_attempts_and_on_error_applies():
    spec, attempts = flaky(10)
    clock = FakeClock()
    record = await execute(
        {
            "nodes": [
                {"id": "f", "type": "test/flaky", "retry": RETRY, "on_error": "continue"},
                {"id": "after", "type": "std/noop"},
            ],
            "connections": [{"from": "f", "to": "after"}],
        },
        spec,
        clock=clock,
    )
    assert record.status is ExecutionStatus.SUCCESS
    assert attempts == [1, 2, 3, 4]
    assert len(clock.slept) == 3
    node = record.nodes["f"]
    assert node.status is NodeStatus.ERROR
    assert node.attempts == 4
    assert node.error is not None
    assert node.error.message == "failure 4"
    assert record.nodes["after"].status is NodeStatus.SUCCESS


async def test_journal_hears_of_every_retried_attempt_with_its_delay():
    spec, _ = flaky(10)
    journal = RecordingJournal()
    await execute(
        {"nodes": [{"id": "f", "type": "test/flaky", "retry": RETRY}]},
        spec,
        clock=FakeClock(),
        journal=journal,
    )
    failed = journal.of("attempt_failed", "f")
    assert [attempt for attempt, _, _ in failed] == [1, 2, 3]
    assert [delay for _, _, delay in failed] == pytest.approx([0.1, 0.2, 0.4])
    assert [error.message for _, error, _ in failed] == ["failure 1", "failure 2", "failure 3"]
    assert journal.of("node_started", "f") == [1, 2, 3, 4]
    # Each failed attempt is reported before the next one starts.
    kinds = [(event, detail) for event, _, node, detail in journal.events if node == "f"]
    assert [k for k, _ in kinds] == [
        "node_started",
        "attempt_failed",
        "node_started",
        "attempt_failed",
        "node_started",
        "attempt_failed",
        "node_started",
        "node_finished",
    ]


async def test_retry_after_from_the_block_lengthens_the_delay():
    spec, _ = flaky(1, retry_after_ms=5_000)
    clock = FakeClock()
    await execute({"nodes": [{"id": "f", "type": "test/flaky", "retry": RETRY}]}, spec, clock=clock)
    assert clock.slept == pytest.approx([5.0])


@pytest.mark.looptime
async def test_backoff_waits_on_loop_time():
    spec, _ = flaky(2)
    loop = asyncio.get_running_loop()
    start = loop.time()
    record = await execute(
        {"nodes": [{"id": "f", "type": "test/flaky", "retry": {**RETRY, "backoff_ms": 1_000}}]},
        spec,
        clock=SystemClock(),
    )
    assert record.nodes["f"].attempts == 3
    assert loop.time() - start == pytest.approx(3.0)


@block("forever")
async def forever(ctx: Context, config: Empty) -> JSON:
    """Wait for an event nobody sets."""
    await asyncio.Event().wait()
    return None


@pytest.mark.looptime
async def test_attempt_that_exceeds_timeout_ms_fails_with_node_timeout_and_is_retried():
    journal = RecordingJournal()
    record = await execute(
        {
            "nodes": [
                {
                    "id": "slow",
                    "type": "test/forever",
                    "timeout_ms": 250,
                    "retry": {"max_attempts": 2, "backoff_ms": 10, "jitter": 0},
                }
            ]
        },
        forever,
        journal=journal,
    )
    node = record.nodes["slow"]
    assert node.status is NodeStatus.ERROR
    assert node.attempts == 2
    assert node.error is not None
    assert node.error.type == "timeout"
    assert "250 ms" in node.error.message
    assert [a for a, _, _ in journal.of("attempt_failed", "slow")] == [1]


@pytest.mark.looptime
async def test_timeout_error_raised_by_the_block_itself_is_not_a_node_timeout():
    @block("own_timeout")
    async def own_timeout(ctx: Context, config: Empty) -> JSON:
        raise TimeoutError("the remote side timed out")

    record = await execute(
        {"nodes": [{"id": "t", "type": "test/own_timeout", "timeout_ms": 60_000}]}, own_timeout
    )
    error = record.nodes["t"].error
    assert error is not None
    assert error.type == "block_crashed"
    assert "the remote side timed out" in error.message


@pytest.mark.looptime
async def test_whole_execution_timeout_stops_the_execution():
    record = await execute(
        {
            "settings": {"timeout_ms": 1_000},
            "nodes": [
                # The node's own limit only guards against a hang if the rule is broken.
                {"id": "slow", "type": "test/forever", "timeout_ms": 3_600_000},
                {"id": "after", "type": "std/noop"},
            ],
            "connections": [{"from": "slow", "to": "after"}],
        },
        forever,
    )
    assert record.status is ExecutionStatus.ERROR
    assert record.error is not None
    assert record.error.type == "timeout"
    assert record.nodes["slow"].status is NodeStatus.CANCELLED
    assert record.nodes["after"].status is NodeStatus.CANCELLED


@pytest.mark.looptime
async def test_whole_execution_timeout_also_bounds_retry_backoff():
    spec, attempts = flaky(100)
    record = await execute(
        {
            "settings": {"timeout_ms": 5_000},
            "nodes": [
                {
                    "id": "f",
                    "type": "test/flaky",
                    "retry": {"max_attempts": 100, "backoff_ms": 1_000, "factor": 1.0, "jitter": 0},
                }
            ],
        },
        spec,
        clock=SystemClock(),
    )
    assert record.status is ExecutionStatus.ERROR
    assert record.error is not None
    assert record.error.type == "timeout"
    assert 1 < len(attempts) < 100


@pytest.mark.looptime
async def test_engine_cancel_stops_a_blocked_node_and_returns_a_cancelled_record():
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @block("blocked")
    async def blocked(ctx: Context, config: Empty) -> JSON:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return None

    journal = RecordingJournal()
    plan = compile_doc(
        {
            "settings": {"timeout_ms": 3_600_000},  # guards against a hang if cancel is ignored
            "nodes": [{"id": "b", "type": "test/blocked"}, {"id": "after", "type": "std/noop"}],
            "connections": [{"from": "b", "to": "after"}],
        },
        blocked,
    )
    async with Engine(journal=journal) as engine:
        task = asyncio.create_task(engine.execute(plan, None, execution_id="exec-1"))
        await started.wait()
        assert engine.cancel("exec-1") is True
        record = await task
        assert engine.cancel("exec-1") is False
    assert cancelled.is_set()
    assert record.status is ExecutionStatus.CANCELLED
    assert record.error is not None
    assert record.error.type == "cancelled"
    assert record.nodes["b"].status is NodeStatus.CANCELLED
    assert record.nodes["after"].status is NodeStatus.CANCELLED
    assert journal.finished["exec-1"].status is ExecutionStatus.CANCELLED
    assert not task.cancelled()


async def test_engine_cancel_of_an_unknown_execution_returns_false():
    async with Engine() as engine:
        assert engine.cancel("nope") is False


async def test_cancelling_the_calling_task_propagates_and_records_nothing_as_cancelled():
    started = asyncio.Event()

    @block("blocked")
    async def blocked(ctx: Context, config: Empty) -> JSON:
        started.set()
        await asyncio.Event().wait()
        return None

    journal = RecordingJournal()
    plan = compile_doc({"nodes": [{"id": "b", "type": "test/blocked"}]}, blocked)
    async with Engine(journal=journal) as engine:
        task = asyncio.create_task(engine.execute(plan, None, execution_id="exec-2"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert engine.cancel("exec-2") is False
    assert [e for e, *_ in journal.events] == ["execution_started", "node_started"]
    assert "exec-2" not in journal.finished


class GatedJournal(RecordingJournal):
    """Holds the execution inside one journal call until the test releases it."""

    def __init__(self, hold: str) -> None:
        super().__init__()
        self.hold = hold
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def execution_started(self, record: ExecutionRecord) -> None:
        await super().execution_started(record)
        if self.hold == "execution_started":
            self.entered.set()
            await self.release.wait()

    async def execution_finished(self, record: ExecutionRecord) -> None:
        if self.hold == "execution_finished":
            self.entered.set()
            await self.release.wait()
        await super().execution_finished(record)


async def test_cancel_before_any_node_ran_returns_a_cancelled_record():
    calls: list[str] = []

    @block("noted")
    async def noted(ctx: Context, config: Empty) -> JSON:
        calls.append(ctx.node_id)
        return None

    journal = GatedJournal("execution_started")
    plan = compile_doc({"nodes": [{"id": "n", "type": "test/noted"}]}, noted)
    async with Engine(journal=journal) as engine:
        task = asyncio.create_task(engine.execute(plan, None, execution_id="early"))
        await journal.entered.wait()
        assert engine.cancel("early") is True
        journal.release.set()
        record = await task
    assert calls == []
    assert record.status is ExecutionStatus.CANCELLED
    assert record.nodes["n"].status is NodeStatus.CANCELLED
    assert journal.finished["early"].status is ExecutionStatus.CANCELLED


async def test_cancel_after_every_node_finished_keeps_the_result():
    journal = GatedJournal("execution_finished")
    plan = compile_doc({"nodes": [{"id": "n", "type": "std/noop"}]})
    async with Engine(journal=journal) as engine:
        task = asyncio.create_task(engine.execute(plan, 5, execution_id="late"))
        await journal.entered.wait()
        engine.cancel("late")
        journal.release.set()
        record = await task
    assert record.status is ExecutionStatus.SUCCESS
    assert record.output == 5
    assert journal.finished["late"].status is ExecutionStatus.SUCCESS


async def test_each_attempt_is_journaled_with_its_own_start_time():
    spec, _ = flaky(2)
    clock = FakeClock()
    starts: list[datetime] = []

    class Starts(RecordingJournal):
        def node_started(
            self, execution_id: str, node_id: str, attempt: int, started_at: datetime
        ) -> None:
            starts.append(started_at)

    record = await execute(
        {"nodes": [{"id": "f", "type": "test/flaky", "retry": RETRY}]},
        spec,
        clock=clock,
        journal=Starts(),
    )
    assert starts == [
        clock.start,
        clock.start + timedelta(seconds=0.1),
        clock.start + timedelta(seconds=0.3),
    ]
    assert record.nodes["f"].started_at == clock.start


@pytest.mark.looptime
async def test_max_parallel_nodes_bounds_the_nodes_running_at_once():
    active = 0
    highest = 0
    release = asyncio.Event()

    @block("gauge")
    async def gauge(ctx: Context, config: Empty) -> JSON:
        nonlocal active, highest
        active += 1
        highest = max(highest, active)
        if active >= 2:
            release.set()
        await release.wait()
        await asyncio.sleep(0)  # a loop turn for other ready nodes to start, if they may
        active -= 1
        return None

    record = await execute(
        {
            "settings": {"max_parallel_nodes": 2, "timeout_ms": 60_000},
            "nodes": [{"id": f"n{i}", "type": "test/gauge"} for i in range(6)],
        },
        gauge,
    )
    assert record.status is ExecutionStatus.SUCCESS, record.error
    assert highest == 2


@pytest.mark.looptime
@pytest.mark.parametrize("where", ["graph", "loop"])
async def test_failed_execution_leaves_the_callers_deadline_working(where: str):
    # A node failing in its own task while the calling task waits for the rest must not
    # leave a cancellation request behind on the calling task (3.11's TaskGroup did), or
    # the caller's own asyncio.timeout raises CancelledError instead of TimeoutError.
    @block("fail_soon")
    async def fail_soon(ctx: Context, config: Empty) -> JSON:
        await asyncio.sleep(0)  # a loop turn: the calling task is waiting by now
        raise BlockError("failed in a task")

    nodes: list[dict[str, Any]]
    if where == "graph":
        nodes = [{"id": "bad", "type": "test/fail_soon"}, {"id": "quick", "type": "std/noop"}]
    else:
        body = {"nodes": [{"id": "bad", "type": "test/fail_soon"}]}
        loop = {"items": [1, 2], "concurrency": 2, "body": body}
        nodes = [{"id": "each", "type": "std/loop", "config": loop}]
    plan = compile_doc({"nodes": nodes}, fail_soon)
    records: list[ExecutionRecord] = []

    async def execute_then_wait_past_the_deadline(engine: Engine) -> None:
        async with asyncio.timeout(10):
            records.append(await engine.execute(plan, None))
            await asyncio.Event().wait()

    async with Engine() as engine:
        with pytest.raises(TimeoutError):
            await execute_then_wait_past_the_deadline(engine)
    assert [r.status for r in records] == [ExecutionStatus.ERROR]
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_a_successor_in_a_chain_starts_when_its_predecessor_finished():
    chain = [{"id": name, "type": "std/noop"} for name in ("a", "b", "c")]
    record = await execute(
        {"nodes": chain, "connections": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]},
        clock=SystemClock(),
    )
    a, b, c = (record.nodes[name] for name in ("a", "b", "c"))
    assert a.started_at is not None
    assert a.finished_at is not None
    assert a.started_at <= a.finished_at
    assert b.started_at == a.finished_at  # one clock read between them
    assert c.started_at == b.finished_at
    assert c.started_at is not None
    assert c.finished_at is not None
    assert c.started_at <= c.finished_at


async def test_a_node_waiting_for_a_parallel_slot_reads_the_clock_when_it_gets_one():
    clock = FakeClock()

    @block("tick")
    async def tick(ctx: Context, config: Empty) -> JSON:
        await ctx.sleep(1)
        return None

    nodes = [{"id": name, "type": "test/tick"} for name in ("a", "b", "c")]
    record = await execute(
        {
            "nodes": nodes,
            "connections": [{"from": "a", "to": "b"}, {"from": "a", "to": "c"}],
            "settings": {"max_parallel_nodes": 1},
        },
        tick,
        clock=clock,
    )
    starts = sorted(record.nodes[name].started_at for name in ("b", "c"))  # type: ignore[type-var]
    assert starts == [clock.start + timedelta(seconds=1), clock.start + timedelta(seconds=2)]
