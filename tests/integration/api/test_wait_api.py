"""std/wait through the HTTP API: a webhook-started execution waits, the resume endpoint hands it
the payload (waiting for the record, or 202 at once), and bad resumes get SPEC's errors."""

import asyncio

WAITING = {
    "version": 1,
    "id": "approval",
    "nodes": [
        {"id": "ask", "type": "std/wait", "config": {"for": "webhook"}},
        {
            "id": "done",
            "type": "std/transform",
            "config": {"template": {"answer": "{{ $node.ask.data.answer }}"}},
        },
    ],
    "connections": [{"from": "ask", "to": "done"}],
}


async def _parked(client) -> str:
    assert (await client.post("/api/workflows", json=WAITING)).status_code == 201
    started = await client.post("/api/workflows/approval/run", json={"input": {}})
    assert started.status_code == 200, started.text
    record = started.json()
    assert record["status"] == "waiting"
    return str(record["execution_id"])


async def test_resume_hands_the_payload_and_returns_the_record(client):
    execution_id = await _parked(client)
    resumed = await client.post(
        f"/api/executions/{execution_id}/resume", json={"payload": {"answer": 42}}
    )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "success"
    assert resumed.json()["output"] == {"answer": 42}


async def test_resume_without_waiting_answers_202_and_finishes(client, runtime):
    execution_id = await _parked(client)
    resumed = await client.post(
        f"/api/executions/{execution_id}/resume?wait=false", json={"payload": {"answer": "y"}}
    )
    assert resumed.status_code == 202
    assert resumed.json() == {"execution_id": execution_id, "status": "running"}
    async with asyncio.timeout(10):
        while (record := await runtime.record(execution_id)).status.value != "success":
            await asyncio.sleep(0.01)
    assert record.output == {"answer": "y"}


async def test_resuming_twice_is_a_conflict(client):
    execution_id = await _parked(client)
    url = f"/api/executions/{execution_id}/resume"
    assert (await client.post(url, json={"payload": {"answer": 1}})).status_code == 200
    again = await client.post(url, json={"payload": {"answer": 2}})
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "conflict"


async def test_bad_resume_requests_get_spec_errors(client):
    execution_id = await _parked(client)
    url = f"/api/executions/{execution_id}/resume"
    unknown = await client.post(url, json={"payload": 1, "extra": True})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["type"] == "invalid_input"
    wrong_node = await client.post(url, json={"payload": 1, "node": "done"})
    assert wrong_node.status_code == 400
    assert "'done' is not waiting" in wrong_node.json()["error"]["message"]
    missing = await client.post("/api/executions/nope/resume", json={})
    assert missing.status_code == 404
