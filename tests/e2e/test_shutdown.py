"""`conv3n serve` and SIGTERM, with real processes: finish what fits in the grace period, park
the rest for the next start, exit 0.

A parked execution stays `running` in the database with no lease, so the next server resumes
it at once; its finished nodes are not run again (the upstream counts the calls).
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, free_port
from tests.e2e.test_serve import wait_healthy

pytestmark = pytest.mark.slow


def start(data: Path, **env: str) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    environ = {
        **os.environ,
        "CONV3N_DATA_DIR": str(data),
        "PYTHONPATH": str(ROOT / "src"),
        "CONV3N_PARK_AFTER_SECONDS": "3600",  # delays wait in memory, not parked
        "CONV3N_LOG_FORMAT": "json",
        **env,
    }
    environ.pop("CONV3N_API_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "conv3n", "serve", "--port", str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=60)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return url, proc


def stop(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, float, list[dict[str, Any]]]:
    """SIGTERM; the exit code, seconds until exit and the JSON log lines."""
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"conv3n serve did not exit within {timeout} s of SIGTERM")
    assert proc.stderr is not None
    text = proc.stderr.read().decode()
    proc.stderr.close()
    return code, time.monotonic() - began, [json.loads(line) for line in text.splitlines()]


def row(data: Path, execution_id: str) -> dict[str, Any]:
    with sqlite3.connect(data / "conv3n.db") as conn:
        conn.row_factory = sqlite3.Row
        found = conn.execute(
            "SELECT status, owner, lease_until FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
    assert found is not None
    return dict(found)


def wait_for(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def post_workflow(url: str, document: dict[str, Any]) -> None:
    assert httpx.post(f"{url}/api/workflows", json=document).status_code == 201


def test_sigterm_parks_a_long_execution_and_the_next_start_finishes_it(tmp_path, upstream):
    hits: Counter[str] = Counter()
    lock = threading.Lock()

    def hit(request):
        with lock:
            hits[request.path] += 1
        return 200, {"Content-Type": "application/json"}, b"{}"

    upstream.routes["/before"] = upstream.routes["/after"] = hit
    url, proc = start(tmp_path, CONV3N_SHUTDOWN_GRACE_SECONDS="1")
    until = (datetime.now(UTC) + timedelta(seconds=8)).isoformat()
    document = {
        "version": 1,
        "id": "long",
        "nodes": [
            {
                "id": "before",
                "type": "std/http_request",
                "config": {"url": upstream.url("/before")},
            },
            {"id": "pause", "type": "std/delay", "config": {"until": until}},
            {"id": "after", "type": "std/http_request", "config": {"url": upstream.url("/after")}},
        ],
        "connections": [{"from": "before", "to": "pause"}, {"from": "pause", "to": "after"}],
    }
    try:
        post_workflow(url, document)
        started = httpx.post(f"{url}/api/workflows/long/run?wait=false", json={})
        execution_id = started.json()["execution_id"]

        def before_done() -> bool:
            nodes = httpx.get(f"{url}/api/executions/{execution_id}").json()["nodes"]
            return bool(nodes.get("before", {}).get("status") == "success")

        wait_for(before_done, "the first node to finish")
    except BaseException:
        proc.kill()
        raise
    code, took, lines = stop(proc, timeout=15)
    assert code == 0
    assert took < 1 + 5
    assert not any(
        line["level"] in ("error", "critical") for line in lines if "uvicorn" not in line["logger"]
    )
    assert any(line["event"] == "conv3n stopped" and line["left_to_resume"] == 1 for line in lines)
    parked = row(tmp_path, execution_id)
    assert parked == {"status": "running", "owner": None, "lease_until": None}

    url, proc = start(tmp_path)
    try:

        def finished() -> bool:
            status = httpx.get(f"{url}/api/executions/{execution_id}").json()["status"]
            return bool(status != "running")

        wait_for(finished, "the resumed execution to finish")
        record = httpx.get(f"{url}/api/executions/{execution_id}").json()
    finally:
        stop(proc, timeout=15)
    assert record["status"] == "success", record
    assert hits == {"/before": 1, "/after": 1}  # the finished node did not run again


def test_a_short_execution_running_at_sigterm_finishes_within_the_grace(tmp_path):
    document = {
        "version": 1,
        "id": "short",
        "triggers": [{"type": "webhook", "path": "short"}],
        "nodes": [{"id": "pause", "type": "std/delay", "config": {"ms": 1000}}],
    }
    url, proc = start(tmp_path, CONV3N_SHUTDOWN_GRACE_SECONDS="10")
    try:
        post_workflow(url, document)
        assert httpx.post(f"{url}/api/workflows/short/activate").status_code == 200
        background = httpx.post(f"{url}/api/workflows/short/run?wait=false", json={})
        execution_id = background.json()["execution_id"]
        replies: list[httpx.Response] = []
        sync = threading.Thread(
            target=lambda: replies.append(httpx.post(f"{url}/webhook/short", timeout=20))
        )
        sync.start()
        wait_for(lambda: _running(url) == 2, "both executions to run")
    except BaseException:
        proc.kill()
        raise
    code, took, lines = stop(proc, timeout=15)
    sync.join(timeout=5)
    assert code == 0
    assert took < 10  # it waited for the executions, not for the whole grace
    assert [r.status_code for r in replies] == [200]
    assert row(tmp_path, execution_id)["status"] == "success"
    assert any(line["event"] == "conv3n stopped" and line["left_to_resume"] == 0 for line in lines)


def _running(url: str) -> int:
    health = httpx.get(f"{url}/health").json()
    return int(health["executions"]["running"])
