"""The HTTP API of SPEC §8, in-process: every endpoint and its error paths."""

import asyncio

import httpx
import pytest

from conv3n.api import create_app

GREET = {
    "version": 1,
    "id": "greet",
    "triggers": [{"type": "webhook", "path": "hello"}],
    "nodes": [
        {
            "id": "shape",
            "type": "std/transform",
            "config": {"template": {"hi": "{{ $input.body.name }}"}},
        }
    ],
}


async def test_health_reports_the_database(client):
    reply = await client.get("/health")
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok"


async def test_health_is_503_when_the_database_is_unreachable(tmp_path):
    from conv3n.runtime import Settings
    from conv3n.runtime.service import Runtime

    settings = Settings.from_env({"CONV3N_DATA_DIR": str(tmp_path)})
    async with Runtime(settings) as runtime:
        app = create_app(runtime)

        async def down() -> bool:
            return False

        runtime.db.ping = down  # type: ignore[method-assign]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
            reply = await http.get("/health")
    assert reply.status_code == 503
    assert reply.json()["database"] == "unreachable"


async def test_run_an_unsaved_workflow(client):
    body = {
        "workflow": {
            "version": 1,
            "nodes": [
                {"id": "a", "type": "std/transform", "config": {"template": "{{ $input.n * 2 }}"}}
            ],
        },
        "input": {"n": 21},
    }
    reply = await client.post("/api/run", json=body)
    assert reply.status_code == 200
    record = reply.json()
    assert record["status"] == "success"
    assert record["output"] == 42
    stored = await client.get(f"/api/executions/{record['execution_id']}")
    assert stored.json()["nodes"]["a"]["data"] == 42


async def test_invalid_workflows_get_422_with_every_problem(client):
    bad = {
        "version": 1,
        "id": "bad",
        "nodes": [{"id": "a", "type": "std/nope"}, {"id": "a", "type": "std/noop"}],
        "connections": [{"from": "a", "to": "zz"}],
    }
    reply = await client.post("/api/workflows", json=bad)
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["type"] == "workflow_invalid"
    paths = {p["path"] for p in error["details"]["problems"]}
    assert {"nodes[0].type", "nodes[1].id", "connections[0].to"} <= paths


async def test_workflow_crud_keeps_versions(client):
    created = await client.post("/api/workflows", json=GREET)
    assert created.status_code == 201
    assert created.json()["version"] == 1
    assert (await client.post("/api/workflows", json=GREET)).status_code == 409
    changed = {**GREET, "name": "Greeter"}
    replaced = await client.put("/api/workflows/greet", json=changed)
    assert replaced.json()["version"] == 2
    first = await client.get("/api/workflows/greet", params={"version": 1})
    assert "name" not in first.json()["workflow"]
    listed = await client.get("/api/workflows")
    assert [w["id"] for w in listed.json()["items"]] == ["greet"]
    assert (await client.delete("/api/workflows/greet")).status_code == 204
    assert (await client.get("/api/workflows/greet")).status_code == 404


async def test_workflow_listing_pages(client):
    for name in ("a", "b", "c"):
        await client.post("/api/workflows", json={**GREET, "id": name})
    first = (await client.get("/api/workflows", params={"limit": 2})).json()
    second = (
        await client.get("/api/workflows", params={"limit": 2, "after": first["next"]})
    ).json()
    assert [w["id"] for w in first["items"] + second["items"]] == ["a", "b", "c"]
    assert second["next"] is None


async def test_run_a_stored_workflow_waiting_and_not_waiting(client, runtime):
    await client.post("/api/workflows", json=GREET)
    waited = await client.post("/api/workflows/greet/run", json={"input": {"body": {"name": "A"}}})
    assert waited.json()["output"] == {"hi": "A"}
    started = await client.post(
        "/api/workflows/greet/run",
        params={"wait": "false"},
        json={"input": {"body": {"name": "B"}}},
    )
    assert started.status_code == 202
    execution_id = started.json()["execution_id"]
    while (record := (await client.get(f"/api/executions/{execution_id}")).json())[
        "status"
    ] != "success":
        await asyncio.sleep(0)
    assert record["output"] == {"hi": "B"}


async def test_idempotency_key_header_starts_at_most_once(client):
    await client.post("/api/workflows", json=GREET)
    headers = {"Idempotency-Key": "order-7"}
    one = await client.post("/api/workflows/greet/run", headers=headers, json={"input": {}})
    two = await client.post("/api/workflows/greet/run", headers=headers, json={"input": {}})
    assert one.json()["execution_id"] == two.json()["execution_id"]


