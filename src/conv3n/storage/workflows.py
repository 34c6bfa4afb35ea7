"""Workflows and their immutable versions: a save never overwrites, it adds a version."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from conv3n.errors import Conflict, WorkflowNotFound
from conv3n.model import Workflow
from conv3n.model.stored import StoredWorkflow
from conv3n.storage import tables
from conv3n.storage.database import Database

_W = tables.workflows
_V = tables.workflow_versions
_T = tables.trigger_state


def _now() -> datetime:
    return datetime.now(UTC)


async def create(db: Database, workflow_id: str, workflow: Workflow) -> StoredWorkflow:
    """Store a new workflow as version 1.

    Raises:
        Conflict: a workflow with this id exists.
    """
    now = _now()
    document = workflow.model_copy(update={"id": workflow_id}).to_document()
    try:
        async with db.write() as conn:
            await conn.execute(
                insert(_W).values(
                    id=workflow_id,
                    name=workflow.name,
                    current_version=1,
                    active=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            await conn.execute(
                insert(_V).values(
                    workflow_id=workflow_id, version=1, document=document, created_at=now
                )
            )
    except IntegrityError:
        raise Conflict(
            f"a workflow with id {workflow_id!r} exists", details={"workflow_id": workflow_id}
        ) from None
    return await get(db, workflow_id)


async def save_version(db: Database, workflow_id: str, workflow: Workflow) -> StoredWorkflow:
    """Add a new version of an existing workflow (the old ones stay for their executions).

    Raises:
        WorkflowNotFound: no workflow has this id.
    """
    now = _now()
    document = workflow.model_copy(update={"id": workflow_id}).to_document()
    async with db.write() as conn:
        row = (
            await conn.execute(select(_W.c.current_version).where(_W.c.id == workflow_id))
        ).first()
        if row is None:
            raise WorkflowNotFound(
                f"no workflow has id {workflow_id!r}", details={"workflow_id": workflow_id}
            )
        version = int(row.current_version) + 1
        await conn.execute(
            insert(_V).values(
                workflow_id=workflow_id, version=version, document=document, created_at=now
            )
        )
        await conn.execute(
            update(_W)
            .where(_W.c.id == workflow_id)
            .values(current_version=version, name=workflow.name, updated_at=now)
        )
    return await get(db, workflow_id)


async def upsert(db: Database, workflow_id: str, workflow: Workflow) -> StoredWorkflow:
    """Create the workflow, or add a version if it exists and the document changed."""
    try:
        current = await get(db, workflow_id)
    except WorkflowNotFound:
        return await create(db, workflow_id, workflow)
    wanted = workflow.model_copy(update={"id": workflow_id}).to_document()
    if current.workflow.to_document() == wanted:
        return current
    return await save_version(db, workflow_id, workflow)


async def get(db: Database, workflow_id: str, version: int | None = None) -> StoredWorkflow:
    """A workflow at its latest (or a given) version.

    Raises:
        WorkflowNotFound: no such workflow or version.
    """
    query = select(_W, _V.c.version, _V.c.document).join(_V, _V.c.workflow_id == _W.c.id)
    query = query.where(_W.c.id == workflow_id)
    query = query.where(_V.c.version == (version if version is not None else _W.c.current_version))
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        what = f"version {version} of workflow" if version is not None else "workflow"
        raise WorkflowNotFound(
            f"no {what} {workflow_id!r}", details={"workflow_id": workflow_id, "version": version}
        )
    return _stored(row._mapping)


def _stored(row: Any) -> StoredWorkflow:
    return StoredWorkflow(
        id=row["id"],
        version=row["version"],
        latest_version=row["current_version"],
        active=bool(row["active"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        workflow=Workflow.model_validate(row["document"]),
    )


async def list_page(
    db: Database, *, limit: int = 50, after: str | None = None, active: bool | None = None
) -> list[StoredWorkflow]:
    """Workflows ordered by id, `limit` at a time after the id `after` (keyset paging)."""
    query = select(_W, _V.c.version, _V.c.document).join(
        _V, (_V.c.workflow_id == _W.c.id) & (_V.c.version == _W.c.current_version)
    )
    if after is not None:
        query = query.where(_W.c.id > after)
    if active is not None:
        query = query.where(_W.c.active == active)
    query = query.order_by(_W.c.id).limit(limit)
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [_stored(row._mapping) for row in rows]


async def count(db: Database) -> int:
    """How many workflows are stored."""
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(_W))).scalar_one())


async def versions(db: Database, workflow_id: str) -> list[int]:
    """Every stored version number of a workflow, oldest first."""
    query = select(_V.c.version).where(_V.c.workflow_id == workflow_id).order_by(_V.c.version)
    async with db.read() as conn:
        return [int(v) for v in (await conn.execute(query)).scalars()]


async def set_active(db: Database, workflow_id: str, active: bool) -> None:
    """Mark a workflow's triggers as running or stopped. Stopping forgets their state, so due
    times missed while the workflow is inactive are not caught up when it is activated again.

    Raises:
        WorkflowNotFound: no workflow has this id.
    """
    async with db.write() as conn:
        result = await conn.execute(
            update(_W).where(_W.c.id == workflow_id).values(active=active, updated_at=_now())
        )
        if not active:
            await conn.execute(delete(_T).where(_T.c.workflow_id == workflow_id))
    if result.rowcount == 0:
        raise WorkflowNotFound(
            f"no workflow has id {workflow_id!r}", details={"workflow_id": workflow_id}
        )


async def remove(db: Database, workflow_id: str) -> None:
    """Delete a workflow and its versions (its executions keep their own copy of the document).

    Raises:
        WorkflowNotFound: no workflow has this id.
    """
    async with db.write() as conn:
        await conn.execute(delete(_V).where(_V.c.workflow_id == workflow_id))
        await conn.execute(delete(_T).where(_T.c.workflow_id == workflow_id))
        result = await conn.execute(delete(_W).where(_W.c.id == workflow_id))
    if result.rowcount == 0:
        raise WorkflowNotFound(
            f"no workflow has id {workflow_id!r}", details={"workflow_id": workflow_id}
        )
