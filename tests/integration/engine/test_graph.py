"""SPEC §2 traversal: parallel starts, readiness, ports, skips, output and journal order."""

import asyncio
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict

from conv3n.model import JSON, ExecutionStatus, NodeStatus
from conv3n.sdk import Context, Route, block
from tests.integration.engine.helpers import Empty, RecordingJournal, echo, execute


class PortChoice(BaseModel):
    """Which port a test block sends its result to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: Literal["a", "b"] = "a"


@block("pick", ports=("a", "b"))
async def pick(ctx: Context, config: PortChoice) -> Route:
    """Route to the configured port."""
    return Route(config.port, {"took": config.port})


def connect(source: str, target: str, port: str = "main") -> dict[str, str]:
    return {"from": source, "port": port, "to": target}


@pytest.mark.looptime
async def test_several_start_nodes_run_in_parallel():
    # Each block waits for the other's event: only concurrent runs can finish.
    events = {"left": asyncio.Event(), "right": asyncio.Event()}

    class Side(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        me: str
        other: str

    @block("side")
    async def side(ctx: Context, config: Side) -> JSON:
        events[config.me].set()
        await events[config.other].wait()
        return config.me

    record = await execute(
        {
            "settings": {"timeout_ms": 60_000},  # a deadlock ends as an error, not a hang
            "nodes": [
                {"id": "left", "type": "test/side", "config": {"me": "left", "other": "right"}},
                {"id": "right", "type": "test/side", "config": {"me": "right", "other": "left"}},
            ],
        },
        side,
    )
    assert record.status is ExecutionStatus.SUCCESS, record.error
    assert record.output == {"left": "left", "right": "right"}


@pytest.mark.looptime
async def test_independent_branches_run_concurrently():
    events = {"x": asyncio.Event(), "y": asyncio.Event()}

    class Side(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        me: str
        other: str

    @block("side")
    async def side(ctx: Context, config: Side) -> JSON:
        events[config.me].set()
        await events[config.other].wait()
        return config.me

    record = await execute(
        {
            "settings": {"timeout_ms": 60_000},
            "nodes": [
                {"id": "start", "type": "std/noop"},
                {"id": "x", "type": "test/side", "config": {"me": "x", "other": "y"}},
                {"id": "y", "type": "test/side", "config": {"me": "y", "other": "x"}},
            ],
            "connections": [connect("start", "x"), connect("start", "y")],
        },
        side,
    )
    assert record.status is ExecutionStatus.SUCCESS, record.error


async def test_node_waits_for_every_predecessor():
    released = asyncio.Event()

    @block("release")
    async def release(ctx: Context, config: Empty) -> JSON:
        released.set()
        return "fast"

    @block("held")
    async def held(ctx: Context, config: Empty) -> JSON:
        await released.wait()
        return "slow"

    record = await execute(
        {
            "nodes": [
                {"id": "fast", "type": "test/release"},
                {"id": "slow", "type": "test/held"},
                {
                    "id": "join",
                    "type": "test/echo",
                    "config": {"value": "{{ [$node.fast.status, $node.slow.status] }}"},
                },
            ],
            "connections": [connect("fast", "join"), connect("slow", "join")],
        },
        release,
        held,
        echo,
    )
    assert record.nodes["join"].data == ["success", "success"]


async def test_node_runs_when_one_of_its_connections_was_activated():
    record = await execute(
        {
            "nodes": [
                {"id": "choose", "type": "test/pick", "config": {"port": "a"}},
                {"id": "on_a", "type": "std/noop"},
                {"id": "on_b", "type": "std/noop"},
                {"id": "join", "type": "test/echo", "config": {"value": "joined"}},
            ],
            "connections": [
                connect("choose", "on_a", "a"),
                connect("choose", "on_b", "b"),
                connect("on_a", "join"),
                connect("on_b", "join"),
            ],
        },
        pick,
        echo,
    )
    statuses = {node_id: r.status for node_id, r in record.nodes.items()}
    assert statuses == {
        "choose": NodeStatus.SUCCESS,
        "on_a": NodeStatus.SUCCESS,
        "on_b": NodeStatus.SKIPPED,
        "join": NodeStatus.SUCCESS,
    }


async def test_node_whose_predecessors_all_took_other_ports_is_skipped():
    record = await execute(
        {
            "nodes": [
                {"id": "first", "type": "test/pick", "config": {"port": "a"}},
                {"id": "second", "type": "test/pick", "config": {"port": "b"}},
                {"id": "target", "type": "std/noop"},
            ],
            "connections": [connect("first", "target", "b"), connect("second", "target", "a")],
        },
        pick,
    )
    assert record.nodes["target"].status is NodeStatus.SKIPPED
    assert record.nodes["target"].attempts == 0


async def test_skipped_predecessor_skips_successors_down_the_chain():
    calls: list[str] = []

    @block("count")
    async def count(ctx: Context, config: Empty) -> JSON:
        calls.append(ctx.node_id)
        return None

    record = await execute(
        {
            "nodes": [
                {"id": "choose", "type": "test/pick", "config": {"port": "b"}},
                {"id": "one", "type": "test/count"},
                {"id": "two", "type": "test/count"},
                {"id": "three", "type": "test/count"},
            ],
            "connections": [
                connect("choose", "one", "a"),
                connect("one", "two"),
                connect("two", "three"),
            ],
        },
        pick,
        count,
    )
    assert calls == []
    assert [record.nodes[n].status for n in ("one", "two", "three")] == [NodeStatus.SKIPPED] * 3
    assert record.status is ExecutionStatus.SUCCESS


@pytest.mark.parametrize(
    ("value", "taken", "not_taken"), [(5, "big", "small"), (1, "small", "big")]
)
async def test_condition_activates_only_its_true_or_false_port(
    value: int, taken: str, not_taken: str
):
    record = await execute(
        {
            "nodes": [
                {
                    "id": "check",
                    "type": "std/condition",
                    "config": {"expression": "{{ $input > 3 }}"},
                },
                {"id": "big", "type": "test/echo", "config": {"value": "big"}},
                {"id": "small", "type": "test/echo", "config": {"value": "small"}},
            ],
            "connections": [connect("check", "big", "true"), connect("check", "small", "false")],
        },
        echo,
        input=value,
    )
    assert record.nodes[taken].status is NodeStatus.SUCCESS
    assert record.nodes[not_taken].status is NodeStatus.SKIPPED
    assert record.nodes["check"].ports == ["true" if taken == "big" else "false"]
    assert record.output == taken


async def test_custom_route_port_feeds_its_data_to_the_successor():
    record = await execute(
        {
            "nodes": [
                {"id": "choose", "type": "test/pick", "config": {"port": "b"}},
                {"id": "on_b", "type": "std/noop"},
            ],
            "connections": [connect("choose", "on_b", "b")],
        },
        pick,
    )
    assert record.nodes["choose"].ports == ["b"]
    assert record.nodes["on_b"].data == {"took": "b"}


async def test_route_to_a_port_the_node_lacks_fails_the_node():
    @block("wrong", ports=("a",))
    async def wrong(ctx: Context, config: Empty) -> Route:
        return Route("nope", 1)

    record = await execute({"nodes": [{"id": "w", "type": "test/wrong"}]}, wrong)
    assert record.status is ExecutionStatus.ERROR
    assert record.nodes["w"].error is not None
    assert "nope" in record.nodes["w"].error.message


# --- output ---------------------------------------------------------------------------------


async def test_output_is_the_single_sinks_data():
    record = await execute(
        {
            "nodes": [
                {"id": "a", "type": "test/echo", "config": {"value": 1}},
                {"id": "b", "type": "test/echo", "config": {"value": "{{ $node.a.data + 1 }}"}},
            ],
            "connections": [connect("a", "b")],
        },
        echo,
    )
    assert record.output == 2


async def test_output_of_several_sinks_is_keyed_by_sink_id():
    record = await execute(
        {
            "nodes": [
                {"id": "a", "type": "test/echo", "config": {"value": 1}},
                {"id": "b", "type": "test/echo", "config": {"value": 2}},
                {"id": "c", "type": "test/echo", "config": {"value": 3}},
            ],
            "connections": [connect("a", "b"), connect("a", "c")],
        },
        echo,
    )
    assert record.output == {"b": 2, "c": 3}


async def test_skipped_sinks_are_left_out_of_the_output():
    record = await execute(
        {
            "nodes": [
                {"id": "choose", "type": "test/pick", "config": {"port": "a"}},
                {"id": "x", "type": "test/echo", "config": {"value": "x"}},
                {"id": "y", "type": "test/echo", "config": {"value": "y"}},
                {"id": "z", "type": "test/echo", "config": {"value": "z"}},
            ],
            "connections": [
                connect("choose", "x", "a"),
                connect("choose", "y", "a"),
                connect("choose", "z", "b"),
            ],
        },
        pick,
        echo,
    )
    assert record.output == {"x": "x", "y": "y"}


async def test_one_sink_left_after_skips_gives_its_data_unwrapped():
    record = await execute(
        {
            "nodes": [
                {"id": "choose", "type": "test/pick", "config": {"port": "b"}},
                {"id": "x", "type": "test/echo", "config": {"value": "x"}},
                {"id": "z", "type": "test/echo", "config": {"value": "z"}},
            ],
            "connections": [connect("choose", "x", "a"), connect("choose", "z", "b")],
        },
        pick,
        echo,
    )
    assert record.output == "z"


async def test_respond_overrides_the_output():
    record = await execute(
        {
            "nodes": [
                {"id": "a", "type": "test/echo", "config": {"value": 1}},
                {
                    "id": "reply",
                    "type": "std/respond",
                    "config": {"status": 201, "body": {"ok": True}},
                },
                {"id": "after", "type": "test/echo", "config": {"value": "last"}},
            ],
            "connections": [connect("a", "reply"), connect("reply", "after")],
        },
        echo,
    )
    assert record.output == {"ok": True}
    assert record.response is not None
    assert record.response.status == 201


# --- journal ----------------------------------------------------------------------------------


async def test_journal_sees_each_node_start_before_its_finish_and_before_successors():
    journal = RecordingJournal()
    record = await execute(
        {
            "nodes": [
                {"id": "a", "type": "std/noop"},
                {"id": "b", "type": "std/noop"},
                {"id": "c", "type": "std/noop"},
                {"id": "d", "type": "std/noop"},
            ],
            "connections": [
                connect("a", "b"),
                connect("a", "c"),
                connect("b", "d"),
                connect("c", "d"),
            ],
        },
        journal=journal,
    )
    assert record.status is ExecutionStatus.SUCCESS
    index = journal.index
    for node_id in "abcd":
        assert index("node_started", node_id) < index("node_finished", node_id)
    for source, target in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]:
        assert index("node_finished", source) < index("node_started", target)
    kinds = [event for event, *_ in journal.events]
    assert kinds[0] == "execution_started"
    assert kinds[-1] == "execution_finished"
    assert kinds.count("node_finished") == 4


async def test_journal_records_a_skipped_node_once_with_no_attempts():
    journal = RecordingJournal()
    await execute(
        {
            "nodes": [
                {"id": "choose", "type": "test/pick", "config": {"port": "a"}},
                {"id": "skipped", "type": "std/noop"},
            ],
            "connections": [connect("choose", "skipped", "b")],
        },
        pick,
        journal=journal,
    )
    finished: list[Any] = journal.of("node_finished", "skipped")
    assert [r.status for r in finished] == [NodeStatus.SKIPPED]
    assert journal.of("node_started", "skipped") == []


async def test_node_record_holds_times_attempts_and_ports():
    record = await execute(
        {"nodes": [{"id": "a", "type": "test/echo", "config": {"value": 7}}]}, echo
    )
    node = record.nodes["a"]
    assert node.status is NodeStatus.SUCCESS
    assert node.attempts == 1
    assert node.ports == ["main"]
    assert node.started_at is not None
    assert node.finished_at is not None
    assert node.started_at <= node.finished_at
    assert node.duration_ms is not None
    assert node.duration_ms >= 0
    assert record.model_dump(mode="json")["nodes"]["a"]["data"] == 7