async def test_webhooks_run_active_workflows_only(client):
    await client.post("/api/workflows", json=GREET)
    assert (await client.post("/webhook/hello", json={"name": "Ada"})).status_code == 404
    await client.post("/api/workflows/greet/activate")
    reply = await client.post("/webhook/hello", json={"name": "Ada"})
    assert reply.status_code == 200
    assert reply.json() == {"hi": "Ada"}
    assert (await client.get("/webhook/hello")).status_code == 404  # POST only
    await client.post("/api/workflows/greet/deactivate")
    assert (await client.post("/webhook/hello", json={})).status_code == 404


async def test_webhook_std_respond_sets_status_headers_and_body(client):
    flow = {
        "version": 1,
        "id": "reply",
        "triggers": [{"type": "webhook", "path": "r"}],
        "nodes": [
            {
                "id": "out",
                "type": "std/respond",
                "config": {"status": 201, "headers": {"X-Done": "yes"}, "body": "made"},
            }
        ],
    }
    await client.post("/api/workflows", json=flow)
    await client.post("/api/workflows/reply/activate")
    reply = await client.post("/webhook/r")
    assert (reply.status_code, reply.headers["x-done"], reply.text) == (201, "yes", "made")


async def test_webhook_failure_is_500_with_the_execution_id(client):
    flow = {
        "version": 1,
        "id": "boom",
        "triggers": [{"type": "webhook", "path": "boom"}],
        "nodes": [{"id": "f", "type": "std/fail", "config": {"message": "no"}}],
    }
    await client.post("/api/workflows", json=flow)
    await client.post("/api/workflows/boom/activate")
    reply = await client.post("/webhook/boom")
    assert reply.status_code == 500
    assert reply.json()["error"]["message"] == "no"
    assert reply.json()["execution_id"]


async def test_async_webhook_answers_202_and_still_runs(client, runtime):
    flow = {
        **GREET,
        "id": "later",
        "triggers": [{"type": "webhook", "path": "later", "response": "async"}],
    }
    await client.post("/api/workflows", json=flow)
    await client.post("/api/workflows/later/activate")
    reply = await client.post("/webhook/later", json={"name": "Z"})
    assert reply.status_code == 202
    await runtime.close()  # waits for background executions
    await runtime.open()
    record = (await client.get(f"/api/executions/{reply.json()['execution_id']}")).json()
    assert record["output"] == {"hi": "Z"}


async def test_webhook_body_over_the_limit_is_413(client):
    flow = {
        **GREET,
        "id": "small",
        "triggers": [{"type": "webhook", "path": "small", "max_body_bytes": 100}],
    }
    await client.post("/api/workflows", json=flow)
    await client.post("/api/workflows/small/activate")
    reply = await client.post("/webhook/small", content=b"x" * 1000)
    assert reply.status_code == 413


async def test_executions_list_filters_and_errors(client):
    body = {"workflow": {"version": 1, "nodes": [{"id": "f", "type": "std/fail"}]}}
    failed = (await client.post("/api/run", json=body)).json()
    listed = await client.get("/api/executions", params={"status": "error"})
    assert [e["execution_id"] for e in listed.json()["items"]] == [failed["execution_id"]]
    bad = await client.get("/api/executions", params={"status": "nope"})
    assert bad.status_code == 400
    assert (await client.get("/api/executions/nope")).status_code == 404
    assert (await client.post("/api/executions/nope/retry")).status_code == 404
    retried = await client.post(f"/api/executions/{failed['execution_id']}/retry")
    assert retried.json()["mode"] == "retry"
    not_waiting = await client.post(f"/api/executions/{failed['execution_id']}/resume")
    assert not_waiting.status_code == 409
    not_running = await client.post(f"/api/executions/{failed['execution_id']}/stop")
    assert not_running.status_code == 409


async def test_secrets_never_show_values(client):
    assert (await client.put("/api/secrets/token", json={"value": "v-123456"})).status_code == 201
    assert (await client.put("/api/secrets/token", json={"value": "v-654321"})).status_code == 204
    listed = await client.get("/api/secrets")
    assert [s["name"] for s in listed.json()] == ["token"]
    assert "v-" not in listed.text
    bad = await client.put("/api/secrets/bad-name", json={"value": "x"})
    assert bad.status_code == 400
    assert (await client.delete("/api/secrets/token")).status_code == 204
    assert (await client.delete("/api/secrets/token")).status_code == 404


async def test_blocks_and_openapi(client):
    blocks = (await client.get("/api/blocks")).json()
    assert "std/http_request" in {b["type"] for b in blocks}
    spec = (await client.get("/openapi.json")).json()
    assert "/api/workflows/{workflow_id}/run" in spec["paths"]


@pytest.mark.parametrize("body", [b"{bad", b"[]", b'{"workflow": 5}', b"\xff\xfe", b"{}"])
async def test_malformed_bodies_are_4xx_json(client, body):
    reply = await client.post(
        "/api/run", content=body, headers={"content-type": "application/json"}
    )
    assert 400 <= reply.status_code < 500
    assert "error" in reply.json()


