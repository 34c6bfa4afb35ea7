"""A workflow with a bad trigger is refused wherever it is saved or validated, with the place
of each problem: the API (422), Runtime.save_workflow, `conv3n validate` on a file."""

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from conv3n.errors import WorkflowInvalid
from conv3n.model import Workflow
from conv3n.runtime import validate_files
from conv3n.runtime.service import Runtime
from conv3n.sdk import BlockRegistry
from tests.integration.triggers.conftest import workflow

BAD = workflow(
    "bad",
    {"type": "webhook", "path": "ok"},
    {"type": "cron", "expression": "every day at noon"},
    {"type": "interval", "every_ms": 10},
)


def places(body: dict[str, Any]) -> list[str]:
    return [p["path"] for p in body["error"]["details"]["problems"]]


async def test_the_api_refuses_a_bad_trigger_with_422_naming_its_place(
    client: httpx.AsyncClient,
):
    reply = await client.post("/api/workflows", json=BAD)
    assert reply.status_code == 422
    assert places(reply.json()) == ["triggers[1].expression", "triggers[2].every_ms"]
    assert (await client.get("/api/workflows/bad")).status_code == 404


async def test_replacing_a_workflow_checks_its_triggers_too(client: httpx.AsyncClient):
    good = workflow("good", {"type": "interval", "every_ms": 1000})
    assert (await client.post("/api/workflows", json=good)).status_code == 201
    reply = await client.put("/api/workflows/good", json={**BAD, "id": "good"})
    assert reply.status_code == 422
    assert "triggers[1].expression" in places(reply.json())


async def test_node_and_trigger_problems_are_reported_together(client: httpx.AsyncClient):
    document = {**BAD, "nodes": [{"id": "x", "type": "std/nonexistent"}]}
    reply = await client.post("/api/workflows", json=document)
    assert reply.status_code == 422
    found = places(reply.json())
    assert found[0].startswith("nodes[0]")
    assert found[1:] == ["triggers[1].expression", "triggers[2].every_ms"]


async def test_hostile_trigger_lists_are_refused_without_a_crash(client: httpx.AsyncClient):
    many = [{"type": "interval", "every_ms": 50}] * 2000
    reply = await client.post("/api/workflows", json=workflow("many", *many))
    assert reply.status_code == 422
    assert len(places(reply.json())) == 2000
    weird = workflow("weird", {"type": ["cron"]}, {"type": "cron", "expression": 5})
    reply = await client.post("/api/workflows", json=weird)
    assert reply.status_code == 422
    assert places(reply.json()) == ["triggers[0].type", "triggers[1].expression"]


async def test_concurrent_saves_of_bad_workflows_all_fail_cleanly(client: httpx.AsyncClient):
    replies = await asyncio.gather(
        *(client.post("/api/workflows", json={**BAD, "id": f"bad-{n}"}) for n in range(20))
    )
    assert {r.status_code for r in replies} == {422}


async def test_runtime_save_workflow_checks_triggers(runtime: Runtime):
    with pytest.raises(WorkflowInvalid) as caught:
        await runtime.save_workflow(Workflow.model_validate(BAD))
    assert [p.where for p in caught.value.problems] == [
        "triggers[1].expression",
        "triggers[2].every_ms",
    ]


def test_validating_a_file_reports_its_trigger_problems(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(BAD))
    found = validate_files([path], BlockRegistry.discover())[path]
    assert [p.where for p in found] == ["triggers[1].expression", "triggers[2].every_ms"]
