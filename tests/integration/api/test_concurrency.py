"""Concurrency limits over HTTP: `settings.concurrency`, the bounded queue and 429s.

Executions beyond a limit wait as `queued`; once the queue is full, new requests get 429 with
`Retry-After` and SPEC's error body, and nothing is stored for them. Every accepted execution
runs to the end (the Runtime's close waits for them; a fresh Runtime then reads the store).
"""

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from conv3n.api import create_app
from conv3n.observability import Metrics
from conv3n.runtime import Settings
from conv3n.runtime.service import Runtime


def delayed(
    wid: str, ms: int, *, concurrency: int | None = None, response: str = "sync"
) -> dict[str, Any]:
    settings = {"concurrency": concurrency} if concurrency else {}
    return {
        "version": 1,
        "id": wid,
        "settings": settings,
        "triggers": [{"type": "webhook", "path": wid, "response": response}],
        "nodes": [{"id": "pause", "type": "std/delay", "config": {"ms": ms}}],
    }


@asynccontextmanager
async def serving(tmp_path: Path, **env: str) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    settings = Settings.from_env({"CONV3N_DATA_DIR": str(tmp_path), **env})
    async with Runtime(settings, metrics=Metrics()) as runtime:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
            yield runtime, http


async def stored(tmp_path: Path) -> list[Any]:
    async with Runtime(Settings.from_env({"CONV3N_DATA_DIR": str(tmp_path)})) as runtime:
        return await runtime.list_executions(limit=10_000)


async def install(http: httpx.AsyncClient, document: dict[str, Any]) -> None:
    assert (await http.post("/api/workflows", json=document)).status_code == 201
    assert (await http.post(f"/api/workflows/{document['id']}/activate")).status_code == 200


async def test_a_workflow_with_concurrency_1_never_runs_two_executions_at_once(tmp_path):
    async with serving(tmp_path) as (_runtime, http):
        await install(http, delayed("single", 150, concurrency=1))
        replies = await asyncio.gather(
            *(http.post("/api/workflows/single/run", json={}) for _ in range(3))
        )
    records = [r.json() for r in replies]
    assert [r["status"] for r in records] == ["success"] * 3
    spans = sorted(
        (
            datetime.fromisoformat(r["nodes"]["pause"]["started_at"]),
            datetime.fromisoformat(r["nodes"]["pause"]["finished_at"]),
        )
        for r in records
    )
    for (_, finished), (started, _) in itertools.pairwise(spans):
        assert started >= finished


async def test_an_execution_waiting_for_its_turn_is_stored_as_queued(tmp_path):
    async with serving(tmp_path) as (runtime, http):
        await install(http, delayed("single", 10, concurrency=1))
        held = runtime.limits.enter("single", 1)  # the workflow's one slot is taken
        first = await http.post("/api/workflows/single/run?wait=false", json={})
        second = await http.post("/api/workflows/single/run?wait=false", json={})
        assert first.status_code == second.status_code == 202
        for reply in (first, second):
            waiting = await http.get(f"/api/executions/{reply.json()['execution_id']}")
            assert waiting.json()["status"] == "queued"
        health = (await http.get("/health")).json()["executions"]
        assert health["queued"] == 2
        assert health["running"] == 1
        metrics = (await http.get("/metrics")).text
        assert "conv3n_executions_queued 2.0" in metrics
        assert "conv3n_execution_slots_in_use 1.0" in metrics
        held.release()
    assert sorted(e.status.value for e in await stored(tmp_path)) == ["success", "success"]


def assert_overloaded(reply: httpx.Response) -> None:
    assert reply.status_code == 429
    assert int(reply.headers["retry-after"]) >= 1
    assert reply.json()["error"]["type"] == "overloaded"
    assert set(reply.json()["error"]) == {"type", "message", "details"}


LIMITS = {"CONV3N_MAX_CONCURRENCY": "1", "CONV3N_MAX_QUEUED": "2"}


async def test_a_full_queue_refuses_async_webhooks_with_429_and_runs_every_accepted_one(
    tmp_path,
):
    async with serving(tmp_path, **LIMITS) as (runtime, http):
        await install(http, delayed("later", 10, response="async"))
        held = runtime.limits.enter(None, None)  # the only slot: everything else queues
        replies = await asyncio.gather(*(http.post("/webhook/later") for _ in range(8)))
        refused_run = await http.post("/api/workflows/later/run?wait=false", json={})
        held.release()
    accepted = [r for r in replies if r.status_code == 202]
    assert len(accepted) == 2
    for reply in [*(r for r in replies if r.status_code != 202), refused_run]:
        assert_overloaded(reply)
    executions = await stored(tmp_path)
    assert {e.execution_id for e in executions} == {r.json()["execution_id"] for r in accepted}
    assert {e.status.value for e in executions} == {"success"}


async def test_a_full_queue_refuses_sync_webhooks_and_runs_with_429(tmp_path):
    async with serving(tmp_path, **LIMITS) as (runtime, http):
        await install(http, delayed("now", 10))
        held = runtime.limits.enter(None, None)
        calls = [
            *(asyncio.create_task(http.post("/webhook/now")) for _ in range(4)),
            *(asyncio.create_task(http.post("/api/workflows/now/run", json={})) for _ in range(4)),
        ]
        while runtime.limits.queued < 2 or sum(c.done() for c in calls) < 6:
            await asyncio.sleep(0.005)  # until two wait and six were answered
        held.release()
        replies = await asyncio.gather(*calls)
        after = await http.post("/webhook/now")  # the queue has drained: accepted again
    done = [r for r in replies if r.status_code == 200]
    assert len(done) == 2
    for reply in replies:
        if reply.status_code != 200:
            assert_overloaded(reply)
    assert after.status_code == 200
    executions = await stored(tmp_path)
    assert len(executions) == 3
    assert {e.status.value for e in executions} == {"success"}
