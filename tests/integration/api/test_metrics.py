"""/metrics: Prometheus text with executions, node durations, retries and webhook latency."""

import httpx
import pytest

from conv3n.api import create_app
from conv3n.observability import Metrics
from conv3n.runtime import Settings
from conv3n.runtime.service import Runtime


@pytest.fixture
async def metered(tmp_path):
    settings = Settings.from_env({"CONV3N_DATA_DIR": str(tmp_path)})
    async with Runtime(settings, metrics=Metrics()) as runtime:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
            yield http


def sample(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {line_start!r} in:\n{text}")


async def test_metrics_count_executions_nodes_and_webhooks(metered):
    run = {
        "workflow": {
            "version": 1,
            "nodes": [{"id": "a", "type": "std/noop"}, {"id": "b", "type": "std/fail"}],
            "connections": [{"from": "a", "to": "b"}],
        }
    }
    await metered.post("/api/run", json=run)
    flow = {
        "version": 1,
        "id": "hook",
        "triggers": [{"type": "webhook", "path": "h"}],
        "nodes": [{"id": "n", "type": "std/noop"}],
    }
    await metered.post("/api/workflows", json=flow)
    await metered.post("/api/workflows/hook/activate")
    await metered.post("/webhook/h", json={})
    await metered.post("/webhook/missing", json={})
    reply = await metered.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    text = reply.text
    assert sample(text, 'conv3n_executions_total{mode="api",status="error"}') == 1
    assert sample(text, 'conv3n_executions_total{mode="webhook",status="success"}') == 1
    assert sample(text, "conv3n_executions_running ") == 0
    assert sample(text, 'conv3n_node_duration_seconds_count{status="success"}') == 2
    assert sample(text, 'conv3n_node_duration_seconds_count{status="error"}') == 1
    assert sample(text, 'conv3n_webhook_duration_seconds_count{code="200"}') == 1
    assert sample(text, 'conv3n_webhook_duration_seconds_count{code="404"}') == 1
    assert sample(text, 'conv3n_trigger_fires_total{type="webhook"}') == 1


async def test_metrics_is_404_when_not_collected(client):
    assert (await client.get("/metrics")).status_code == 404
