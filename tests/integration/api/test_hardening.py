"""Hostile requests: oversized, malformed and mistargeted ones all get SPEC's error JSON.

`{"error": {"type", "message", "details"}}` with a fitting 4xx status, never a 500 or a
traceback; /api/* bodies over CONV3N_MAX_REQUEST_BYTES get 413 before they are read whole.
"""

from collections.abc import AsyncIterator

import httpx
import pytest

from conv3n.api import create_app
from conv3n.runtime import Settings
from conv3n.runtime.service import Runtime

LIMIT = 4096


@pytest.fixture
async def small(tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings.from_env(
        {"CONV3N_DATA_DIR": str(tmp_path), "CONV3N_MAX_REQUEST_BYTES": str(LIMIT)}
    )
    async with Runtime(settings) as runtime:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
            yield http


def assert_error(reply: httpx.Response, status: int, kind: str | None = None) -> None:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "details"}
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert "Traceback" not in reply.text
    if kind is not None:
        assert body["error"]["type"] == kind


async def test_a_declared_body_over_the_limit_is_413_without_being_read(small):
    huge = {"workflow": {"version": 1, "nodes": []}, "input": "x" * (LIMIT * 2)}
    reply = await small.post("/api/run", json=huge)
    assert_error(reply, 413, "payload_too_large")
    assert reply.json()["error"]["details"] == {"limit": LIMIT}


async def test_a_chunked_body_over_the_limit_is_413(small):
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1024

    reply = await small.post(
        "/api/workflows", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(reply, 413, "payload_too_large")


async def test_a_chunked_body_under_the_limit_is_read_as_usual(small):
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"version": 1, "id": "chunky", '
        yield b'"nodes": [{"id": "a", "type": "std/noop"}]}'

    reply = await small.post(
        "/api/workflows", content=chunks(), headers={"content-type": "application/json"}
    )
    assert reply.status_code == 201, reply.text


async def test_a_body_just_at_the_limit_is_accepted(small):
    body = b'{"input": "' + b"x" * (LIMIT - 13) + b'"}'
    assert len(body) == LIMIT
    await small.post("/api/workflows", json={"version": 1, "id": "w", "nodes": []})
    reply = await small.post(
        "/api/workflows/w/run", content=body, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 200, reply.text


ERROR_PATHS = [
    ("GET", "/api/nothing-here", None, 404),
    ("DELETE", "/api/blocks", None, 405),
    ("GET", "/api/workflows/missing", None, 404),
    ("GET", "/api/workflows?limit=0", None, 400),
    ("GET", "/api/workflows/w?version=75581208197838110720", None, 400),  # found by fuzzing
    ("GET", "/api/workflows?limit=abc", None, 400),
    ("GET", "/api/executions?since=yesterday", None, 400),
    ("GET", "/api/executions?status=happy", None, 400),
    ("GET", "/api/executions/../../etc/passwd", None, 404),
    ("POST", "/api/workflows", b"[1, 2", 400),
    ("POST", "/api/workflows", b"\xff\xfe\x00", 400),
    ("POST", "/api/workflows", b'"a string"', 400),
    ("POST", "/api/workflows", b'{"version": 1, "nodes": "no"}', 422),
    ("POST", "/api/run", b'{"workflow": 3}', 400),
    ("POST", "/api/run", b'{"workflow": {}, "extra": 1}', 400),
    ("POST", "/api/workflows/missing/run", b"{}", 404),
    ("POST", "/api/executions/nope/stop", None, 404),
    ("POST", "/api/executions/nope/retry", None, 404),
    ("POST", "/api/executions/nope/resume", None, 404),
    ("PUT", "/api/secrets/x", b'{"value": ""}', 400),
    ("DELETE", "/api/secrets/absent", None, 404),
    ("POST", "/webhook/nobody-listens", b"{}", 404),
]


async def test_every_error_path_answers_in_the_spec_shape(small):
    # one Runtime for all cases (opening one per case would dominate the time)
    for method, path, body, status in ERROR_PATHS:
        reply = await small.request(
            method, path, content=body, headers={"content-type": "application/json"}
        )
        assert_error(reply, status)


async def test_a_json_body_nested_very_deeply_is_refused_cleanly(small):
    deep = b"[" * 3000 + b"]" * 3000
    reply = await small.post("/api/run", content=deep, headers={"content-type": "application/json"})
    assert reply.status_code in (400, 413, 422)
    assert "Traceback" not in reply.text
