"""Executions and their node results: create (idempotently), read, list, resume, retry."""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from conv3n.errors import ExecutionNotFound
from conv3n.model import (
    ErrorInfo,
    ExecutionRecord,
    ExecutionStatus,
    NodeRecord,
    NodeStatus,
    WebhookResponse,
)
from conv3n.model.stored import ExecutionSummary, StoredExecution
from conv3n.storage import tables
from conv3n.storage.database import Database

_E = tables.executions
_N = tables.node_results
_L = tables.large_results
_A = tables.node_attempts
_D = tables.documents
_WITH_DOCUMENT = select(_E, _D.c.document).outerjoin(_D, _D.c.hash == _E.c.document_hash)

LARGE_MARKER = "$conv3n_large_result"
"""Key of the marker a listing shows instead of a result stored in the side table."""


async def create_row(db: Database, row: dict[str, Any]) -> tuple[str, bool]:
    """Insert an execution row now; with an idempotency key seen before, return that one.

    Returns:
        (execution id, True if this row was inserted).
    """
    values = dict(row)
    text, digest = _document_text(values.pop("document", None))
    values["document_hash"] = digest
    try:
        async with db.write() as conn:
            if digest is not None:
                exists = await conn.execute(select(_D.c.hash).where(_D.c.hash == digest))
                if exists.first() is None:
                    await conn.execute(insert(_D).values(hash=digest, document=text))
            await conn.execute(insert(_E).values(**values))
    except IntegrityError:
        key = row.get("idempotency_key")
        if key is None:
            raise
        existing = await find_by_idempotency_key(db, key)
        if existing is None:
            raise
        return existing, False
    return str(row["id"]), True


async def create(
    db: Database,
    *,
    execution_id: str,
    workflow_id: str | None,
    workflow_version: int | None,
    mode: str,
    input: Any,
    document: dict[str, Any],
    source: str | None = None,
    idempotency_key: str | None = None,
    parent_id: str | None = None,
    status: ExecutionStatus = ExecutionStatus.QUEUED,
    owner: str | None = None,
    lease_until: datetime | None = None,
) -> tuple[str, bool]:
    """Store a new execution; with an idempotency key seen before, return that one instead.

    Returns:
        (execution id, True if it was created now).
    """
    return await create_row(
        db,
        {
            "id": execution_id,
            "workflow_id": workflow_id,
            "workflow_version": workflow_version,
            "status": status.value,
            "mode": mode,
            "input": input,
            "document": document,
            "source": source,
            "idempotency_key": idempotency_key,
            "parent_id": parent_id,
            "owner": owner,
            "lease_until": lease_until,
            "created_at": datetime.now(UTC),
        },
    )


def _document_text(document: Any) -> tuple[tables.Encoded | None, str | None]:
    """A document as stored JSON text and its content hash."""
    if document is None:
        return None, None
    text = document if type(document) is tables.Encoded else tables.encode(document)
    return text, tables.document_hash(text)


async def find_by_idempotency_key(db: Database, key: str) -> str | None:
    """The execution started with this idempotency key, if any."""
    async with db.read() as conn:
        found = (await conn.execute(select(_E.c.id).where(_E.c.idempotency_key == key))).first()
    return str(found[0]) if found else None


async def node_records(db: Database, execution_id: str) -> dict[str, NodeRecord]:
    """The stored final record of each node, large results included."""
    async with db.read() as conn:
        blob = (await conn.execute(select(_E.c.nodes).where(_E.c.id == execution_id))).first()
        return await _merged_nodes(conn, execution_id, blob[0] if blob else None, full=True)


async def _merged_nodes(
    conn: AsyncConnection, execution_id: str, blob: Any, *, full: bool
) -> dict[str, NodeRecord]:
    """Node records of an execution: those kept as one value on its row, then its
    node_results rows (with side-table results, or a marker unless `full`)."""
    query = (
        select(_N, _L.c.data.label("large"))
        .outerjoin(_L, and_(_L.c.execution_id == _N.c.execution_id, _L.c.node_id == _N.c.node_id))
        .where(_N.c.execution_id == execution_id)
    )
    records = _blob_records(blob)
    for row in (await conn.execute(query)).all():
        records[row.node_id] = _node_record(row._mapping, full=full)
    return records


def _blob_records(blob: Any) -> dict[str, NodeRecord]:
    """Node records kept as one JSON value on the execution row (see tables.executions)."""
    if not blob:
        return {}
    return {node_id: _record_from_json(value) for node_id, value in blob.items()}


