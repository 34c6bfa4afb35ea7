"""ANY /webhook/{path}: starts the active workflow whose webhook trigger has this path."""

import json
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.routing import Route

from conv3n.api import signatures
from conv3n.errors import Conv3nError, InvalidInput, NotFound, SecretNotFound, Unauthorized
from conv3n.runtime.service import Runtime

router = APIRouter(tags=["webhooks"])
DEFAULT_MAX_BODY = 1024 * 1024
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


async def webhook(request: Request, path: str) -> Response:
    """Run the workflow; sync: its std/respond response or 200 with its output (500 with
    `{error, execution_id}` on failure); async: 202 `{execution_id}`."""
    runtime: Runtime = request.app.state.runtime
    started = time.perf_counter()
    code = 500
    try:
        response = await _handle(runtime, request, path)
        code = response.status_code
        return response
    except Conv3nError as exc:
        code = exc.http_status
        raise
    finally:
        if runtime.metrics is not None:
            runtime.metrics.webhook_seconds.labels(str(code)).observe(time.perf_counter() - started)


async def _handle(runtime: Runtime, request: Request, path: str) -> Response:
    target = runtime.webhook_for(path, request.method)
    if target is None:
        raise NotFound(f"no active workflow listens on {request.method} /webhook/{path}")
    workflow_id, trigger = target
    limit = int(trigger.get("max_body_bytes") or DEFAULT_MAX_BODY)
    raw = await _read_body(request, limit)
    secret = trigger.get("secret")
    if isinstance(secret, str) and secret:
        if not secret.startswith("whsec_"):  # the name of a stored secret
            try:
                secret = await runtime.engine.secrets_value(secret)
            except SecretNotFound:
                raise Unauthorized("the webhook's secret is not configured") from None
        signatures.verify(secret, request.headers, raw)
    payload = {
        "method": request.method,
        "path": path,
        "headers": dict(request.headers),
        "query": dict(request.query_params),
        "body": _decode(raw, request.headers.get("content-type", "")),
    }
    # a redelivery (same webhook-id) gets the first delivery's answer, not a second execution
    delivery = request.headers.get("webhook-id")
    key = f"webhook:{workflow_id}:{delivery}" if delivery else None
    if runtime.metrics is not None:
        runtime.metrics.trigger_fires.labels("webhook").inc()
    if trigger.get("response") == "async":
        execution_id = await runtime.start_workflow(
            workflow_id, payload, mode="webhook", idempotency_key=key
        )
        return JSONResponse({"execution_id": execution_id}, 202)
    record = await runtime.run_workflow(workflow_id, payload, mode="webhook", idempotency_key=key)
    if not record.status.is_final and record.status.value != "waiting":
        # the first delivery is still running: tell the sender it is being handled
        return JSONResponse({"execution_id": record.execution_id}, 202)
    if record.response is not None:
        response = record.response
        body = response.body
        if isinstance(body, str):
            return Response(body, response.status, headers=response.headers)
        return JSONResponse(body, response.status, headers=response.headers)
    if record.status.value != "success":
        error = record.error.model_dump() if record.error else None
        return JSONResponse({"error": error, "execution_id": record.execution_id}, 500)
    return JSONResponse(record.output, 200)


for _method in METHODS:
    router.add_api_route(
        "/webhook/{path:path}",
        webhook,
        methods=[_method],
        operation_id=f"webhook_{_method.lower()}",
    )


async def _dispatch(request: Request) -> Response:
    return await webhook(request, request.path_params["path"])


def direct_route() -> Route:
    """The same endpoint as a plain Starlette route, for the front of the app's routes: webhook
    calls skip FastAPI's per-request machinery (dependency solving, response validation),
    which `webhook` does not use; the FastAPI routes above stay for /openapi.json."""
    return Route("/webhook/{path:path}", _dispatch, methods=METHODS, include_in_schema=False)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


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
            return json.loads(raw)
        except ValueError:
            raise InvalidInput("the body is not valid JSON") from None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        import base64

        return {"base64": base64.b64encode(raw).decode()}
