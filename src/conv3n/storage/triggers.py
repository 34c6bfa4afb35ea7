"""Trigger state (`trigger_state`): what a scheduled or file trigger's last run left, and the
lease that lets one process at a time run it.

A process runs a trigger only while it holds the row's lease (`lease_owner`, `lease_until`);
others stand by and take over when it expires, is released, or its owner died. The state is
written only by the lease holder.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from conv3n.model import JSON
from conv3n.model.stored import StoredTriggerState
from conv3n.storage import tables
from conv3n.storage.database import Database

_T = tables.trigger_state
_W = tables.workflows


def _where(workflow_id: str, trigger_key: str) -> Any:
    return (_T.c.workflow_id == workflow_id) & (_T.c.trigger_key == trigger_key)


def _state(row: Any) -> StoredTriggerState:
    return StoredTriggerState(
        workflow_id=row["workflow_id"],
        trigger_key=row["trigger_key"],
        next_fire_at=row["next_fire_at"],
        last_fire_at=row["last_fire_at"],
        fire_count=int(row["fire_count"] or 0),
        cursor=row["cursor"],
        last_error=row["last_error"],
        lease_owner=row["lease_owner"],
        lease_until=row["lease_until"],
    )


async def get(db: Database, workflow_id: str, trigger_key: str) -> StoredTriggerState | None:
    """One trigger's stored state, if any."""
    async with db.read() as conn:
        row = (await conn.execute(select(_T).where(_where(workflow_id, trigger_key)))).first()
    return _state(row._mapping) if row else None


async def states(
    db: Database, workflow_ids: Iterable[str] | None = None
) -> dict[tuple[str, str], StoredTriggerState]:
    """Stored states by (workflow id, trigger key), of these workflows (else of all)."""
    query = select(_T)
    if workflow_ids is not None:
        query = query.where(_T.c.workflow_id.in_(list(workflow_ids)))
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return {(r.workflow_id, r.trigger_key): _state(r._mapping) for r in rows}


async def acquire(
    db: Database,
    workflow_id: str,
    trigger_key: str,
    *,
    owner: str,
    until: datetime,
    now: datetime,
    dead_owner: str | None = None,
) -> bool:
    """Take the trigger's lease unless another live process holds it (creating its row).

    Nothing is taken for a workflow that is not active (anymore): a process that has not yet
    seen a deactivation does not start its triggers again.

    Args:
        dead_owner: an owner known to be dead (a crashed process on this host): its lease is
            void even before it expires.
    """
    free = [_T.c.lease_owner.is_(None), _T.c.lease_owner == owner, _T.c.lease_until < now]
    if dead_owner is not None:
        free.append(_T.c.lease_owner == dead_owner)
    try:
        async with db.write() as conn:
            active = (await conn.execute(select(_W.c.active).where(_W.c.id == workflow_id))).first()
            if active is None or not active[0]:
                return False
            result = await conn.execute(
                update(_T)
                .where(_where(workflow_id, trigger_key), or_(*free))
                .values(lease_owner=owner, lease_until=until)
            )
            if result.rowcount:
                return True
            exists = await conn.execute(
                select(_T.c.workflow_id).where(_where(workflow_id, trigger_key))
            )
            if exists.first() is not None:
                return False
            await conn.execute(
                insert(_T).values(
                    workflow_id=workflow_id,
                    trigger_key=trigger_key,
                    fire_count=0,
                    lease_owner=owner,
                    lease_until=until,
                )
            )
    except IntegrityError:
        return False  # another process created the row first: it holds the lease
    return True


async def renew(
    db: Database, workflow_id: str, trigger_key: str, *, owner: str, until: datetime
) -> bool:
    """Extend this process's lease; False if it no longer holds it (taken over, or the
    workflow was deactivated or deleted)."""
    async with db.write() as conn:
        result = await conn.execute(
            update(_T)
            .where(_where(workflow_id, trigger_key), _T.c.lease_owner == owner)
            .values(lease_until=until)
        )
    return bool(result.rowcount)


async def release(db: Database, workflow_id: str, trigger_key: str, *, owner: str) -> None:
    """Give up this process's lease (a standby process takes over at once)."""
    async with db.write() as conn:
        await conn.execute(
            update(_T)
            .where(_where(workflow_id, trigger_key), _T.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )


async def save(
    db: Database,
    workflow_id: str,
    trigger_key: str,
    *,
    owner: str,
    next_fire_at: datetime | None,
    last_fire_at: datetime | None,
    fire_count: int,
    last_error: str | None,
    cursor: JSON = None,
) -> bool:
    """Store a trigger's state, if this process holds its lease (True if it was stored)."""
    async with db.write() as conn:
        result = await conn.execute(
            update(_T)
            .where(_where(workflow_id, trigger_key), _T.c.lease_owner == owner)
            .values(
                next_fire_at=next_fire_at,
                last_fire_at=last_fire_at,
                fire_count=fire_count,
                last_error=last_error,
                cursor=cursor,
            )
        )
    return bool(result.rowcount)


async def forget(db: Database, workflow_id: str) -> None:
    """Drop a workflow's trigger states (it was deactivated or deleted: due times missed while
    it was inactive are not caught up when it is activated again)."""
    async with db.write() as conn:
        await conn.execute(delete(_T).where(_T.c.workflow_id == workflow_id))