def _record_from_json(value: dict[str, Any]) -> NodeRecord:
    error = value.get("error")
    return NodeRecord(
        status=NodeStatus(value["status"]),
        data=value.get("data"),
        error=ErrorInfo.model_validate(error) if error else None,
        attempts=value.get("attempts", 0),
        started_at=_when(value.get("started_at")),
        finished_at=_when(value.get("finished_at")),
        duration_ms=value.get("duration_ms"),
        ports=value.get("ports"),
        effects=value.get("effects"),
    )


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _node_record(row: Any, *, full: bool) -> NodeRecord:
    data = row["data"]
    if row["data_external"]:
        data = row["large"] if full else {LARGE_MARKER: {"bytes": row["data_bytes"]}}
    error = row["error"]
    return NodeRecord(
        status=NodeStatus(row["status"]),
        data=data,
        error=ErrorInfo.model_validate(error) if error else None,
        attempts=row["attempts"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_ms=row["duration_ms"],
        ports=row["ports"],
        effects=row["effects"],
    )


async def get_record(db: Database, execution_id: str, *, full: bool = True) -> ExecutionRecord:
    """The SPEC §6 record of an execution.

    Args:
        full: include results kept in the side table (else a marker with their size).

    Raises:
        ExecutionNotFound: no execution has this id.
    """
    async with db.read() as conn:
        row = await _execution_row(conn, execution_id)
        e = row._mapping
        records = await _merged_nodes(conn, execution_id, e["nodes"], full=full)
    order = _document_order(e["document"])
    ordered = {k: records[k] for k in sorted(records, key=lambda k: order.get(k, len(order)))}
    return ExecutionRecord(
        execution_id=e["id"],
        workflow_id=e["workflow_id"],
        status=ExecutionStatus(e["status"]),
        mode=e["mode"],
        started_at=e["started_at"],
        finished_at=e["finished_at"],
        duration_ms=e["duration_ms"],
        input=e["input"],
        output=e["output"],
        error=ErrorInfo.model_validate(e["error"]) if e["error"] else None,
        response=WebhookResponse.model_validate(e["response"]) if e["response"] else None,
        wake_at=e["wake_at"],
        nodes=ordered,
    )


def _document_order(document: Any) -> dict[str, int]:
    nodes = document.get("nodes", []) if isinstance(document, dict) else []
    return {str(n.get("id")): i for i, n in enumerate(nodes) if isinstance(n, dict)}


async def get_stored(db: Database, execution_id: str) -> StoredExecution:
    """What resuming or retrying an execution needs (its document, input, status).

    Raises:
        ExecutionNotFound: no execution has this id.
    """
    async with db.read() as conn:
        row = await _execution_row(conn, execution_id)
    return _stored(row._mapping)


async def _execution_row(conn: AsyncConnection, execution_id: str) -> Any:
    """The execution's row with its document (ExecutionNotFound if there is none)."""
    row = (await conn.execute(_WITH_DOCUMENT.where(_E.c.id == execution_id))).first()
    if row is None:
        raise ExecutionNotFound(
            f"no execution has id {execution_id!r}", details={"execution_id": execution_id}
        )
    return row


def _stored(e: Any) -> StoredExecution:
    return StoredExecution(
        execution_id=e["id"],
        workflow_id=e["workflow_id"],
        workflow_version=e["workflow_version"],
        status=ExecutionStatus(e["status"]),
        mode=e["mode"],
        input=e["input"],
        document=e["document"] or {},
        source=e["source"],
        wake_at=e["wake_at"],
    )


async def page(
    db: Database,
    *,
    workflow_id: str | None = None,
    status: Iterable[ExecutionStatus] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[ExecutionSummary]:
    """Executions, newest first, `limit` at a time before the id `before` (keyset paging)."""
    query = select(
        _E.c.id,
        _E.c.workflow_id,
        _E.c.workflow_version,
        _E.c.status,
        _E.c.mode,
        _E.c.started_at,
        _E.c.finished_at,
        _E.c.duration_ms,
        _E.c.error,
        _E.c.created_at,
        _E.c.parent_id,
    )
    if workflow_id is not None:
        query = query.where(_E.c.workflow_id == workflow_id)
    if status:
        query = query.where(_E.c.status.in_([s.value for s in status]))
    if since is not None:
        query = query.where(_E.c.created_at >= since)
    if until is not None:
        query = query.where(_E.c.created_at < until)
    if before is not None:
        query = query.where(_E.c.id < before)
    query = query.order_by(_E.c.id.desc()).limit(limit)
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [
        ExecutionSummary(
            execution_id=r.id,
            workflow_id=r.workflow_id,
            workflow_version=r.workflow_version,
            status=ExecutionStatus(r.status),
            mode=r.mode,
            started_at=r.started_at,
            finished_at=r.finished_at,
            duration_ms=r.duration_ms,
            error=ErrorInfo.model_validate(r.error) if r.error else None,
            created_at=r.created_at,
            parent_id=r.parent_id,
        )
        for r in rows
    ]


async def unfinished(db: Database) -> list[tuple[StoredExecution, str | None, datetime | None]]:
    """Executions left `queued` or `running`, with their lease owner and expiry."""
    statuses = [ExecutionStatus.QUEUED.value, ExecutionStatus.RUNNING.value]
    query = _WITH_DOCUMENT.where(_E.c.status.in_(statuses)).order_by(_E.c.id)
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [(_stored(r._mapping), r.owner, r.lease_until) for r in rows]


async def claim(
    db: Database,
    execution_id: str,
    *,
    owner: str,
    until: datetime,
    now: datetime,
    dead_owner: str | None = None,
    status: ExecutionStatus | None = None,
) -> bool:
    """Take an execution for this process unless another live process holds it.

    Args:
        dead_owner: an owner known to be dead (a crashed process on this host): its lease is
            void even before it expires.
        status: take it only while it still has this status, and mark it `running` in the
            same statement (a resume takes a `waiting` execution once, even when several are
            asked for at the same moment).
    """
    conditions = [
        _E.c.owner.is_(None),
        _E.c.owner == owner,
        _E.c.lease_until.is_(None),
        _E.c.lease_until < now,
    ]
    if dead_owner is not None:
        conditions.append(_E.c.owner == dead_owner)
    where = [_E.c.id == execution_id, or_(*conditions)]
    values: dict[str, Any] = {"owner": owner, "lease_until": until}
    if status is not None:
        where.append(_E.c.status == status.value)
        values["status"] = ExecutionStatus.RUNNING.value
    async with db.write() as conn:
        result = await conn.execute(update(_E).where(*where).values(**values))
    return bool(result.rowcount)


async def renew(db: Database, *, owner: str, execution_ids: Iterable[str], until: datetime) -> None:
    """Extend this process's leases on the executions it is running."""
    ids = list(execution_ids)
    if not ids:
        return
    async with db.write() as conn:
        await conn.execute(
            update(_E).where(_E.c.owner == owner, _E.c.id.in_(ids)).values(lease_until=until)
        )


async def release(db: Database, execution_id: str, *, owner: str) -> None:
    """Give up this process's lease (the execution finished or was parked)."""
    async with db.write() as conn:
        await conn.execute(
            update(_E)
            .where(_E.c.id == execution_id, _E.c.owner == owner)
            .values(owner=None, lease_until=None)
        )


async def release_owned(db: Database, *, owner: str) -> int:
    """Give up every lease `owner` holds on an unfinished (`queued` or `running`) execution,
    so the next process resumes them at once; how many there were."""
    statuses = [ExecutionStatus.QUEUED.value, ExecutionStatus.RUNNING.value]
    async with db.write() as conn:
        result = await conn.execute(
            update(_E)
            .where(_E.c.owner == owner, _E.c.status.in_(statuses))
            .values(owner=None, lease_until=None)
        )
    return int(result.rowcount or 0)


async def waiting(db: Database, *, due_before: datetime | None = None) -> list[StoredExecution]:
    """Executions parked as `waiting` (only those whose timer is due, if `due_before`)."""
    query = _WITH_DOCUMENT.where(_E.c.status == ExecutionStatus.WAITING.value)
    if due_before is not None:
        query = query.where(_E.c.wake_at <= due_before)
    async with db.read() as conn:
        rows = (await conn.execute(query.order_by(_E.c.wake_at))).all()
    return [_stored(r._mapping) for r in rows]


async def set_status(
    db: Database, execution_id: str, status: ExecutionStatus, *, wake_at: datetime | None = None
) -> None:
    """Change an execution's status (and its wake-up time when it waits)."""
    async with db.write() as conn:
        await conn.execute(
            update(_E).where(_E.c.id == execution_id).values(status=status.value, wake_at=wake_at)
        )


async def forget_nodes(db: Database, execution_id: str, node_ids: Iterable[str]) -> None:
    """Drop stored results of some nodes so a retry or fork re-runs them."""
    ids = list(node_ids)
    if not ids:
        return
    async with db.write() as conn:
        for table in (_N, _L, _A):
            await conn.execute(
                delete(table).where(table.c.execution_id == execution_id, table.c.node_id.in_(ids))
            )


async def attempts(db: Database, execution_id: str) -> list[dict[str, Any]]:
    """Failed attempts that were retried, oldest first."""
    query = select(_A).where(_A.c.execution_id == execution_id).order_by(_A.c.failed_at)
    async with db.read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(query)).all()]
