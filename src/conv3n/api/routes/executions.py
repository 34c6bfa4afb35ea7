"""Executions: list, read, stop, retry, resume; and POST /api/run for unsaved workflows."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from conv3n.api.schemas import Page, ResumeRequest, RunRequest
from conv3n.compiler import compile_document
from conv3n.errors import Conflict, InvalidInput
from conv3n.model import ExecutionStatus
from conv3n.runtime.service import Runtime

router = APIRouter(tags=["executions"])


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.post("/run")
async def run(
    request: Request,
    body: RunRequest,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=255),
) -> dict[str, Any]:
    """Validate and run an unsaved workflow; returns its execution record."""
    runtime = _runtime(request)
    plan = compile_document(body.workflow, runtime.registry)
    record = await runtime.execute(plan, body.input, mode="api", idempotency_key=idempotency_key)
    return record.model_dump(mode="json")


@router.get("/executions", response_model=Page)
async def list_executions(
    request: Request,
    workflow_id: str | None = Query(None),
    status: list[str] = Query([], description="Only these statuses."),
    since: datetime | None = Query(None, description="Created at or after (ISO 8601)."),
    until: datetime | None = Query(None, description="Created before (ISO 8601)."),
    before: str | None = Query(None, description="Cursor: the last id of the previous page."),
    limit: int = Query(50, ge=1, le=500),
) -> Page:
    """Executions, newest first."""
    try:
        statuses = [ExecutionStatus(s) for s in status] or None
    except ValueError:
        known = ", ".join(s.value for s in ExecutionStatus)
        raise InvalidInput(f"status must be one of {known}") from None
    items = await _runtime(request).list_executions(
        workflow_id=workflow_id,
        status=statuses,
        since=since,
        until=until,
        before=before,
        limit=limit + 1,
    )
    more = len(items) > limit
    items = items[:limit]
    return Page(
        items=[i.model_dump(mode="json") for i in items],
        next=items[-1].execution_id if more else None,
    )


@router.get("/executions/{execution_id}")
async def get_execution(request: Request, execution_id: str) -> dict[str, Any]:
    """The execution record (SPEC §6)."""
    return (await _runtime(request).record(execution_id)).model_dump(mode="json")


@router.post("/executions/{execution_id}/stop")
async def stop(request: Request, execution_id: str) -> dict[str, Any]:
    """Cancel a running execution (409 if it is not running in this process)."""
    runtime = _runtime(request)
    await runtime.record(execution_id)  # 404 for an unknown id
    if not runtime.engine.cancel(execution_id):
        raise Conflict(f"execution {execution_id} is not running here")
    return {"execution_id": execution_id, "stopping": True}


@router.post("/executions/{execution_id}/retry")
async def retry(request: Request, execution_id: str) -> dict[str, Any]:
    """Re-run a failed execution from its failed nodes, as a new execution."""
    return (await _runtime(request).retry(execution_id)).model_dump(mode="json")


@router.post(
    "/executions/{execution_id}/resume",
    responses={202: {"description": "Resumed; running in the background (`wait=false`)."}},
)
async def resume(
    request: Request,
    execution_id: str,
    body: ResumeRequest | None = None,
    wait: bool = Query(True, description="Wait for the execution's record (false: 202 at once)."),
) -> Any:
    """Resume a `waiting` execution now: its std/wait nodes get the payload (409 for any other
    status, or when it is already being resumed); a parked std/delay ends at once."""
    runtime = _runtime(request)
    payload = body.payload if body is not None else None
    node = body.node if body is not None else None
    if not wait:
        await runtime.resume_later(execution_id, payload, node=node)
        return JSONResponse({"execution_id": execution_id, "status": "running"}, 202)
    record = await runtime.resume_now(execution_id, payload, node=node)
    return record.model_dump(mode="json")
