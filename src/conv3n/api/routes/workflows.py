"""Stored workflows: list, create, read, replace (a new version), delete, run, (de)activate."""

from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from conv3n.api.schemas import Accepted, Page, WorkflowRunRequest
from conv3n.errors import Conflict, InvalidInput
from conv3n.runtime import compile_document
from conv3n.runtime.service import Runtime
from conv3n.storage import workflows

router = APIRouter(tags=["workflows"])


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _summary(item: Any) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.workflow.name,
        "version": item.version,
        "active": item.active,
        "updated_at": item.updated_at.isoformat(),
    }


@router.get("/workflows", response_model=Page)
async def list_workflows(
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    after: str | None = Query(None, description="Cursor: the last id of the previous page."),
) -> Page:
    """Stored workflows ordered by id."""
    items = await workflows.list_page(_runtime(request).db, limit=limit + 1, after=after)
    more = len(items) > limit
    items = items[:limit]
    return Page(items=[_summary(i) for i in items], next=items[-1].id if more else None)


@router.post("/workflows", status_code=201)
async def create_workflow(request: Request, document: dict[str, Any]) -> dict[str, Any]:
    """Validate and store a new workflow, its triggers too (422 lists every problem; 409 if
    the id exists)."""
    runtime = _runtime(request)
    plan = compile_document(document, runtime.registry)
    workflow = plan.workflow
    if not workflow.id:
        raise InvalidInput("a stored workflow needs an `id`")
    stored = await workflows.create(runtime.db, workflow.id, workflow)
    await runtime.refresh_triggers()
    return {**_summary(stored), "workflow": stored.workflow.to_document()}


@router.get("/workflows/{workflow_id}")
async def get_workflow(
    request: Request, workflow_id: str, version: int | None = Query(None, ge=1, le=2**31 - 1)
) -> dict[str, Any]:
    """A workflow at its latest (or a given) version."""
    stored = await workflows.get(_runtime(request).db, workflow_id, version)
    return {
        **_summary(stored),
        "latest_version": stored.latest_version,
        "workflow": stored.workflow.to_document(),
    }


@router.put("/workflows/{workflow_id}")
async def replace_workflow(
    request: Request, workflow_id: str, document: dict[str, Any]
) -> dict[str, Any]:
    """Store a new version (the old ones stay for the executions that ran them)."""
    runtime = _runtime(request)
    plan = compile_document(document, runtime.registry)
    if plan.workflow.id not in (None, workflow_id):
        raise Conflict(f"the document's id {plan.workflow.id!r} is not {workflow_id!r}")
    stored = await workflows.save_version(runtime.db, workflow_id, plan.workflow)
    await runtime.refresh_triggers()
    return {**_summary(stored), "workflow": stored.workflow.to_document()}


@router.delete("/workflows/{workflow_id}", status_code=204)
async def delete_workflow(request: Request, workflow_id: str) -> Response:
    """Delete a workflow and its versions (executions keep their copy)."""
    runtime = _runtime(request)
    await workflows.remove(runtime.db, workflow_id)
    await runtime.refresh_triggers()
    return Response(status_code=204)


@router.post("/workflows/{workflow_id}/run", responses={202: {"model": Accepted}})
async def run_workflow(
    request: Request,
    workflow_id: str,
    body: WorkflowRunRequest | None = None,
    wait: bool = Query(True, description="Wait for the execution record (else 202)."),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=255),
) -> Any:
    """Run the latest version; waits for the record unless `?wait=false`."""
    runtime = _runtime(request)
    payload = body.input if body is not None else None
    if not wait:
        execution_id = await runtime.start_workflow(
            workflow_id, payload, idempotency_key=idempotency_key
        )
        return JSONResponse({"execution_id": execution_id}, 202)
    record = await runtime.run_workflow(workflow_id, payload, idempotency_key=idempotency_key)
    return record.model_dump(mode="json")


async def _set_active(request: Request, workflow_id: str, active: bool) -> dict[str, Any]:
    runtime = _runtime(request)
    await workflows.set_active(runtime.db, workflow_id, active)
    await runtime.refresh_triggers()
    return {"id": workflow_id, "active": active}


@router.post("/workflows/{workflow_id}/activate")
async def activate(request: Request, workflow_id: str) -> dict[str, Any]:
    """Start the workflow's triggers."""
    return await _set_active(request, workflow_id, True)


@router.post("/workflows/{workflow_id}/deactivate")
async def deactivate(request: Request, workflow_id: str) -> dict[str, Any]:
    """Stop the workflow's triggers."""
    return await _set_active(request, workflow_id, False)
