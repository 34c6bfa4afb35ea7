"""SPEC §2 durability: an execution resumed with `prior` records re-runs only unfinished nodes."""

from datetime import UTC, datetime

from conv3n.model import JSON, ErrorInfo, ExecutionStatus, NodeRecord, NodeStatus
from conv3n.sdk import BlockSpec, Context, block
from tests.integration.engine.helpers import RecordingJournal, Value, execute

WHEN = datetime(2030, 1, 1, tzinfo=UTC)


def done(
    data: JSON, ports: list[str] | None = None, effects: dict[str, JSON] | None = None
) -> NodeRecord:
    return NodeRecord(
        status=NodeStatus.SUCCESS,
        data=data,
        attempts=1,
        started_at=WHEN,
        finished_at=WHEN,
        duration_ms=1.0,
        ports=ports if ports is not None else ["main"],
        effects=effects,
    )


def connect(source: str, target: str, port: str = "main") -> dict[str, str]:
    return {"from": source, "port": port, "to": target}


def counting() -> tuple[BlockSpec, list[str]]:
    calls: list[str] = []

    @block("tally")
    async def tally(ctx: Context, config: Value) -> JSON:
        calls.append(ctx.node_id)
        return config.value

    return tally, calls


CHAIN = {
    "nodes": [
        {"id": "a", "type": "test/tally", "config": {"value": "fresh a"}},
        {"id": "b", "type": "test/tally", "config": {"value": "{{ $node.a.data + ' then b' }}"}},
        {"id": "c", "type": "test/tally", "config": {"value": "{{ $node.b.data + ' then c' }}"}},
    ],
    "connections": [connect("a", "b"), connect("b", "c")],
}


async def test_resume_does_not_rerun_finished_nodes_and_runs_the_rest():
    tally, calls = counting()
    journal = RecordingJournal()
    record = await execute(
        CHAIN,
        tally,
        prior={"a": done("stored a"), "b": done("stored b")},
        journal=journal,
    )
    assert record.status is ExecutionStatus.SUCCESS
    assert calls == ["c"]
    assert record.output == "stored b then c"
    assert record.nodes["a"].data == "stored a"
    assert journal.of("node_started", "a") == []
    assert journal.of("node_started", "b") == []


async def test_resume_reruns_nodes_that_were_running_or_cancelled():
    tally, calls = counting()
    cancelled = NodeRecord(status=NodeStatus.CANCELLED)
    running = NodeRecord(status=NodeStatus.RUNNING, attempts=1, started_at=WHEN)
    record = await execute(
        CHAIN,
        tally,
        prior={"a": done("stored a"), "b": running, "c": cancelled},
    )
    assert calls == ["b", "c"]
    assert record.output == "stored a then b then c"


async def test_resume_keeps_a_stored_port_choice():
    tally, calls = counting()
    record = await execute(
        {
            "nodes": [
                {"id": "check", "type": "std/condition", "config": {"expression": "{{ true }}"}},
                {"id": "yes", "type": "test/tally", "config": {"value": "yes"}},
                {"id": "no", "type": "test/tally", "config": {"value": "no"}},
            ],
            "connections": [connect("check", "yes", "true"), connect("check", "no", "false")],
        },
        tally,
        prior={"check": done({"result": False}, ["false"])},
    )
    assert calls == ["no"]
    assert record.nodes["yes"].status is NodeStatus.SKIPPED
    assert record.output == "no"


async def test_resume_replays_a_routed_error_to_its_error_branch():
    tally, calls = counting()
    failed = NodeRecord(
        status=NodeStatus.ERROR,
        error=ErrorInfo(type="block_error", message="stored failure", node="risky"),
        attempts=2,
        started_at=WHEN,
        finished_at=WHEN,
        duration_ms=1.0,
        ports=["error"],
    )
    record = await execute(
        {
            "nodes": [
                {
                    "id": "risky",
                    "type": "test/tally",
                    "config": {"value": "ran"},
                    "on_error": "route",
                },
                {"id": "ok_path", "type": "test/tally", "config": {"value": "ok"}},
                {
                    "id": "handler",
                    "type": "test/tally",
                    "config": {"value": "{{ 'handled: ' + $node.risky.error.message }}"},
                },
            ],
            "connections": [connect("risky", "ok_path"), connect("risky", "handler", "error")],
        },
        tally,
        prior={"risky": failed},
    )
    assert calls == ["handler"]
    assert record.status is ExecutionStatus.SUCCESS
    assert record.nodes["risky"].status is NodeStatus.ERROR
    assert record.nodes["ok_path"].status is NodeStatus.SKIPPED
    assert record.output == "handled: stored failure"


async def test_resume_reruns_a_node_that_failed_without_activating_anything():
    tally, calls = counting()
    failed = NodeRecord(
        status=NodeStatus.ERROR,
        error=ErrorInfo(type="block_error", message="stored failure", node="a"),
        attempts=1,
        ports=[],
    )
    record = await execute(CHAIN, tally, prior={"a": failed})
    assert calls == ["a", "b", "c"]
    assert record.status is ExecutionStatus.SUCCESS


async def test_resume_of_parallel_branches_runs_only_the_unfinished_one():
    tally, calls = counting()
    record = await execute(
        {
            "nodes": [
                {"id": "left", "type": "test/tally", "config": {"value": "L"}},
                {"id": "right", "type": "test/tally", "config": {"value": "R"}},
                {"id": "join", "type": "std/merge"},
            ],
            "connections": [connect("left", "join"), connect("right", "join")],
        },
        tally,
        prior={"left": done("stored L")},
    )
    assert calls == ["right"]
    assert record.output == {"left": "stored L", "right": "R"}


async def test_records_keep_the_vars_and_response_a_node_set():
    tally, _ = counting()
    record = await execute(
        {
            "nodes": [
                {"id": "setter", "type": "std/set", "config": {"values": {"limit": 5}}},
                {"id": "reply", "type": "std/respond", "config": {"status": 201, "body": 1}},
                {"id": "plain", "type": "test/tally", "config": {"value": "x"}},
            ],
        },
        tally,
    )
    assert record.nodes["setter"].effects == {"vars": {"limit": 5}}
    response = {"status": 201, "headers": {}, "body": 1}
    assert record.nodes["reply"].effects == {"response": response}
    assert record.nodes["plain"].effects is None


async def test_resume_restores_vars_set_before_the_interruption():
    tally, calls = counting()
    record = await execute(
        {
            "nodes": [
                {"id": "setter", "type": "std/set", "config": {"values": {"limit": 5}}},
                {"id": "use", "type": "test/tally", "config": {"value": "{{ $vars.limit }}"}},
            ],
            "connections": [connect("setter", "use")],
        },
        tally,
        prior={"setter": done({"limit": 5}, effects={"vars": {"limit": 5}})},
    )
    assert calls == ["use"]
    assert record.output == 5


async def test_resume_keeps_the_response_of_a_finished_respond_node():
    tally, _ = counting()
    record = await execute(
        {
            "nodes": [
                {"id": "reply", "type": "std/respond", "config": {"body": {"ok": True}}},
                {"id": "after", "type": "test/tally", "config": {"value": "later"}},
            ],
            "connections": [connect("reply", "after")],
        },
        tally,
        prior={
            "reply": done(
                {"ok": True},
                effects={"response": {"status": 200, "headers": {}, "body": {"ok": True}}},
            )
        },
    )
    assert record.output == {"ok": True}
    assert record.response is not None
