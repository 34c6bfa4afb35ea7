"""`conv3n serve` as a user starts it: a real process on a free port, then SIGTERM."""

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ROOT, free_port


def launch(data: object, **env: str) -> tuple[str, subprocess.Popen[bytes]]:
    """A real `conv3n serve` on a free port with its data in `data` (no API token, warnings
    only); its URL and process, not yet healthy (`wait_healthy`)."""
    port = free_port()
    environment = {
        **os.environ,
        "CONV3N_DATA_DIR": str(data),
        "PYTHONPATH": str(ROOT / "src"),
        "CONV3N_LOG_LEVEL": "warning",
        **env,
    }
    environment.pop("CONV3N_API_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "conv3n", "serve", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return f"http://127.0.0.1:{port}", proc


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> float:
    """Seconds until /health answered 200 (fails if the process exits or time runs out)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            pytest.fail(f"conv3n serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return time.monotonic() - start
        except httpx.TransportError:
            time.sleep(0.02)
    pytest.fail("conv3n serve did not become healthy")


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {**os.environ, "CONV3N_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT / "src")}
    env.pop("CONV3N_API_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "conv3n", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
        assert proc.stderr is not None
        proc.stderr.close()


def test_serve_runs_workflows_and_webhooks_then_stops_on_sigterm(server):
    url, proc = server
    flow = {
        "version": 1,
        "id": "echo",
        "triggers": [{"type": "webhook", "path": "echo"}],
        "nodes": [
            {
                "id": "out",
                "type": "std/transform",
                "config": {"template": {"got": "{{ $input.body }}"}},
            }
        ],
    }
    assert httpx.post(f"{url}/api/workflows", json=flow).status_code == 201
    assert httpx.post(f"{url}/api/workflows/echo/activate").status_code == 200
    reply = httpx.post(f"{url}/webhook/echo", json={"n": 1})
    assert reply.json() == {"got": {"n": 1}}
    listed = httpx.get(f"{url}/api/executions").json()["items"]
    assert [e["mode"] for e in listed] == ["webhook"]
    assert (
        'conv3n_executions_total{mode="webhook",status="success"} 1.0'
        in httpx.get(f"{url}/metrics").text
    )
    proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal (a clean stop for systemd)
    assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    assert proc.stderr is not None
    assert b"Traceback" not in proc.stderr.read()


def test_serve_refuses_a_public_interface_without_a_token(tmp_path):
    env = {**os.environ, "CONV3N_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT / "src")}
    env.pop("CONV3N_API_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-m", "conv3n", "serve", "--host", "0.0.0.0"],  # noqa: S104 - the refusal is tested
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "CONV3N_API_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr
