"""Exactly once across processes: two `conv3n serve` processes share one PostgreSQL schema
and run an active workflow with an interval trigger (200 ms) and a 6-field cron trigger (every
second). One process runs the triggers, the other stands by; the first is killed mid-way, the
second takes over and catches up. Every due time from the first to the last appears exactly
once among the stored executions: no duplicate, no gap.
"""

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, free_port, require_service
from tests.e2e.test_serve import wait_healthy

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
FLOW = {
    "version": 1,
    "id": "clock",
    "triggers": [
        {"type": "interval", "every_ms": 200, "catch_up": "all"},
        {"type": "cron", "expression": "* * * * * *", "catch_up": "all", "key": "seconds"},
    ],
    "nodes": [{"id": "out", "type": "std/transform", "config": {"template": "{{ $input }}"}}],
}


@pytest.fixture
def database_url() -> Iterator[str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    name = f"conv3n_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{ADMIN}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def environment(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "CONV3N_DATA_DIR": str(data_dir),
        "CONV3N_DATABASE_URL": database_url,
        "CONV3N_TRIGGER_SYNC_SECONDS": "0.2",
        "PYTHONPATH": str(ROOT / "src"),
    }
    env.pop("CONV3N_API_TOKEN", None)
    return env


def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """The first truthy result of `check`, polled until the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail("not reached in time")


def trigger(url: str, key: str) -> dict[str, Any] | None:
    items = httpx.get(f"{url}/api/triggers", timeout=5).json()["items"]
    return next((i for i in items if i["key"] == key), None)


def stored(database_url: str) -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT mode, input FROM executions WHERE workflow_id = 'clock'")
        return [(mode, json.loads(text)["scheduled_at"]) for mode, text in rows]


def steps(times: list[str]) -> set[timedelta]:
    moments = sorted(datetime.fromisoformat(t.replace("Z", "+00:00")) for t in times)
    return {b - a for a, b in itertools.pairwise(moments)}


def test_two_servers_start_each_due_time_exactly_once_across_a_crash(
    database_url: str, tmp_path: Path
):
    upgrade = subprocess.run(
        [sys.executable, "-m", "conv3n", "db", "upgrade"],
        env=environment(database_url, tmp_path / "setup"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    servers: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "conv3n", "serve", "--port", str(port)],
                env=environment(database_url, tmp_path / name),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            servers.append((f"http://127.0.0.1:{port}", proc))
        for url, proc in servers:
            wait_healthy(url, proc, timeout=90)  # two servers start at once on a busy machine
        (first, first_proc), (second, second_proc) = servers

        assert httpx.post(f"{first}/api/workflows", json=FLOW).status_code == 201
        assert httpx.post(f"{first}/api/workflows/clock/activate").status_code == 200
        leader = until(lambda: (trigger(first, "0") or {}).get("owner"))
        standby = until(lambda: _with_status(second, "0", "standby"))
        assert standby["owner"] == leader
        until(lambda: len(stored(database_url)) >= 8)

        first_proc.kill()  # a crash: no lease is released
        first_proc.wait(timeout=10)
        before = len(stored(database_url))
        taken = until(lambda: _with_status(second, "0", "running"))
        assert taken["owner"] != leader
        until(lambda: len(stored(database_url)) >= before + 10)
        second_proc.send_signal(signal.SIGTERM)
        second_proc.wait(timeout=20)
        assert second_proc.stderr is not None
        assert b"Traceback" not in second_proc.stderr.read()
    finally:
        for _, proc in servers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            if proc.stderr is not None:
                proc.stderr.close()

    found = stored(database_url)
    intervals = [at for mode, at in found if mode == "interval"]
    seconds = [at for mode, at in found if mode == "cron"]
    assert len(intervals) >= 10
    assert len(set(intervals)) == len(intervals), "an interval due time started twice"
    assert steps(intervals) == {timedelta(milliseconds=200)}, "an interval due time is missing"
    assert len(seconds) >= 2
    assert len(set(seconds)) == len(seconds), "a cron due time started twice"
    assert steps(seconds) == {timedelta(seconds=1)}, "a cron due time is missing"


def _with_status(url: str, key: str, status: str) -> dict[str, Any] | None:
    item = trigger(url, key)
    return item if item and item["status"] == status else None
