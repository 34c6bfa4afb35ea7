"""1,000 concurrent webhook calls, half to an async and half to a sync webhook of a real
`conv3n serve` (SQLite): every call is answered 2xx (a 429 carries Retry-After and is
retried by the client), and exactly one successful execution is stored per call, none lost.

The server's limits are set low (20 running, 50 queued), so a fast client also meets the
refusal path; either way no call may fail and no accepted execution may be missing.
"""

import asyncio
import signal
import sqlite3
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_serve import launch, wait_healthy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CALLS = 500
"""Calls per webhook (1,000 in all)."""


def flow(wid: str, response: str) -> dict[str, object]:
    return {
        "version": 1,
        "id": wid,
        "triggers": [{"type": "webhook", "path": wid, "response": response}],
        "nodes": [
            {"id": "shape", "type": "std/transform", "config": {"template": "{{ $input.body }}"}}
        ],
    }


CONNECTIONS = 100


async def call(
    http: httpx.AsyncClient, gate: asyncio.Semaphore, path: str, n: int, refused: Counter[str]
) -> httpx.Response:
    while True:
        # all calls are under way at once; the gate keeps as many in httpx's pool as it has
        # connections (its pool gets slow with thousands of waiters)
        async with gate:
            reply = await http.post(path, json={"n": n})
        if reply.status_code != 429:
            return reply
        refused[path] += 1
        await asyncio.sleep(float(reply.headers["retry-after"]))


async def flood(url: str) -> tuple[list[httpx.Response], list[httpx.Response], Counter[str]]:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    refused: Counter[str] = Counter()
    gate = asyncio.Semaphore(CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        async_replies, sync_replies = await asyncio.gather(
            asyncio.gather(*(call(http, gate, "/webhook/later", n, refused) for n in range(CALLS))),
            asyncio.gather(*(call(http, gate, "/webhook/now", n, refused) for n in range(CALLS))),
        )
    return list(async_replies), list(sync_replies), refused


def counts(database: Path) -> dict[tuple[str, str], int]:
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT workflow_id, status, count(*) FROM executions GROUP BY workflow_id, status"
        ).fetchall()
    return {(w, s): n for w, s, n in rows}


async def test_a_thousand_concurrent_webhook_calls_each_store_one_successful_execution(tmp_path):
    url, proc = launch(tmp_path, CONV3N_MAX_CONCURRENCY="20", CONV3N_MAX_QUEUED="50")
    try:
        wait_healthy(url, proc, timeout=60)
        for document in (flow("later", "async"), flow("now", "sync")):
            assert httpx.post(f"{url}/api/workflows", json=document).status_code == 201
            assert httpx.post(f"{url}/api/workflows/{document['id']}/activate").status_code == 200
        async_replies, sync_replies, _refused = await flood(url)
    finally:
        proc.send_signal(signal.SIGTERM)  # waits for the accepted executions, then flushes
        code = proc.wait(timeout=60)
        assert proc.stderr is not None
        errors = proc.stderr.read().decode()
        proc.stderr.close()
    assert code == 0
    assert "Traceback" not in errors, errors
    assert [r.status_code for r in async_replies] == [202] * CALLS
    assert [r.status_code for r in sync_replies] == [200] * CALLS
    assert sorted(r.json()["n"] for r in sync_replies) == list(range(CALLS))
    accepted = {r.json()["execution_id"] for r in async_replies}
    assert len(accepted) == CALLS
    assert counts(tmp_path / "conv3n.db") == {
        ("later", "success"): CALLS,
        ("now", "success"): CALLS,
    }
    with sqlite3.connect(tmp_path / "conv3n.db") as conn:
        stored = {
            row[0] for row in conn.execute("SELECT id FROM executions WHERE workflow_id = 'later'")
        }
    assert stored == accepted
