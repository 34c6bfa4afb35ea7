"""Structural blocks the engine powers: std/loop bodies and std/subworkflow children."""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from conv3n.compiler import compile_workflow, load_workflow
from conv3n.engine import Engine, EngineOptions
from conv3n.errors import BlockError
from conv3n.model import JSON, ExecutionStatus, NodeStatus
from conv3n.runtime.files import FileWorkflows
from conv3n.sdk import Context, block
from tests.integration.engine.helpers import Empty, RecordingJournal, Value, echo, execute, registry


def loop_node(
    items: Any, body: list[dict[str, Any]], concurrency: int = 1, **extra: Any
) -> dict[str, Any]:
    return {
        "id": "each",
        "type": "std/loop",
        "config": {"items": items, "concurrency": concurrency, "body": {"nodes": body}},
        **extra,
    }


async def test_loop_concurrency_bound_is_reached_and_never_exceeded():
    active = 0
    highest = 0
    total = 12

    @block("gauge")
    async def gauge(ctx: Context, config: Value) -> JSON:
        nonlocal active, highest
        active += 1
        highest = max(highest, active)
        # Later items finish sooner: completion order differs from item order.
        for _ in range(total - int(config.value)):
            await asyncio.sleep(0)  # a bare loop turn, not a timed wait
        active -= 1
        return config.value

    record = await execute(
        {
            "nodes": [
                loop_node(
                    list(range(total)),
                    [{"id": "g", "type": "test/gauge", "config": {"value": "{{ $item }}"}}],
                    concurrency=3,
                )
            ]
        },
        gauge,
    )
    assert record.status is ExecutionStatus.SUCCESS, record.error
    assert highest == 3
    assert record.output == list(range(total))


async def test_loop_with_concurrency_one_runs_items_one_at_a_time_in_order():
    seen: list[int] = []
    active = 0
    highest = 0

    @block("gauge")
    async def gauge(ctx: Context, config: Value) -> JSON:
        nonlocal active, highest
        active += 1
        highest = max(highest, active)
        await asyncio.sleep(0)
        seen.append(config.value)
        active -= 1
        return config.value

    record = await execute(
        {
            "nodes": [
                loop_node(
                    [3, 1, 2],
                    [{"id": "g", "type": "test/gauge", "config": {"value": "{{ $item }}"}}],
                )
            ]
        },
        gauge,
    )
    assert highest == 1
    assert seen == [3, 1, 2]
    assert record.output == [3, 1, 2]


async def test_loop_body_output_follows_the_sink_rule_per_item():
    record = await execute(
        {
            "nodes": [
                loop_node(
                    [1, 2],
                    [
                        {"id": "a", "type": "test/echo", "config": {"value": "{{ $item }}"}},
                        {"id": "b", "type": "test/echo", "config": {"value": "{{ $item * 10 }}"}},
                    ],
                )
            ]
        },
        echo,
    )
    assert record.output == [{"a": 1, "b": 10}, {"a": 2, "b": 20}]


async def test_failing_loop_body_fails_the_loop_node_naming_the_item():
    @block("odd_fails")
    async def odd_fails(ctx: Context, config: Value) -> JSON:
        if config.value == 3:
            raise BlockError("three is bad")
        return config.value

    record = await execute(
        {
            "nodes": [
                loop_node(
                    [1, 2, 3, 4],
                    [{"id": "check", "type": "test/odd_fails", "config": {"value": "{{ $item }}"}}],
                    concurrency=2,
                )
            ]
        },
        odd_fails,
    )
    assert record.status is ExecutionStatus.ERROR
    error = record.nodes["each"].error
    assert error is not None
    assert error.node == "each"
    assert error.details["index"] == 2
    assert "three is bad" in error.message


async def test_loop_body_nodes_are_not_journaled_as_execution_nodes():
    journal = RecordingJournal()
    record = await execute(
        {"nodes": [loop_node([1, 2], [{"id": "inner", "type": "std/noop"}])]},
        journal=journal,
    )
    assert set(record.nodes) == {"each"}
    assert journal.of("node_started", "inner") == []


# --- sub-workflows ------------------------------------------------------------------------------


def write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, **document}), encoding="utf-8")
    return path


def engine_for(
    *blocks: Any, journal: RecordingJournal | None = None, max_depth: int = 10
) -> Engine:
    return Engine(
        journal=journal,
        workflows=FileWorkflows(registry(*blocks)),
        options=EngineOptions(max_depth=max_depth),
    )


def plan_of(path: Path, *blocks: Any) -> Any:
    document = json.loads(path.read_text(encoding="utf-8"))
    return compile_workflow(load_workflow(document), registry(*blocks), source=str(path))


async def test_subworkflow_path_is_relative_to_the_parent_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    write(
        tmp_path / "flows" / "lib" / "double.json",
        {
            "nodes": [
                {"id": "twice", "type": "test/echo", "config": {"value": "{{ $input.n * 2 }}"}}
            ]
        },
    )
    parent = write(
        tmp_path / "flows" / "main.json",
        {
            "nodes": [
                {
                    "id": "call",
                    "type": "std/subworkflow",
                    "config": {"workflow": "lib/double.json", "input": {"n": "{{ $input }}"}},
                }
            ]
        },
    )
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    journal = RecordingJournal()
    async with engine_for(echo, journal=journal) as engine:
        record = await engine.execute(plan_of(parent, echo), 21)
    assert record.status is ExecutionStatus.SUCCESS, record.error
    assert record.output == 42
    children = [r for r in journal.finished.values() if r.mode == "subworkflow"]
    assert [c.output for c in children] == [42]


