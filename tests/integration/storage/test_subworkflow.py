"""std/subworkflow with storage: stored children by id, their own stored executions, limits."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from conv3n.compiler import load_workflow
from conv3n.model import JSON, ExecutionStatus, Workflow
from conv3n.runtime import Settings
from conv3n.runtime.service import Runtime
from conv3n.sdk import BlockRegistry, Context, block
from conv3n.storage import Database, schema

RELEASE: dict[str, asyncio.Event] = {}


class Empty(BaseModel):
    """No config."""


@block("held")
async def held(ctx: Context, config: Empty) -> JSON:
    """Wait until the test releases this execution's input key."""
    await RELEASE[str(ctx.input)].wait()
    return {"released": ctx.input}


@pytest.fixture
def registry() -> BlockRegistry:
    registry = BlockRegistry.discover()
    registry.add("test", [held], origin="(test)")
    return registry


@pytest.fixture
async def migrated(database_url: str) -> str:
    database = Database(database_url)
    await schema.upgrade(database)
    await database.close()
    return database_url


@pytest.fixture
async def rt(settings: Settings, migrated: str, registry: BlockRegistry) -> AsyncIterator[Runtime]:
    async with Runtime(settings, registry=registry) as runtime:
        yield runtime


def workflow(wid: str, *nodes: dict[str, Any]) -> Workflow:
    return load_workflow({"version": 1, "id": wid, "nodes": list(nodes)})


def call(ref: str, input: JSON = None, *, wait: bool = True, **node: Any) -> dict[str, Any]:
    config = {"workflow": ref, "input": input, "wait": wait}
    return {"id": "call", "type": "std/subworkflow", "config": config, **node}


def times(factor: int) -> dict[str, Any]:
    return {
        "id": "times",
        "type": "std/transform",
        "config": {"template": f"{{{{ $input.n * {factor} }}}}"},
    }


async def test_parent_runs_a_stored_child_by_id_and_gets_its_output(rt: Runtime):
    await rt.save_workflow(workflow("double", times(2)))
    await rt.save_workflow(workflow("parent", call("double", {"n": "{{ $input }}"})))
    record = await rt.run_workflow("parent", 21)
    assert record.status is ExecutionStatus.SUCCESS, record.error
    assert record.output == 42


async def test_the_child_runs_at_its_latest_stored_version(rt: Runtime):
    await rt.save_workflow(workflow("scale", times(2)))
    await rt.save_workflow(workflow("parent", call("scale", {"n": "{{ $input }}"})))
    assert (await rt.run_workflow("parent", 10)).output == 20
    await rt.save_workflow(workflow("scale", times(3)))
    assert (await rt.run_workflow("parent", 10)).output == 30
    [newest, oldest] = await rt.list_executions(workflow_id="scale")
    assert (newest.workflow_version, oldest.workflow_version) == (2, 1)


async def test_a_waited_child_is_stored_as_its_own_execution_with_its_parent(rt: Runtime):
    await rt.save_workflow(workflow("double", times(2)))
    await rt.save_workflow(workflow("parent", call("double", {"n": 4})))
    parent = await rt.run_workflow("parent")
    [child] = await rt.list_executions(workflow_id="double")
    assert child.mode == "subworkflow"
    assert child.parent_id == parent.execution_id
    assert child.status is ExecutionStatus.SUCCESS
    stored = await rt.record(child.execution_id)
    assert stored.input == {"n": 4}
    assert stored.output == 8
    assert stored.nodes["times"].data == 8
    [top] = await rt.list_executions(workflow_id="parent")
    assert top.parent_id is None
    assert top.mode == "manual"


async def test_fire_and_forget_returns_the_id_of_a_stored_child_that_finishes(
    settings: Settings, migrated: str, registry: BlockRegistry
):
    RELEASE["ff"] = asyncio.Event()
    async with Runtime(settings, registry=registry) as rt:
        await rt.save_workflow(workflow("slow", {"id": "h", "type": "test/held"}))
        await rt.save_workflow(workflow("parent", call("slow", "ff", wait=False)))
        parent = await rt.run_workflow("parent")
        assert parent.status is ExecutionStatus.SUCCESS, parent.error
        assert isinstance(parent.output, dict)
        child_id = parent.output["execution_id"]
        running = await rt.record(child_id)
        assert running.status is ExecutionStatus.RUNNING
        assert running.mode == "subworkflow"
        [listed] = await rt.list_executions(workflow_id="slow")
        assert listed.parent_id == parent.execution_id
        RELEASE["ff"].set()
    # closing waited for the child; a new process finds it finished
    async with Runtime(settings, registry=registry) as again:
        done = await again.record(child_id)
        assert done.status is ExecutionStatus.SUCCESS
        assert done.output == {"released": "ff"}
        assert await again.resume_interrupted() == []


async def test_a_workflow_calling_itself_stops_at_the_depth_limit(
    database_url: str, migrated: str, registry: BlockRegistry, tmp_path: Path
):
    env = {"CONV3N_DATA_DIR": str(tmp_path / "data"), "CONV3N_MAX_SUBWORKFLOW_DEPTH": "3"}
    settings = Settings.from_env(env, database_url=database_url)
    async with Runtime(settings, registry=registry) as rt:
        await rt.save_workflow(workflow("self", call("self")))
        record = await rt.run_workflow("self")
        assert record.status is ExecutionStatus.ERROR
        assert record.error is not None
        assert "deeper than 3 levels" in record.error.message
        assert record.error.message.count("sub-workflow 'self' failed") == 1
        stored = await rt.list_executions(workflow_id="self")
    assert len(stored) == 4  # the top execution and three nested children
    assert sorted(s.mode for s in stored) == ["manual", "subworkflow", "subworkflow", "subworkflow"]
    assert all(s.status is ExecutionStatus.ERROR for s in stored)
    parents = {s.execution_id: s.parent_id for s in stored}
    chain = [record.execution_id]
    while (child := next((k for k, v in parents.items() if v == chain[-1]), None)) is not None:
        chain.append(child)
    assert len(chain) == 4


async def test_a_missing_workflow_id_fails_the_node_naming_it(rt: Runtime):
    retry = {"max_attempts": 3, "backoff_ms": 1}
    await rt.save_workflow(workflow("parent", call("no-such-flow", retry=retry)))
    record = await rt.run_workflow("parent")
    assert record.status is ExecutionStatus.ERROR
    node = record.nodes["call"]
    assert node.error is not None
    assert node.error.type == "workflow_not_found"
    assert "'no-such-flow'" in node.error.message
    assert node.attempts == 1  # a missing workflow does not appear by retrying


async def test_a_file_parent_runs_a_child_file_relative_to_it_and_stores_both(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = tmp_path / "flows"
    (folder / "lib").mkdir(parents=True)
    child = {"version": 1, "nodes": [times(5)]}
    (folder / "lib" / "five.json").write_text(json.dumps(child))
    parent = {"version": 1, "id": "main", "nodes": [call("lib/five.json", {"n": "{{ $input }}"})]}
    (folder / "main.json").write_text(json.dumps(parent))
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    record = await rt.run_file(folder / "main.json", 3)
    assert record.status is ExecutionStatus.SUCCESS, record.error
    assert record.output == 15
    listed = await rt.list_executions()
    [child_row] = [s for s in listed if s.mode == "subworkflow"]
    assert child_row.parent_id == record.execution_id
    assert (await rt.record(child_row.execution_id)).output == 15
