"""`StoreJournal`: the engine's Journal on a database, with group commit.

Events are queued as the engine reports them and written by one writer task: every event that
arrived while the previous transaction was committing goes into the next one, so concurrent
executions share transactions and persistence stays cheap. `execution_finished` waits for its
commit, so a finished execution is always readable; a crash loses at most the node results of
the last few milliseconds, whose nodes re-run on resume (at-least-once).
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, update

from conv3n.errors import Unavailable
from conv3n.model import ErrorInfo, ExecutionRecord, NodeRecord
from conv3n.storage import tables
from conv3n.storage.database import Database

log = logging.getLogger("conv3n.storage")

DEFAULT_MAX_RESULT_BYTES = 1024 * 1024
"""Node results larger than this (as JSON) go to the side table; listings show a marker."""

_E = tables.executions
_N = tables.node_results
_L = tables.large_results
_A = tables.node_attempts

_START = (
    update(_E)
    .where(_E.c.id == bindparam("b_id"))
    .values(status="running", started_at=bindparam("b_started"), wake_at=None)
)
_FINISH = (
    update(_E)
    .where(_E.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        output=bindparam("b_output", type_=tables.JSONText()),
        error=bindparam("b_error", type_=tables.JSONText()),
        response=bindparam("b_response", type_=tables.JSONText()),
        finished_at=bindparam("b_finished"),
        duration_ms=bindparam("b_duration"),
        owner=None,
        lease_until=None,
    )
)


@dataclass(slots=True)
class _NodeRow:
    execution_id: str
    node_id: str
    record: NodeRecord


class StoreJournal:
    """Writes execution and node events to the database in group-committed batches.

    Use as an async context manager (it owns its writer task), or call `start()`/`close()`.
    """

    def __init__(
        self,
        db: Database,
        *,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        redact: Callable[[str], str] | None = None,
    ):
        self._db = db
        self._max_result_bytes = max_result_bytes
        self._redact = redact
        self._starts: list[dict[str, Any]] = []
        self._nodes: list[_NodeRow] = []
        self._attempts: list[dict[str, Any]] = []
        self._finishes: list[dict[str, Any]] = []
        self._pushed = 0
        self._committed = 0
        self._wake = asyncio.Event()
        self._done = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0
        """Transactions committed so far (benchmarks read it)."""

    async def start(self) -> None:
        """Start the writer task."""
        if self._task is None:
            self._task = asyncio.create_task(self._writer(), name="conv3n-journal-writer")

    async def close(self) -> None:
        """Write everything queued, then stop the writer."""
        if self._task is None:
            return
        await self.flush()
        self._closing = True
        self._wake.set()
        await self._task
        self._task = None

    async def __aenter__(self) -> "StoreJournal":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- the Journal protocol -----------------------------------------------------------------

    async def execution_started(self, record: ExecutionRecord) -> None:
        """Queued: mark the execution running."""
        self._starts.append({"b_id": record.execution_id, "b_started": record.started_at})
        self._push()

    async def node_started(
        self, execution_id: str, node_id: str, attempt: int, started_at: datetime
    ) -> None:
        """Nothing is stored when a node starts (its result is stored when it finishes)."""

    async def attempt_failed(
        self, execution_id: str, node_id: str, attempt: int, error: ErrorInfo, retry_in_s: float
    ) -> None:
        """Queued: one row per retried attempt."""
        self._attempts.append(
            {
                "execution_id": execution_id,
                "node_id": node_id,
                "attempt": attempt,
                "error": self._encode(error.model_dump()),
                "retry_in_s": retry_in_s,
                "failed_at": datetime.now(UTC),
            }
        )
        self._push()

    async def node_finished(self, execution_id: str, node_id: str, record: NodeRecord) -> None:
        """Queued: the node's final record."""
        self._nodes.append(_NodeRow(execution_id, node_id, record))
        self._push()

    async def execution_finished(self, record: ExecutionRecord) -> None:
        """Queued, and waited for: the execution's final state is committed on return."""
        error = record.error.model_dump() if record.error else None
        response = record.response.model_dump() if record.response else None
        self._finishes.append(
            {
                "b_id": record.execution_id,
                "b_status": record.status.value,
                "b_output": self._encode(record.output),
                "b_error": self._encode(error),
                "b_response": self._encode(response),
                "b_finished": record.finished_at,
                "b_duration": record.duration_ms,
            }
        )
        self._push()
        await self.flush()

    # --- writing ---------------------------------------------------------------------------

    def _push(self) -> None:
        self._pushed += 1
        self._wake.set()

    async def flush(self) -> None:
        """Wait until every event queued so far is committed.

        Raises:
            Unavailable: the writer is not running.
        """
        target = self._pushed
        if self._committed >= target:
            return
        if self._task is None or self._task.done():
            raise Unavailable("the execution journal is not running")
        async with self._done:
            await self._done.wait_for(
                lambda: self._committed >= target or self._task is None or self._task.done()
            )

    def _encode(self, value: Any) -> tables.Encoded | None:
        if value is None:
            return None
        text = tables.encode(value)
        if self._redact is not None:
            text = tables.Encoded(self._redact(text))
        return text

    async def _writer(self) -> None:
        delay = 0.05
        while True:
            await self._wake.wait()
            self._wake.clear()
            starts, nodes, tried, finishes = (
                self._starts,
                self._nodes,
                self._attempts,
                self._finishes,
            )
            count = self._pushed
            if not (starts or nodes or tried or finishes):
                if self._closing:
                    return
                continue
            self._starts, self._nodes, self._attempts, self._finishes = [], [], [], []
            while True:
                try:
                    await self._write(starts, nodes, tried, finishes)
                    delay = 0.05
                    break
                except Unavailable as exc:
                    # keep the batch and try again: an accepted result is never dropped
                    log.warning("journal write failed, retrying in %.2fs: %s", delay, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                except Exception:
                    # a batch the database refuses for good (a bug, not an outage): log it
                    # and go on, so one bad row cannot stop every execution's persistence
                    log.exception("journal batch refused by the database; it is dropped")
                    break
            self.batches += 1
            async with self._done:
                self._committed = count
                self._done.notify_all()

    async def _write(
        self,
        starts: list[dict[str, Any]],
        nodes: list[_NodeRow],
        tried: list[dict[str, Any]],
        finishes: list[dict[str, Any]],
    ) -> None:
        node_rows, large_rows = self._node_rows(nodes)
        keys = [{"b_e": r["execution_id"], "b_n": r["node_id"]} for r in node_rows]
        async with self._db.write() as conn:
            if starts:
                await conn.execute(_START, starts)
            if node_rows:
                for table in (_N, _L):
                    await conn.execute(
                        delete(table).where(
                            table.c.execution_id == bindparam("b_e"),
                            table.c.node_id == bindparam("b_n"),
                        ),
                        keys,
                    )
                await conn.execute(insert(_N), node_rows)
                if large_rows:
                    await conn.execute(insert(_L), large_rows)
            if tried:
                await conn.execute(
                    delete(_A).where(
                        _A.c.execution_id == bindparam("b_e"),
                        _A.c.node_id == bindparam("b_n"),
                        _A.c.attempt == bindparam("b_a"),
                    ),
                    [
                        {"b_e": t["execution_id"], "b_n": t["node_id"], "b_a": t["attempt"]}
                        for t in tried
                    ],
                )
                await conn.execute(insert(_A), tried)
            if finishes:
                await conn.execute(_FINISH, finishes)

    def _node_rows(
        self, nodes: list[_NodeRow]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows: list[dict[str, Any]] = []
        large: list[dict[str, Any]] = []
        latest: dict[tuple[str, str], _NodeRow] = {}
        for row in nodes:
            latest[(row.execution_id, row.node_id)] = row
        for row in latest.values():
            record = row.record
            data = self._encode(record.data)
            size = len(data) if data is not None else 0
            external = size > self._max_result_bytes
            if external:
                large.append(
                    {"execution_id": row.execution_id, "node_id": row.node_id, "data": data}
                )
            error = record.error.model_dump() if record.error else None
            rows.append(
                {
                    "execution_id": row.execution_id,
                    "node_id": row.node_id,
                    "status": record.status.value,
                    "data": None if external else data,
                    "data_bytes": size,
                    "data_external": external,
                    "error": self._encode(error),
                    "ports": record.ports,
                    "attempts": record.attempts,
                    "started_at": record.started_at,
                    "finished_at": record.finished_at,
                    "duration_ms": record.duration_ms,
                }
            )
        return rows, large
