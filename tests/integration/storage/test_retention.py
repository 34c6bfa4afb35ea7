"""Retention: prune by age and count in batches; SQLite gives the space back."""

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from conv3n.compiler import load_workflow
from conv3n.model import ExecutionStatus
from conv3n.runtime.service import Runtime
from conv3n.storage import RetentionPolicy, executions, retention, tables


def doc(wid: str, size: int = 10):
    return load_workflow(
        {
            "version": 1,
            "id": wid,
            "nodes": [
                {
                    "id": "a",
                    "type": "std/transform",
                    "config": {"template": f"{{{{ 'x' * {size} }}}}"},
                }
            ],
        }
    )


async def age(rt: Runtime, days: float) -> None:
    await rt.journal.flush()
    old = datetime.now(UTC) - timedelta(days=days)
    async with rt.db.write() as conn:
        await conn.execute(update(tables.executions).values(created_at=old))


async def count_rows(rt: Runtime, table) -> int:
    async with rt.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_prune_by_age_deletes_old_finished_executions_with_their_nodes(runtime):
    plan = runtime.compile(doc("w"))
    for _ in range(5):
        await runtime.execute(plan)
    await age(runtime, 20)
    keep = await runtime.execute(plan)
    deleted = await retention.prune(runtime.db, RetentionPolicy(max_age_days=14, batch_size=2))
    assert deleted == 5
    assert [s.execution_id for s in await runtime.list_executions()] == [keep.execution_id]
    assert list((await runtime.record(keep.execution_id)).nodes) == ["a"]
    async with runtime.db.read() as conn:
        orphans = (
            select(func.count())
            .select_from(tables.node_results)
            .where(tables.node_results.c.execution_id != keep.execution_id)
        )
        assert (await conn.execute(orphans)).scalar_one() == 0


async def test_prune_keeps_the_newest_per_workflow(runtime):
    for wid in ("a", "b"):
        plan = runtime.compile(doc(wid))
        for _ in range(6):
            await runtime.execute(plan)
    policy = RetentionPolicy(max_age_days=None, max_per_workflow=4, batch_size=3)
    await runtime.journal.flush()
    assert await retention.prune(runtime.db, policy) == 4
    for wid in ("a", "b"):
        assert len(await runtime.list_executions(workflow_id=wid)) == 4


async def test_prune_keeps_the_newest_overall(runtime):
    plan = runtime.compile(doc("w"))
    ids = [(await runtime.execute(plan)).execution_id for _ in range(5)]
    policy = RetentionPolicy(max_age_days=None, max_per_workflow=None, max_total=2)
    await runtime.journal.flush()
    assert await retention.prune(runtime.db, policy) == 3
    assert {s.execution_id for s in await runtime.list_executions()} == set(ids[-2:])


async def test_unfinished_executions_are_never_pruned(runtime):
    plan = runtime.compile(doc("w"))
    record = await runtime.execute(plan)
    await runtime.journal.flush()
    await executions.set_status(runtime.db, record.execution_id, ExecutionStatus.WAITING)
    await age(runtime, 100)
    assert await retention.prune(runtime.db, RetentionPolicy(max_age_days=1)) == 0


async def test_sqlite_file_shrinks_after_pruning(tmp_path):
    from conv3n.runtime import Settings

    settings = Settings.from_env({"CONV3N_DATA_DIR": str(tmp_path)})
    path = tmp_path / "conv3n.db"
    async with Runtime(settings) as rt:
        plan = rt.compile(doc("w", size=200_000))
        for _ in range(30):
            await rt.execute(plan)
        await rt.journal.flush()
        await retention.reclaim_space(rt.db)
        full = path.stat().st_size
        assert full > 30 * 200_000
        await age(rt, 30)
        assert await rt.prune() == 30
        shrunk = path.stat().st_size
    assert shrunk < full / 5


async def test_documents_are_stored_once_and_pruned_with_their_last_execution(runtime):
    plan = runtime.compile(doc("w"))
    for _ in range(5):
        await runtime.execute(plan)
    await runtime.journal.flush()
    assert await count_rows(runtime, tables.documents) == 1
    await age(runtime, 30)
    assert await runtime.prune() == 5
    assert await count_rows(runtime, tables.documents) == 0
    again = await runtime.execute(plan)
    assert (await runtime.record(again.execution_id)).status == ExecutionStatus.SUCCESS
    assert await count_rows(runtime, tables.documents) == 1


async def test_the_retention_loop_prunes_on_schedule(runtime, monkeypatch):
    passes: asyncio.Queue[int] = asyncio.Queue()
    prune = runtime.prune

    async def counted() -> int:
        deleted: int = await prune()
        passes.put_nowait(deleted)
        return deleted

    monkeypatch.setattr(runtime, "prune", counted)
    plan = runtime.compile(doc("w"))
    await runtime.execute(plan)
    await age(runtime, 30)
    loop = asyncio.create_task(runtime.run_retention(every_s=0.01))
    try:
        assert await asyncio.wait_for(passes.get(), 10) == 1  # the first pass runs at once
        await runtime.execute(plan)
        await age(runtime, 30)
        deleted = 0
        while not deleted:  # the next scheduled pass takes the new old one
            deleted = await asyncio.wait_for(passes.get(), 10)
        assert deleted == 1
        assert await runtime.list_executions() == []
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