async def test_token_guards_the_api_but_not_health_or_webhooks(runtime):
    app = create_app(runtime, api_token="s3cret-token")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
        assert (await http.get("/health")).status_code == 200
        assert (await http.get("/api/blocks")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await http.get("/api/blocks", headers=wrong)).status_code == 401
        right = {"Authorization": "Bearer s3cret-token"}
        assert (await http.get("/api/blocks", headers=right)).status_code == 200


async def test_signed_webhooks_refuse_bad_signatures_without_an_execution(client, runtime):
    import time

    from conv3n.api import signatures

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    flow = {
        **GREET,
        "id": "signed",
        "triggers": [{"type": "webhook", "path": "signed", "secret": secret}],
    }
    await client.post("/api/workflows", json=flow)
    await client.post("/api/workflows/signed/activate")
    body = b'{"name": "Ada"}'
    now = int(time.time())
    good = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": signatures.sign(secret, "msg_1", now, body),
        "content-type": "application/json",
    }
    assert (await client.post("/webhook/signed", content=body, headers=good)).status_code == 200
    for bad in (
        {**good, "webhook-signature": "v1,AAAA"},
        {"content-type": "application/json"},
        {**good, "webhook-timestamp": str(now - 3600)},
    ):
        refused = await client.post("/webhook/signed", content=body, headers=bad)
        assert refused.status_code == 401
    listed = (await client.get("/api/executions")).json()["items"]
    assert len(listed) == 1


async def test_a_webhook_secret_may_name_a_stored_secret(client, runtime):
    import time

    from conv3n.api import signatures

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    flow = {
        **GREET,
        "id": "named",
        "triggers": [{"type": "webhook", "path": "named", "secret": "hook_key"}],
    }
    await client.post("/api/workflows", json=flow)
    await client.post("/api/workflows/named/activate")
    now = int(time.time())
    signed = {
        "webhook-id": "m",
        "webhook-timestamp": str(now),
        "webhook-signature": signatures.sign(secret, "m", now, b"{}"),
    }
    unset = await client.post("/webhook/named", content=b"{}", headers=signed)
    assert unset.status_code == 401
    await client.put("/api/secrets/hook_key", json={"value": secret})
    assert (await client.post("/webhook/named", content=b"{}", headers=signed)).status_code == 200


async def test_a_redelivered_webhook_gets_the_first_answer_without_a_second_run(client):
    await client.post("/api/workflows", json=GREET)
    await client.post("/api/workflows/greet/activate")
    delivery = {"webhook-id": "msg_42"}
    first = await client.post("/webhook/hello", json={"name": "Ada"}, headers=delivery)
    again = await client.post("/webhook/hello", json={"name": "Bob"}, headers=delivery)
    other = await client.post("/webhook/hello", json={"name": "Cy"}, headers={"webhook-id": "m2"})
    assert first.json() == again.json() == {"hi": "Ada"}
    assert other.json() == {"hi": "Cy"}
    listed = (await client.get("/api/executions")).json()["items"]
    assert len(listed) == 2


async def test_a_redelivered_async_webhook_answers_with_the_same_execution(client, runtime):
    flow = {
        **GREET,
        "id": "later",
        "triggers": [{"type": "webhook", "path": "later", "response": "async"}],
    }
    await client.post("/api/workflows", json=flow)
    await client.post("/api/workflows/later/activate")
    delivery = {"webhook-id": "msg_7"}
    first = await client.post("/webhook/later", json={"name": "A"}, headers=delivery)
    again = await client.post("/webhook/later", json={"name": "B"}, headers=delivery)
    assert first.status_code == again.status_code == 202
    assert first.json()["execution_id"] == again.json()["execution_id"]


async def test_an_async_webhook_is_stored_before_its_202(client, runtime):
    from conv3n.storage import executions

    flow = {
        **GREET,
        "id": "kept",
        "triggers": [{"type": "webhook", "path": "kept", "response": "async"}],
    }
    await client.post("/api/workflows", json=flow)
    await client.post("/api/workflows/kept/activate")
    accepted = await client.post("/webhook/kept", json={"name": "Q"})
    stored = await executions.get_stored(runtime.db, accepted.json()["execution_id"])
    assert isinstance(stored.input, dict)
    assert stored.input["body"] == {"name": "Q"}


async def test_a_re_created_workflow_runs_its_new_document(client):
    await client.post("/api/workflows", json=GREET)
    await client.post("/api/workflows/greet/run", json={"input": {"body": {"name": "A"}}})
    await client.delete("/api/workflows/greet")
    other = {
        **GREET,
        "nodes": [{"id": "shape", "type": "std/transform", "config": {"template": "new"}}],
    }
    await client.post("/api/workflows", json=other)
    reply = await client.post("/api/workflows/greet/run", json={"input": {}})
    assert reply.json()["output"] == "new"
