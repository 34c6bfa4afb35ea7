"""SQLite's WAL is checkpointed outside commits on the loop: by the writer process, or (inline)
from a thread."""

import asyncio
import sqlite3
from pathlib import Path

import pytest

from conv3n.compiler import load_workflow
from conv3n.runtime import Settings
from conv3n.runtime.service import Runtime
from conv3n.storage import sqlite_inline, sqlite_process

DOC = {"version": 1, "id": "ckpt", "nodes": [{"id": "a", "type": "std/noop"}]}


def rows_in_the_main_file(path: Path) -> int:
    """Executions in the database file itself, ignoring the WAL (immutable=1 never reads it)."""
    with sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM executions").fetchone()[0])
        except sqlite3.DatabaseError:
            return 0


async def test_the_writer_connection_never_checkpoints_by_itself(tmp_path):
    async with Runtime(Settings.from_env({"CONV3N_DATA_DIR": str(tmp_path)})) as rt:
        with rt.db.sync_engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert pages == 0


@pytest.mark.parametrize("writer", [sqlite_process, sqlite_inline])
async def test_executions_reach_the_database_file_through_background_checkpoints(
    tmp_path, monkeypatch, writer
):
    monkeypatch.setattr(writer, "CHECKPOINT_EVERY_S", 0.0)
    mode = "process" if writer is sqlite_process else "inline"
    settings = Settings.from_env({"CONV3N_DATA_DIR": str(tmp_path), "CONV3N_SQLITE_WRITER": mode})
    database = tmp_path / "conv3n.db"
    async with Runtime(settings) as rt:
        plan = rt.compile(load_workflow(DOC))
        await asyncio.gather(*(rt.execute(plan, {"i": i}) for i in range(200)))
        await rt.journal.flush()
        await rt.execute(plan, {"i": "last"})  # one more batch: its checkpoint covers the rest
        await rt.journal.flush()
        async with asyncio.timeout(10):
            while rows_in_the_main_file(database) < 200:
                await asyncio.sleep(0.01)
    assert rows_in_the_main_file(database) == 201
