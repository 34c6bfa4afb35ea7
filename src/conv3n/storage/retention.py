"""Retention: prune old executions in small batches, and give SQLite's space back.

Each batch is its own short transaction, so pruning a large history never holds the write
lock long enough to stall running executions. Only finished executions are pruned.
"""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from conv3n.model import ExecutionStatus
from conv3n.storage import tables
from conv3n.storage.database import Database

_E = tables.executions
_FINAL = [s.value for s in ExecutionStatus if s.is_final]


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How much history to keep (None means no limit of that kind).

    Attributes:
        max_age_days: finished executions older than this are pruned.
        max_per_workflow: newest finished executions kept per workflow.
        max_total: newest finished executions kept overall.
        batch_size: executions deleted per transaction.
    """

    max_age_days: float | None = 14
    max_per_workflow: int | None = 10_000
    max_total: int | None = None
    batch_size: int = 500


async def prune(db: Database, policy: RetentionPolicy, *, now: datetime | None = None) -> int:
    """Delete executions the policy no longer keeps; returns how many were deleted."""
    now = now or datetime.now(UTC)
    deleted = 0
    if policy.max_age_days is not None:
        cutoff = now - timedelta(days=policy.max_age_days)
        deleted += await _delete_where(db, policy, (_E.c.created_at < cutoff,))
    if policy.max_per_workflow is not None:
        async with db.read() as conn:
            crowded = (
                (
                    await conn.execute(
                        select(_E.c.workflow_id)
                        .where(_E.c.status.in_(_FINAL))
                        .group_by(_E.c.workflow_id)
                        .having(func.count() > policy.max_per_workflow)
                    )
                )
                .scalars()
                .all()
            )
        for workflow_id in crowded:
            scope = (
                (_E.c.workflow_id == workflow_id)
                if workflow_id is not None
                else (_E.c.workflow_id.is_(None))
            )
            oldest_kept = await _nth_newest(db, policy.max_per_workflow, scope)
            if oldest_kept is not None:
                deleted += await _delete_where(db, policy, (scope, _E.c.id < oldest_kept))
    if policy.max_total is not None:
        oldest_kept = await _nth_newest(db, policy.max_total, None)
        if oldest_kept is not None:
            deleted += await _delete_where(db, policy, (_E.c.id < oldest_kept,))
    if deleted:
        await _delete_orphan_documents(db)
    return deleted


async def _delete_orphan_documents(db: Database) -> None:
    """Workflow documents no execution refers to any more."""
    used = select(_E.c.document_hash).where(_E.c.document_hash.is_not(None))
    async with db.write() as conn:
        await conn.execute(delete(tables.documents).where(tables.documents.c.hash.not_in(used)))


async def _nth_newest(db: Database, n: int, scope: object) -> str | None:
    query = select(_E.c.id).where(_E.c.status.in_(_FINAL))
    if scope is not None:
        query = query.where(scope)  # type: ignore[arg-type]
    query = query.order_by(_E.c.id.desc()).offset(n - 1).limit(1)
    async with db.read() as conn:
        return (await conn.execute(query)).scalar_one_or_none()


async def _delete_where(
    db: Database, policy: RetentionPolicy, conditions: tuple[object, ...]
) -> int:
    deleted = 0
    while True:
        query = select(_E.c.id).where(_E.c.status.in_(_FINAL), *conditions)  # type: ignore[arg-type]
        async with db.read() as conn:
            ids = list((await conn.execute(query.limit(policy.batch_size))).scalars())
        if not ids:
            return deleted
        async with db.write() as conn:
            for table in (tables.large_results, tables.node_attempts, tables.node_results):
                await conn.execute(delete(table).where(table.c.execution_id.in_(ids)))
            await conn.execute(delete(_E).where(_E.c.id.in_(ids)))
        deleted += len(ids)
        await asyncio.sleep(0)  # let running executions write between batches


async def reclaim_space(db: Database) -> None:
    """Return free pages to the file system (SQLite incremental vacuum; no-op elsewhere)."""
    if not db.is_sqlite:
        return
    async with db.exclusive_driver_connection() as driver:
        # outside any transaction. Each step of incremental_vacuum frees one page and
        # execute() steps once, so it runs as a script (stepped to the end); then the WAL is
        # checkpointed and truncated so the file itself shrinks (holding the write lock, so
        # the journal does not write meanwhile)
        await driver.executescript("PRAGMA incremental_vacuum;")
        await asyncio.to_thread(db.checkpoint, "TRUNCATE")
