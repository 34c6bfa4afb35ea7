"""Property-based fuzzing of the whole HTTP API from its own /openapi.json (schemathesis).

A real `conv3n serve` (SQLite in a temporary folder, one active webhook workflow and a stored
execution to aim at) answers schemathesis' generated requests: valid ones and deliberately
malformed ones for every operation. No request may give a 5xx, and every answer must match
what the schema declares (status codes, content types, bodies).
"""

import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.test_serve import launch, wait_healthy

pytestmark = pytest.mark.slow

SEED = {
    "version": 1,
    "id": "echo",
    "triggers": [{"type": "webhook", "path": "echo"}],
    "nodes": [{"id": "out", "type": "std/transform", "config": {"template": "{{ $input }}"}}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, proc = launch(tmp_path_factory.mktemp("schemathesis"), CONV3N_SHUTDOWN_GRACE_SECONDS="1")
    try:
        wait_healthy(url, proc, timeout=60)
        assert httpx.post(f"{url}/api/workflows", json=SEED).status_code == 201
        assert httpx.post(f"{url}/api/workflows/echo/activate").status_code == 200
        assert httpx.post(f"{url}/webhook/echo", json={"x": 1}).status_code == 200
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert proc.stderr is not None
        errors = proc.stderr.read().decode()
        proc.stderr.close()
    assert "Traceback" not in errors, errors


def _openapi() -> dict[str, Any]:
    """The schema the server publishes at /openapi.json, built without a server (the routes
    decide it, not the Runtime), so the tests exist at collection time. (schemathesis' lazy
    `from_fixture` loader does not work with pytest 9.)"""
    from conv3n.api import create_app
    from conv3n.runtime import Settings
    from conv3n.runtime.service import Runtime

    runtime = Runtime(Settings.from_env({"CONV3N_DATA_DIR": "/nonexistent"}))
    document: dict[str, Any] = create_app(runtime).openapi()
    return document


schema = schemathesis.openapi.from_dict(_openapi())


def errors_have_the_spec_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx answer is `{"error": {"type", "message", "details"}}` (SPEC §8)."""
    if response.status_code < 400 or case.method.upper() == "HEAD":  # HEAD has no body
        return None
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= {"type", "message", "details"}, body
    assert "Traceback" not in response.text
    return True


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_request_gives_a_server_error_or_breaks_the_schema(case: Any, server: str) -> None:
    case.call_and_validate(
        base_url=server,
        timeout=10,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            errors_have_the_spec_shape,
        ],
    )
