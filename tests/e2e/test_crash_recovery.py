"""Crash recovery with real processes: SIGKILL in the middle of executions, then resume.

Three `conv3n run --store` processes share one SQLite database and call a local HTTP server:
each runs two fast branches and one node that blocks. Once every fast node's result is
stored, all three are killed with SIGKILL; `conv3n executions resume` then finishes every
execution. The upstream's counters prove that finished nodes were not called again and that
only the interrupted node ran twice (at-least-once).
"""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ROOT, Upstream

FAST = ["a1", "a2", "a3", "b1", "b2", "b3"]
PROCESSES = 3


def workflow(upstream: Upstream) -> str:
    nodes = [
        f"  - {{id: {n}, type: std/http_request, config: {{url: '{upstream.url('/hit/' + n)}'}}}}"
        for n in FAST
    ]
    nodes.append(
        f"  - {{id: slow, type: std/http_request, "
        f"config: {{url: '{upstream.url('/block')}', timeout_ms: 60000}}}}"
    )
    edges = [
        "  - {from: a1, to: a2}",
        "  - {from: a2, to: a3}",
        "  - {from: b1, to: b2}",
        "  - {from: b2, to: b3}",
    ]
    return (
        "version: 1\nid: crashy\nnodes:\n"
        + "\n".join(nodes)
        + "\nconnections:\n"
        + "\n".join(edges)
        + "\n"
    )


def stored_successes(database: Path) -> int:
    if not database.exists():
        return 0
    with sqlite3.connect(database, timeout=5) as conn:
        try:
            row = conn.execute(
                "SELECT count(*) FROM node_results WHERE status = 'success'"
            ).fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(row[0])


def wait_until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_mid_execution_then_resume_reruns_only_unfinished_nodes(upstream, tmp_path):
    hits: Counter[str] = Counter()
    release = threading.Event()
    lock = threading.Lock()

    def hit(request):
        with lock:
            hits[request.path] += 1
        return 200, {"Content-Type": "application/json"}, b'{"ok": true}'

    def block(request):
        with lock:
            hits["/block"] += 1
        release.wait(60)
        return 200, {"Content-Type": "application/json"}, b'{"released": true}'

    for node in FAST:
        upstream.routes[f"/hit/{node}"] = hit
    upstream.routes["/block"] = block
    path = tmp_path / "crashy.yaml"
    path.write_text(workflow(upstream))
    env = {**os.environ, "CONV3N_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT / "src")}
    database = tmp_path / "data" / "conv3n.db"

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "conv3n", "run", "--store", str(path), "--json"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(PROCESSES)
    ]
    try:
        wait_until(lambda: hits["/block"] == PROCESSES, "every slow node to start")
        wait_until(
            lambda: stored_successes(database) == PROCESSES * len(FAST),
            "every fast node's result to be stored",
        )
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
        for proc in procs:
            proc.wait(timeout=10)
    assert all(proc.returncode == -signal.SIGKILL for proc in procs)
    assert {p: hits[f"/hit/{p}"] for p in FAST} == dict.fromkeys(FAST, PROCESSES)

    release.set()
    resumed = subprocess.run(
        [sys.executable, "-m", "conv3n", "executions", "resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed {PROCESSES} executions" in resumed.stdout

    # finished nodes were not called again; the interrupted one ran again (at-least-once)
    assert {p: hits[f"/hit/{p}"] for p in FAST} == dict.fromkeys(FAST, PROCESSES)
    assert hits["/block"] == 2 * PROCESSES
    with sqlite3.connect(database) as conn:
        statuses = [row[0] for row in conn.execute("SELECT status FROM executions")]
        attempts = conn.execute("SELECT count(*) FROM node_results WHERE status != 'success'")
        assert attempts.fetchone()[0] == 0
    assert statuses == ["success"] * PROCESSES
