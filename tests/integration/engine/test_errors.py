"""SPEC §2 `on_error` (fail, continue, route) and how failures are classified and named."""

import asyncio

import pytest
from pydantic import BaseModel, ConfigDict

from conv3n.errors import BlockError
from conv3n.model import JSON, ExecutionStatus, NodeStatus
from conv3n.sdk import Context, block
from tests.integration.engine.helpers import Empty, RecordingJournal, echo, execute


def connect(source: str, target: str, port: str = "main") -> dict[str, str]:
    return {"from": source, "port": port, "to": target}


@block("boom")
async def boom(ctx: Context, config: Empty) -> JSON:
    """Fail with a BlockError."""
    raise BlockError("it broke", details={"code": 7})


@block("crash")
async def crash(ctx: Context, config: Empty) -> JSON:
    """Fail with a plain exception."""
    raise ZeroDivisionError("division by zero")


async def test_failing_node_with_on_error_fail_fails_the_execution():
    record = await execute(
        {
            "nodes": [{"id": "bad", "type": "test/boom"}, {"id": "after", "type": "std/noop"}],
            "connections": [connect("bad", "after")],
        },
        boom,
    )
    assert record.status is ExecutionStatus.ERROR
    assert record.error is not None
    assert record.error.node == "bad"
    assert record.error.message == "it broke"
    assert record.error.details == {"code": 7}
    assert record.output is None
    assert record.nodes["bad"].status is NodeStatus.ERROR
    assert record.nodes["bad"].ports == []


@pytest.mark.looptime
async def test_failure_cancels_running_siblings_and_unreached_nodes_end_cancelled():
    sibling_started = asyncio.Event()
    sibling_cancelled = asyncio.Event()

    @block("stuck")
    async def stuck(ctx: Context, config: Empty) -> JSON:
        sibling_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            sibling_cancelled.set()
            raise
        return None

    @block("fail_later")
    async def fail_later(ctx: Context, config: Empty) -> JSON:
        await sibling_started.wait()
        raise BlockError("late failure")

    journal = RecordingJournal()
    record = await execute(
        {
            "settings": {"timeout_ms": 60_000},
            "nodes": [
                {"id": "stuck", "type": "test/stuck"},
                {"id": "bad", "type": "test/fail_later"},
                {"id": "after_bad", "type": "std/noop"},
                {"id": "after_stuck", "type": "std/noop"},
            ],
            "connections": [connect("bad", "after_bad"), connect("stuck", "after_stuck")],
        },
        stuck,
        fail_later,
        journal=journal,
    )
    assert record.status is ExecutionStatus.ERROR
    assert record.error is not None
    assert record.error.node == "bad"
    assert sibling_cancelled.is_set()
    assert {n: r.status for n, r in record.nodes.items()} == {
        "stuck": NodeStatus.CANCELLED,
        "bad": NodeStatus.ERROR,
        "after_bad": NodeStatus.CANCELLED,
        "after_stuck": NodeStatus.CANCELLED,
    }
    cancelled = {n for n in record.nodes if record.nodes[n].status is NodeStatus.CANCELLED}
    journaled = {
        node
        for event, _, node, detail in journal.events
        if event == "node_finished" and detail.status is NodeStatus.CANCELLED
    }
    assert journaled == cancelled


async def test_on_error_continue_records_the_error_and_goes_on_with_null_data():
    record = await execute(
        {
            "nodes": [
                {"id": "bad", "type": "test/boom", "on_error": "continue"},
                {
                    "id": "after",
                    "type": "test/echo",
                    "config": {"value": "{{ [$node.bad.data, $node.bad.status] }}"},
                },
            ],
            "connections": [connect("bad", "after")],
        },
        boom,
        echo,
    )
    assert record.status is ExecutionStatus.SUCCESS
    bad = record.nodes["bad"]
    assert bad.status is NodeStatus.ERROR
    assert bad.data is None
    assert bad.error is not None
    assert bad.error.message == "it broke"
    assert record.nodes["after"].data == [None, "error"]
    assert record.error is None


async def test_on_error_continue_successor_gets_null_input():
    @block("input_of")
    async def input_of(ctx: Context, config: Empty) -> JSON:
        return {"input": ctx.input}

    record = await execute(
        {
            "nodes": [
                {"id": "bad", "type": "test/boom", "on_error": "continue"},
                {"id": "after", "type": "test/input_of"},
            ],
            "connections": [connect("bad", "after")],
        },
        boom,
        input_of,
        input={"not": "this"},
    )
    assert record.output == {"input": None}


