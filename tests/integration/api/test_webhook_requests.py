"""/webhook/* as the app answers it before FastAPI's routing (`Conv3nAPI`, `serve_webhook`):
what the workflow sees of a request, and every way a request can go wrong."""

import json
import logging
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest

from conv3n.api import create_app
from conv3n.runtime.service import Runtime
from conv3n.storage import executions

ECHO = {
    "version": 1,
    "id": "echo",
    "triggers": [{"type": "webhook", "path": "echo"}],
    "nodes": [{"id": "a", "type": "std/transform", "config": {"template": "{{ $input }}"}}],
}


@pytest.fixture
async def echo(client: httpx.AsyncClient) -> httpx.AsyncClient:
    assert (await client.post("/api/workflows", json=ECHO)).status_code == 201
    assert (await client.post("/api/workflows/echo/activate")).status_code == 200
    return client


async def asgi(
    runtime: Runtime, method: str, path: str, messages: list[dict[str, Any]], headers=()
) -> list[dict[str, Any]]:
    """Call the app with raw ASGI messages (what httpx cannot send: repeated headers, a
    disconnect); returns what the app sent."""
    app = create_app(runtime)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    return sent


async def test_the_workflow_sees_method_path_headers_query_and_body(echo):
    reply = await echo.post("/webhook/echo?a=1&b=&a=2", json={"n": 1}, headers={"X-Trace": "t-1"})
    assert reply.status_code == 200
    seen = reply.json()
    assert seen["method"] == "POST"
    assert seen["path"] == "echo"
    assert seen["headers"]["x-trace"] == "t-1"
    assert seen["query"] == {"a": "2", "b": ""}  # the last of a repeated parameter
    assert seen["body"] == {"n": 1}


async def test_headers_keep_their_order_and_of_a_repeated_one_the_first(echo, runtime):
    headers = [(b"x-tag", b"first"), (b"x-b", b"1"), (b"x-tag", b"second"), (b"x-a", b"2")]
    request = {"type": "http.request", "body": b"", "more_body": False}
    sent = await asgi(runtime, "POST", "/webhook/echo", [request], headers)
    assert sent[0]["status"] == 200
    seen = json.loads(sent[1]["body"])["headers"]
    assert seen == {"x-tag": "first", "x-b": "1", "x-a": "2"}
    assert list(seen) == ["x-tag", "x-b", "x-a"]  # in the order sent


async def test_a_body_in_several_messages_is_read_whole(echo, runtime):
    parts = [b'{"n": ', b"4", b"2}"]
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    headers = [(b"content-type", b"application/json")]
    sent = await asgi(runtime, "POST", "/webhook/echo", messages, headers)
    assert sent[0]["status"] == 200
    assert b'"body":{"n":42}' in sent[1]["body"]


async def test_a_client_that_leaves_mid_body_starts_nothing(echo, runtime):
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"n": ', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent = await asgi(runtime, "POST", "/webhook/echo", messages)
    assert sent == []
    assert await executions.page(runtime.db, workflow_id="echo") == []


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND"])
async def test_a_method_webhooks_do_not_answer_is_405(echo, method):
    reply = await echo.request(method, "/webhook/echo")
    assert reply.status_code == 405
    assert reply.json()["error"]["type"] == "method_not_allowed"


async def test_integers_beyond_64_bits_and_deep_bodies(echo):
    big = 2**70
    reply = await echo.post(
        "/webhook/echo", content=f'{{"n": {big}}}', headers={"content-type": "application/json"}
    )
    assert reply.status_code == 200
    assert reply.json()["body"] == {"n": big}

    deep = b"[" * 100_000 + b"]" * 100_000
    reply = await echo.post(
        "/webhook/echo", content=deep, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_input"


async def test_an_unexpected_error_is_a_500_in_the_spec_shape_with_the_traceback_logged(
    echo, runtime, monkeypatch, caplog
):
    def broken(path: str, method: str) -> None:
        raise RuntimeError("the index is broken")

    monkeypatch.setattr(runtime, "webhook_for", broken)
    with caplog.at_level(logging.ERROR, logger="conv3n.api"):
        reply = await echo.post("/webhook/echo", json={})
    assert reply.status_code == 500
    assert reply.json()["error"]["type"] == "internal_error"
    assert "the index is broken" not in reply.text
    assert any("the index is broken" in (r.exc_text or "") for r in caplog.records)


async def test_webhook_operations_are_in_the_openapi_document(client):
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths["/webhook/{path}"]) == {
        "get",
        "post",
        "put",
        "patch",
        "delete",
        "head",
        "options",
    }
