"""ANY /webhook/{path}: starts the active workflow whose webhook trigger has this path.

The ASGI endpoint, without FastAPI: `conv3n serve` answers webhooks with it from its first
moment (the management API's FastAPI app is built on its first request, `api.front`), and
the FastAPI app calls it before its own middleware and routing (`api.app.Conv3nAPI`). The
route declared for /openapi.json is in `api.routes.webhooks`.
"""

import json
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from conv3n.api import signatures
from conv3n.api.answers import error_response, internal_error
from conv3n.errors import Conv3nError, InvalidInput, NotFound, SecretNotFound, Unauthorized
from conv3n.runtime.service import Runtime

log = logging.getLogger("conv3n.api")
DEFAULT_MAX_BODY = 1024 * 1024
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


PREFIX = "/webhook/"


def is_webhook(scope: Scope) -> bool:
    """Whether an ASGI scope is an HTTP request for /webhook/* (below the root path)."""
    if scope["type"] != "http":  # lifespan scopes have no path
        return False
    path: str = scope["path"]
    return path.startswith(PREFIX, len(scope.get("root_path", "")))


class MethodNotAllowed(Conv3nError):
    """The method is not one a webhook answers."""

    type = "method_not_allowed"
    http_status = 405


async def serve_webhook(runtime: Runtime, scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI endpoint of /webhook/{path}: the hot path of a server needs none of FastAPI's
    middleware and routing. Errors answer in SPEC's shape here, as the app's handlers would."""
    started = time.perf_counter()
    try:
        response = await handle(runtime, scope, receive)
    except Conv3nError as exc:
        response = error_response(exc)
    except ClientDisconnect:  # nobody is left to answer
        return
    except Exception:
        log.exception("unexpected error in a webhook request")
        response = internal_error()
    await response(scope, receive, send)
    if runtime.metrics is not None:
        runtime.metrics.webhook_answered(response.status_code, time.perf_counter() - started)


async def handle(runtime: Runtime, scope: Scope, receive: Receive) -> Response:
    """The answer to one webhook request (conv3n's errors raised, for the caller to answer)."""
    method: str = scope["method"]
    path = scope["path"].removeprefix(scope.get("root_path", "")).removeprefix(PREFIX)
    if method not in METHODS:
        raise MethodNotAllowed(f"webhooks answer {', '.join(METHODS)}, not {method}")
    target = runtime.webhook_for(path, method) or await runtime.webhook_after_miss(path, method)
    if target is None:
        raise NotFound(f"no active workflow listens on {method} /webhook/{path}")
    workflow_id, trigger = target
    headers = _headers(scope)
    limit = int(trigger.get("max_body_bytes") or DEFAULT_MAX_BODY)
    raw = await _read_body(receive, headers, limit)
    secret = trigger.get("secret")
    if isinstance(secret, str) and secret:
        if not secret.startswith("whsec_"):  # the name of a stored secret
            try:
                secret = await runtime.engine.secrets_value(secret)
            except SecretNotFound:
                raise Unauthorized("the webhook's secret is not configured") from None
        signatures.verify(secret, headers, raw)
    query = scope.get("query_string") or b""
    payload = {
        "method": method,
        "path": path,
        "headers": headers,
        "query": dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)),
        "body": _decode(raw, headers.get("content-type", "")),
    }
    # a redelivery (same webhook-id) gets the first delivery's answer, not a second execution
    delivery = headers.get("webhook-id")
    key = f"webhook:{workflow_id}:{delivery}" if delivery else None
    if runtime.metrics is not None:
        runtime.metrics.trigger_fired("webhook")
    if trigger.get("response") == "async":
        execution_id = await runtime.start_workflow(
            workflow_id, payload, mode="webhook", idempotency_key=key
        )
        return _json({"execution_id": execution_id}, 202)
    record = await runtime.run_workflow(workflow_id, payload, mode="webhook", idempotency_key=key)
    if not record.status.is_final and record.status.value != "waiting":
        # the first delivery is still running: tell the sender it is being handled
        return _json({"execution_id": record.execution_id}, 202)
    if record.response is not None:
        response = record.response
        body = response.body
        if isinstance(body, str):
            return Response(body, response.status, headers=response.headers)
        return _json(body, response.status, response.headers)
    if record.status.value != "success":
        error = record.error.model_dump() if record.error else None
        return _json({"error": error, "execution_id": record.execution_id}, 500)
    return _json(record.output, 200)


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name, in the order sent; of a repeated header, the
    first (as Starlette's `Headers` answers)."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


def _json(body: Any, status: int, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON answer encoded by orjson (json's encoder for what orjson refuses: integers
    beyond 64 bits)."""
    try:
        content = orjson.dumps(body)
    except TypeError:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, status, headers=headers, media_type="application/json")


async def _read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class PayloadTooLarge(InvalidInput):
    """The request body is larger than the webhook allows."""

    type = "payload_too_large"
    http_status = 413


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is larger than {limit:,} bytes", details={"limit": limit})


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "json" in content_type:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # or beyond orjson: integers over 64 bits, NaN, deeper than 1,024 levels
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidInput("the body is not valid JSON") from None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        import base64

        return {"base64": base64.b64encode(raw).decode()}