async def test_on_error_route_activates_the_error_port_only():
    record = await execute(
        {
            "nodes": [
                {"id": "bad", "type": "test/boom", "on_error": "route"},
                {"id": "ok_path", "type": "std/noop"},
                {
                    "id": "handler",
                    "type": "test/echo",
                    "config": {"value": "{{ $node.bad.error }}"},
                },
            ],
            "connections": [connect("bad", "ok_path"), connect("bad", "handler", "error")],
        },
        boom,
        echo,
    )
    assert record.status is ExecutionStatus.SUCCESS
    assert record.nodes["bad"].ports == ["error"]
    assert record.nodes["ok_path"].status is NodeStatus.SKIPPED
    assert record.nodes["handler"].data == {
        "type": "block_error",
        "message": "it broke",
        "node": "bad",
        "details": {"code": 7},
    }
    assert record.output == record.nodes["handler"].data


async def test_succeeding_node_with_on_error_route_skips_the_error_branch():
    record = await execute(
        {
            "nodes": [
                {"id": "fine", "type": "test/echo", "config": {"value": 1}, "on_error": "route"},
                {"id": "ok_path", "type": "std/noop"},
                {"id": "handler", "type": "std/noop"},
            ],
            "connections": [connect("fine", "ok_path"), connect("fine", "handler", "error")],
        },
        echo,
    )
    assert record.nodes["ok_path"].status is NodeStatus.SUCCESS
    assert record.nodes["handler"].status is NodeStatus.SKIPPED


async def test_plain_exception_is_recorded_as_block_crashed():
    record = await execute({"nodes": [{"id": "c", "type": "test/crash"}]}, crash)
    error = record.nodes["c"].error
    assert error is not None
    assert error.type == "block_crashed"
    assert error.node == "c"
    assert "ZeroDivisionError" in error.message
    assert "Traceback" not in error.message


async def test_crashing_block_is_retried_under_its_policy():
    journal = RecordingJournal()
    record = await execute(
        {
            "nodes": [
                {
                    "id": "c",
                    "type": "test/crash",
                    "retry": {"max_attempts": 3, "backoff_ms": 0, "jitter": 0},
                }
            ]
        },
        crash,
        journal=journal,
    )
    assert record.nodes["c"].attempts == 3
    assert journal.of("node_started", "c") == [1, 2, 3]


async def test_block_error_marked_not_retryable_is_not_retried():
    calls: list[int] = []

    @block("final")
    async def final(ctx: Context, config: Empty) -> JSON:
        calls.append(ctx.attempt)
        raise BlockError("no point retrying", retryable=False)

    record = await execute(
        {
            "nodes": [
                {"id": "f", "type": "test/final", "retry": {"max_attempts": 5, "backoff_ms": 0}}
            ]
        },
        final,
    )
    assert calls == [1]
    assert record.nodes["f"].attempts == 1


class Count(BaseModel):
    """An integer field for rendering tests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int


@block("counted")
async def counted(ctx: Context, config: Count) -> JSON:
    """Return the count."""
    return config.count


async def test_rendered_config_that_breaks_the_schema_is_config_invalid_naming_the_path():
    record = await execute(
        {
            "nodes": [
                {
                    "id": "n",
                    "type": "test/counted",
                    "config": {"count": "{{ 'abc' }}"},
                    "retry": {"max_attempts": 3, "backoff_ms": 0},
                }
            ]
        },
        counted,
    )
    error = record.nodes["n"].error
    assert error is not None
    assert error.type == "config_invalid"
    assert error.node == "n"
    assert "config.count" in error.message
    assert record.nodes["n"].attempts == 1


async def test_rendered_config_is_validated_and_coerced():
    record = await execute(
        {"nodes": [{"id": "n", "type": "test/counted", "config": {"count": "{{ $input.n * 2 }}"}}]},
        counted,
        input={"n": 21},
    )
    assert record.output == 42


async def test_expression_error_quotes_the_expression_and_names_the_node():
    record = await execute(
        {
            "nodes": [
                {
                    "id": "calc",
                    "type": "test/echo",
                    "config": {"value": "{{ $input.missing + 1 }}"},
                    "retry": {"max_attempts": 3, "backoff_ms": 0},
                }
            ]
        },
        echo,
        input={},
    )
    assert record.status is ExecutionStatus.ERROR
    error = record.nodes["calc"].error
    assert error is not None
    assert error.type == "expression_error"
    assert error.node == "calc"
    assert "$input.missing + 1" in error.message
    assert "config.value" in error.message
    assert error.details.get("expression") == "$input.missing + 1"
    assert record.error == error
    assert record.nodes["calc"].attempts == 1


async def test_expression_error_inside_text_quotes_that_expression():
    record = await execute(
        {
            "nodes": [
                {
                    "id": "greet",
                    "type": "test/echo",
                    "config": {"value": "hello {{ $input.name.upper() }}!"},
                }
            ]
        },
        echo,
        input={"name": None},
    )
    error = record.nodes["greet"].error
    assert error is not None
    assert error.type == "expression_error"
    assert "$input.name.upper()" in error.message
    assert error.node == "greet"
