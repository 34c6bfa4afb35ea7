"""`Front`, the app `conv3n serve` listens with: webhooks and /health answered without FastAPI,
the management API built on its first request, once, even under concurrent first requests."""

import asyncio
import gc
import subprocess
import sys
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import ASGIApp

from conv3n.api import create_app
from conv3n.api.front import Front
from conv3n.runtime.service import Runtime

ECHO = {
    "version": 1,
    "id": "echo",
    "triggers": [{"type": "webhook", "path": "echo"}],
    "nodes": [{"id": "a", "type": "std/transform", "config": {"template": "{{ $input.body }}"}}],
}


class Builds:
    """A `build` for Front that counts its calls and can be held or made to fail."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.calls = 0
        self.release = threading.Event()
        self.release.set()
        self.fail_next = False

    def __call__(self) -> ASGIApp:
        self.calls += 1
        self.release.wait(10)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("no API today")
        return create_app(self.runtime)


@pytest.fixture
async def active(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/workflows", json=ECHO)).status_code == 201
    assert (await client.post("/api/workflows/echo/activate")).status_code == 200


@pytest.fixture
def builds(runtime: Runtime) -> Builds:
    return Builds(runtime)


@pytest.fixture
async def front(runtime: Runtime, builds: Builds) -> AsyncIterator[tuple[Front, httpx.AsyncClient]]:
    app = Front(runtime, builds)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://conv3n") as http:
        yield app, http


async def test_webhooks_and_health_are_answered_without_building_the_api(
    active: None, front: tuple[Front, httpx.AsyncClient], builds: Builds
) -> None:
    app, http = front
    reply = await http.post("/webhook/echo", json={"n": 1})
    assert (reply.status_code, reply.json()) == (200, {"n": 1})
    health = await http.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert (await http.head("/health")).status_code == 200
    missing = await http.post("/webhook/nobody", json={})
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found"
    assert (builds.calls, app.built) == (0, False)


async def test_the_api_is_built_on_its_first_request_and_answers_like_create_app(
    active: None, front: tuple[Front, httpx.AsyncClient], builds: Builds, client: httpx.AsyncClient
) -> None:
    app, http = front
    frozen = gc.get_freeze_count()
    listed = await http.get("/api/workflows")
    assert gc.get_freeze_count() > frozen  # the app is out of the collector's reach
    gc.unfreeze()  # this test process's heap goes back to the collector
    assert listed.status_code == 200
    assert listed.json() == (await client.get("/api/workflows")).json()
    assert app.built
    assert (await http.get("/openapi.json")).status_code == 200
    assert (await http.get("/nowhere")).json()["error"]["type"] == "not_found"
    assert builds.calls == 1


async def test_concurrent_first_requests_build_the_api_once_while_webhooks_go_on(
    active: None, front: tuple[Front, httpx.AsyncClient], builds: Builds
) -> None:
    app, http = front
    builds.release.clear()  # the build waits in its thread until released
    waiting = [asyncio.create_task(http.get("/api/workflows")) for _ in range(20)]
    while builds.calls == 0:
        await asyncio.sleep(0)  # the first request reached the build thread
    reply = await http.post("/webhook/echo", json={"during": "build"})
    assert reply.json() == {"during": "build"}  # answered while the API is being built
    assert not any(task.done() for task in waiting)
    builds.release.set()
    answers = await asyncio.gather(*waiting)
    assert {answer.status_code for answer in answers} == {200}
    assert builds.calls == 1
    assert app.built


async def test_a_failed_build_answers_500_and_the_next_request_builds_again(
    front: tuple[Front, httpx.AsyncClient], builds: Builds, caplog: pytest.LogCaptureFixture
) -> None:
    app, http = front
    builds.fail_next = True
    failed = await http.get("/api/workflows")
    assert failed.status_code == 500
    error = {"type": "internal_error", "message": "an unexpected error occurred", "details": {}}
    assert failed.json() == {"error": error}
    assert "no API today" not in failed.text
    assert "the management API could not be built" in caplog.text
    assert not app.built
    assert (await http.get("/api/workflows")).status_code == 200
    assert builds.calls == 2


async def test_a_root_path_is_honoured(active: None, runtime: Runtime, builds: Builds) -> None:
    transport = httpx.ASGITransport(app=Front(runtime, builds), root_path="/base")
    async with httpx.AsyncClient(transport=transport, base_url="http://conv3n") as http:
        assert (await http.post("/base/webhook/echo", json=[1])).json() == [1]
        assert (await http.get("/base/health")).json()["status"] == "ok"
    assert builds.calls == 0


def test_the_webhook_path_does_not_import_fastapi() -> None:
    probe = (
        "import sys, conv3n.api.front\n"
        "print(sorted(name for name in sys.modules if name.startswith('fastapi')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