async def test_failing_subworkflow_fails_the_calling_node(tmp_path: Path):
    write(
        tmp_path / "bad.json",
        {"nodes": [{"id": "f", "type": "std/fail", "config": {"message": "nope"}}]},
    )
    parent = write(
        tmp_path / "main.json",
        {"nodes": [{"id": "call", "type": "std/subworkflow", "config": {"workflow": "bad.json"}}]},
    )
    async with engine_for() as engine:
        record = await engine.execute(plan_of(parent), None)
    assert record.status is ExecutionStatus.ERROR
    error = record.nodes["call"].error
    assert error is not None
    assert "nope" in error.message


async def test_subworkflows_nesting_deeper_than_the_limit_fail(tmp_path: Path):
    recursive = write(
        tmp_path / "self.json",
        {
            "nodes": [
                {"id": "again", "type": "std/subworkflow", "config": {"workflow": "self.json"}}
            ]
        },
    )
    journal = RecordingJournal()
    async with engine_for(journal=journal, max_depth=3) as engine:
        record = await engine.execute(plan_of(recursive), None)
    assert record.status is ExecutionStatus.ERROR
    assert record.error is not None
    assert "deeper than 3" in record.error.message
    # The root cause is stated once, not wrapped again at every level.
    assert record.error.message.count("sub-workflow 'self.json' failed") == 1
    cause = record.error.details["error"]
    assert isinstance(cause, dict)
    assert "deeper than 3" in cause["message"]
    assert record.error.details["execution_id"] in journal.finished
    # The top execution plus three nested children ran.
    assert len(journal.finished) == 4


async def test_subworkflow_without_wait_returns_its_id_and_finishes_before_aclose(tmp_path: Path):
    release = asyncio.Event()
    done: list[str] = []

    @block("held")
    async def held(ctx: Context, config: Empty) -> JSON:
        await release.wait()
        done.append(ctx.execution_id)
        return "child done"

    write(tmp_path / "child.json", {"nodes": [{"id": "h", "type": "test/held"}]})
    parent = write(
        tmp_path / "main.json",
        {
            "nodes": [
                {
                    "id": "spawn",
                    "type": "std/subworkflow",
                    "config": {"workflow": "child.json", "wait": False},
                }
            ]
        },
    )
    journal = RecordingJournal()
    engine = engine_for(held, journal=journal)
    record = await engine.execute(plan_of(parent, held), None)
    assert record.status is ExecutionStatus.SUCCESS, record.error
    assert isinstance(record.output, dict)
    child_id = record.output["execution_id"]
    assert child_id != record.execution_id
    assert done == []
    release.set()
    await engine.aclose()
    assert done == [child_id]
    assert journal.finished[child_id].status is ExecutionStatus.SUCCESS
    assert journal.finished[child_id].output == "child done"


async def test_loop_runs_a_body_node_on_error_continue_per_item():
    @block("odd_fails")
    async def odd_fails(ctx: Context, config: Value) -> JSON:
        if config.value % 2:
            raise BlockError("odd")
        return config.value

    record = await execute(
        {
            "nodes": [
                loop_node(
                    [1, 2, 3],
                    [
                        {
                            "id": "check",
                            "type": "test/odd_fails",
                            "config": {"value": "{{ $item }}"},
                            "on_error": "continue",
                        }
                    ],
                )
            ]
        },
        odd_fails,
    )
    assert record.status is ExecutionStatus.SUCCESS
    assert record.output == [None, 2, None]
    assert record.nodes["each"].status is NodeStatus.SUCCESS


@block("stuck")
async def stuck(ctx: Context, config: Empty) -> JSON:
    """Wait for an event nobody sets."""
    await asyncio.Event().wait()
    return None


@pytest.mark.parametrize("stop", ["sibling_fails", "execution_timeout", "engine_cancel"])
@pytest.mark.looptime
async def test_child_of_a_stopped_execution_is_recorded_cancelled(tmp_path: Path, stop: str):
    # The child's own limit only guards against a hang if the rule is broken.
    write(
        tmp_path / "child.json",
        {"nodes": [{"id": "s", "type": "test/stuck", "timeout_ms": 3_600_000}]},
    )
    nodes: list[dict[str, Any]] = [
        {"id": "call", "type": "std/subworkflow", "config": {"workflow": "child.json"}}
    ]
    document: dict[str, Any] = {"nodes": nodes}
    if stop == "sibling_fails":
        nodes.append({"id": "fail_later", "type": "test/fail_when_child_runs"})
    if stop == "execution_timeout":
        document["settings"] = {"timeout_ms": 5_000}
    parent = write(tmp_path / "main.json", document)
    journal = RecordingJournal()
    child_started = asyncio.Event()

    class StartWatch(RecordingJournal):
        def node_started(self, execution_id: str, node_id: str, *args: Any) -> None:
            if node_id == "s":
                child_started.set()

    @block("fail_when_child_runs")
    async def fail_when_child_runs(ctx: Context, config: Empty) -> JSON:
        await child_started.wait()
        raise BlockError("sibling failed")

    from conv3n.engine import Journals

    engine = Engine(
        journal=Journals([journal, StartWatch()]),
        workflows=FileWorkflows(registry(stuck, fail_when_child_runs)),
    )
    async with engine:
        task = asyncio.create_task(
            engine.execute(plan_of(parent, stuck, fail_when_child_runs), None, execution_id="top")
        )
        if stop == "engine_cancel":
            await child_started.wait()
            engine.cancel("top")
        record = await task
    assert record.status is (
        ExecutionStatus.CANCELLED if stop == "engine_cancel" else ExecutionStatus.ERROR
    )
    children = {k: v for k, v in journal.finished.items() if k != "top"}
    assert [c.status for c in children.values()] == [ExecutionStatus.CANCELLED]
    (child,) = children.values()
    assert child.nodes["s"].status is NodeStatus.CANCELLED
