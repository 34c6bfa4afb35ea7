"""`conv3n serve --processes N` as a user runs it: real processes sharing one real port on
one SQLite file, each answering for itself; a sibling that dies comes back, SIGTERM stops
them all, and none outlives a primary killed outright."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import ROOT, free_port
from tests.e2e.test_crash_recovery import wait_until
from tests.e2e.test_serve import wait_healthy

pytestmark = pytest.mark.slow

WORKFLOW: dict[str, Any] = {
    "version": 1,
    "id": "hello",
    "triggers": [{"type": "webhook", "path": "hello", "method": "POST"}],
    "nodes": [
        {"id": "greet", "type": "std/set", "config": {"values": {"hi": "{{ $input.body.n }}"}}}
    ],
}


def start(data: Path, *args: str, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
    """`conv3n serve ARGS` with its JSON log in data/serve.log (not yet healthy)."""
    environ = {
        **os.environ,
        "CONV3N_DATA_DIR": str(data),
        "PYTHONPATH": str(ROOT / "src"),
        "CONV3N_LOG_FORMAT": "json",
        "CONV3N_SHUTDOWN_GRACE_SECONDS": "5",
        **env,
    }
    environ.pop("CONV3N_API_TOKEN", None)
    log = data / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conv3n", "serve", *args],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    return proc, log


def siblings_of(proc: subprocess.Popen[bytes]) -> set[int]:
    children = psutil.Process(proc.pid).children()
    return {child.pid for child in children if "--sibling" in _cmdline(child)}


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:  # gone meanwhile
        return []


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def answering(url: str, count: int, timeout: float = 30.0) -> set[int]:
    """The pids answering /health (each call a new connection), once `count` differ."""
    seen: set[int] = set()

    def enough() -> bool:
        with httpx.Client() as client:  # a new connection: the kernel picks the process
            instance = client.get(f"{url}/health", timeout=5).json()["instance"]
        seen.add(int(instance.split(":")[1]))
        return len(seen) >= count

    wait_until(enough, f"{count} processes answering", timeout)
    return seen


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("conv3n serve did not stop within 30 s of SIGTERM")


def test_two_processes_share_the_port_and_a_workflow_activated_in_one_answers_in_both(
    tmp_path,
):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # the periodic sync is off: the other process can only learn of the activation from
    # the webhook that misses (RereadOnMiss)
    proc, log = start(tmp_path, "--port", str(port), "--processes", "2",
                      CONV3N_TRIGGER_SYNC_SECONDS="3600")  # fmt: skip
    try:
        wait_healthy(url, proc, timeout=60)
        pids = answering(url, 2)
        assert proc.pid in pids
        siblings = siblings_of(proc)
        assert len(siblings) == 1
        assert pids == {proc.pid, *siblings}

        assert httpx.post(f"{url}/api/workflows", json=WORKFLOW).status_code == 201
        assert httpx.post(f"{url}/api/workflows/hello/activate").status_code == 200
        answers = [httpx.post(f"{url}/webhook/hello", json={"n": n}) for n in range(40)]
        assert [(a.status_code, a.json()) for a in answers] == [(200, {"hi": n}) for n in range(40)]

        # hostile: a concurrent scan of paths nobody serves (each miss may re-read, rate-limited)
        with httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(32) as pool:
            scan = pool.map(lambda n: client.post(f"/webhook/scan-{n}", json={}), range(300))
            assert [reply.status_code for reply in scan] == [404] * 300
        assert httpx.get(f"{url}/health").status_code == 200
    finally:
        code = stop(proc)
    assert code == 0
    assert all(gone(pid) for pid in siblings)
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events.count("conv3n stopped") == 2
    with sqlite3.connect(tmp_path / "conv3n.db") as conn:
        stored = conn.execute("SELECT status, count(*) FROM executions GROUP BY status")
        assert dict(stored.fetchall()) == {"success": 40}


def test_a_killed_sibling_comes_back_and_none_outlives_a_killed_primary(tmp_path):
    proc, log = start(tmp_path, "--port", "0", "--processes", "2")
    try:
        wait_until(lambda: "conv3n listening" in log.read_text(), "the primary to listen", 60)
        first = json.loads(log.read_text().splitlines()[0])
        assert first["role"] == "primary"
        assert first["port"] != 0
        url = f"http://127.0.0.1:{first['port']}"
        wait_healthy(url, proc, timeout=60)
        answering(url, 2)
        (sibling,) = siblings_of(proc)
        psutil.Process(sibling).kill()
        wait_until(lambda: siblings_of(proc) - {sibling}, "a new sibling")
        (again,) = siblings_of(proc) - {sibling}
        wait_until(lambda: again in answering(url, 1), "the new sibling to answer")
        assert "server process 2 exited (code -9); restarting it" in log.read_text()

        proc.kill()  # no SIGTERM to pass on: the sibling sees its stdin close
        proc.wait()
        wait_until(lambda: gone(again), "the sibling to stop after its primary died")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "the primary server process is gone: stopping" in log.read_text()


def test_bad_process_counts_and_a_taken_port_are_refused_before_anything_starts(tmp_path):
    def serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {**os.environ, "CONV3N_DATA_DIR": str(tmp_path), **env}
        environ["PYTHONPATH"] = str(ROOT / "src")
        return subprocess.run(
            [sys.executable, "-m", "conv3n", "serve", *args],
            env=environ, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    zero = serve("--processes", "0")
    assert zero.returncode == 2
    assert "--processes" in zero.stderr
    many = serve(CONV3N_PROCESSES="65")
    assert many.returncode == 2
    assert "CONV3N_PROCESSES must be at most 64 (got '65')" in many.stderr
    words = serve(CONV3N_PROCESSES="two")
    assert words.returncode == 2
    assert "CONV3N_PROCESSES must be a whole number" in words.stderr
    with socketserver_on_a_port() as port:
        taken = serve("--port", str(port), "--processes", "2")
    assert taken.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in taken.stderr
    assert "Traceback" not in zero.stderr + many.stderr + words.stderr + taken.stderr


class socketserver_on_a_port:
    """Another program listening on a free port (a plain socket, no SO_REUSEPORT)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
