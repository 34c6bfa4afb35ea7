"""`InlineWriter`: the journal's SQLite batches, committed on the event loop's own thread.

The fallback when the writer process (`sqlite_process.py`) cannot run, and the writer of
CONV3N_SQLITE_WRITER=inline. SQLite is in-process and, in WAL mode with synchronous=NORMAL, a
commit is an append to the WAL with no fsync. Handing it to a thread instead costs a GIL
hand-off per SQLite call, and when executions keep the event loop busy those hand-offs starve
the writer (decision 0004).
"""

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.pool import PoolProxiedConnection

from conv3n.errors import Unavailable
from conv3n.storage.database import Database
from conv3n.storage.sqlite_child import immediate
from conv3n.storage.statements import Statement, Statements

log = logging.getLogger("conv3n.storage")

BUSY_TIMEOUT_S = 1.0
"""How long a write waits for another process's write lock before the batch is retried later
(the wait blocks the event loop)."""
CHECKPOINT_EVERY_S = 1.0
"""How often, at most, the WAL is checkpointed (in a thread)."""


class InlineWriter:
    """Synchronous SQLite transactions on a sqlite3 connection of the journal's own."""

    def __init__(self, db: Database, sql: Statements, *, busy_timeout_s: float = BUSY_TIMEOUT_S):
        self._db = db
        self._sql = sql
        self._busy_timeout_s = busy_timeout_s
        self._raw: PoolProxiedConnection | None = None
        self._checkpoint: asyncio.Task[None] | None = None
        self._checkpointed_at = 0.0

    def write(self, steps: Sequence[tuple[Statement, list[dict[str, Any]]]]) -> None:
        """One transaction with every step, then a WAL checkpoint if one is due.

        Raises:
            Unavailable: the database is locked, full or gone (the batch may be retried).
        """
        try:
            with immediate(self._connection()) as cursor:
                for statement, rows in steps:
                    self._sql.run_sqlite(cursor, statement, rows)
        except (sqlite3.OperationalError, sqlite3.InterfaceError) as exc:
            self._disconnect()  # the next attempt starts on a new connection
            raise Unavailable(f"the database is unavailable: {exc}") from exc
        self._maybe_checkpoint()

    def _connection(self) -> sqlite3.Connection:
        """The connection, opened through the database's pool (so it has its pragmas: WAL, no
        autocheckpoint, explicit transactions) and kept until `close`.

        Its busy timeout is short: a write it waits for blocks the event loop's thread, so when
        another process holds the write lock for long, the batch is retried later instead.
        """
        if self._raw is None:
            try:
                self._raw = self._db.sync_engine.raw_connection()
            except DBAPIError as exc:
                raise Unavailable(f"the database is unavailable: {exc.orig or exc}") from exc
            connection = cast(sqlite3.Connection, self._raw.driver_connection)
            connection.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
        return cast(sqlite3.Connection, self._raw.driver_connection)

    def _disconnect(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            with contextlib.suppress(Exception):
                raw.invalidate()

    def _maybe_checkpoint(self) -> None:
        """Start a WAL checkpoint in a thread, at most once a second and one at a time.

        SQLite's own auto-checkpoint would run inside a commit on the event loop's thread,
        copying pages and syncing the file while every execution waits.
        """
        if self._checkpoint and not self._checkpoint.done():
            return
        now = asyncio.get_running_loop().time()
        if now - self._checkpointed_at < CHECKPOINT_EVERY_S:
            return
        self._checkpointed_at = now
        self._checkpoint = asyncio.create_task(self._run_checkpoint(), name="conv3n-checkpoint")

    async def _run_checkpoint(self) -> None:
        try:
            await asyncio.to_thread(self._db.checkpoint)
        except (OperationalError, InterfaceError) as exc:
            log.warning("WAL checkpoint failed (retried later): %s", exc)

    async def close(self) -> None:
        """Wait for a running checkpoint and give the connection back to the pool."""
        if self._checkpoint is not None:
            await self._checkpoint
            self._checkpoint = None
        if self._raw is not None:
            self._raw.close()
            self._raw = None
