"""`StoreJournal`: the engine's Journal on a database, with group commit.

Events are queued as the engine reports them and written by one writer task: every event that
arrives within a short window (or while the previous transaction commits) goes into the next
transaction, so concurrent executions share transactions and persistence stays cheap. A crash
loses at most the results of that window, whose nodes re-run on resume (at-least-once). Reads
that must see an execution's latest state call `flush()` first.

Rows are encoded once here (JSON text, UTC datetimes) and bound straight to the driver through
statements SQLAlchemy compiles once per dialect (`statements.py`): this is the hot path of
every stored execution.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.exc import InterfaceError, OperationalError

from conv3n.errors import Unavailable
from conv3n.model import ErrorInfo, ExecutionRecord, NodeRecord
from conv3n.storage import statements, tables
from conv3n.storage.database import Database

log = logging.getLogger("conv3n.storage")

DEFAULT_MAX_RESULT_BYTES = 1024 * 1024
"""Node results larger than this (as JSON) go to the side table; listings show a marker."""
DEFAULT_WINDOW_S = 0.002
"""How long the writer gathers events before it commits (the group-commit window)."""
CHECKPOINT_EVERY_S = 1.0
"""How often, at most, the writer has the SQLite WAL checkpointed (in a thread)."""
MAX_PENDING = 5_000
"""Queued events past which a finishing execution waits for the writer (bounds memory and
the results a crash can lose when executions keep the CPU busy)."""


_EXECUTION_COLUMNS = tuple(c.name for c in tables.executions.columns)
_PORTS: dict[tuple[str, ...], str | None] = {}


class _Batch:
    """Everything the next transaction writes, keyed so later events fold into earlier ones."""

    __slots__ = ("attempts", "creates", "documents", "finishes", "nodes", "starts")

    def __init__(self) -> None:
        self.documents: dict[str, str] = {}
        self.creates: dict[str, dict[str, Any]] = {}
        self.starts: dict[str, dict[str, Any]] = {}
        self.finishes: dict[str, dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, NodeRecord]] = {}
        self.attempts: dict[tuple[str, str, int], dict[str, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self.creates or self.starts or self.finishes or self.nodes or self.attempts)


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
        window_s: float = DEFAULT_WINDOW_S,
    ):
        self._db = db
        self._max_result_bytes = max_result_bytes
        self._redact = redact
        self._window_s = window_s
        # the writer is overdue (starved of the CPU) once a batch is several windows old
        self._overdue_s = max(window_s * 5, 0.01)
        self._batch = _Batch()
        self._pushed = 0
        self._committed = 0
        self._wake = asyncio.Event()
        self._done = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._oldest = 0.0
        self._sql = statements.Statements(db)
        self._checkpoint: asyncio.Task[None] | None = None
        self._checkpointed_at = 0.0
        self.batches = 0
        """Transactions committed so far (benchmarks and tests read it)."""

    async def start(self) -> None:
        """Start the writer task."""
        if self._task is None:
            self._closing = False
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
        if self._checkpoint is not None:
            await self._checkpoint
            self._checkpoint = None

    async def __aenter__(self) -> "StoreJournal":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- creating executions ------------------------------------------------------------------

    def execution_created(self, row: dict[str, Any]) -> None:
        """Queue the insert of a new execution row (columns of `tables.executions`; missing
        ones are null). A `document` (the workflow it runs, JSON text or data) is stored once
        per content, keyed by `document_hash`. The row is taken over, not copied."""
        moment = self._sql.moment
        document = row.pop("document", None)
        if document is not None:
            text = document if isinstance(document, str) else str(tables.encode(document))
            digest = row.get("document_hash") or tables.document_hash(text)
            row["document_hash"] = digest
            # once per batch and content; ON CONFLICT DO NOTHING keeps existing ones (and
            # restores one that retention removed meanwhile)
            self._batch.documents[digest] = text
        if len(row) != len(_EXECUTION_COLUMNS):
            row = {column: row.get(column) for column in _EXECUTION_COLUMNS}
        for column in ("input", "output", "error", "response"):
            value = row[column]
            if value is not None and type(value) is not tables.Encoded:
                row[column] = self._json(value)
        for column in ("created_at", "lease_until", "started_at", "finished_at", "wake_at"):
            if row[column] is not None:
                row[column] = moment(row[column])
        self._batch.creates[row["id"]] = row
        self._push()

    # --- the Journal protocol -----------------------------------------------------------------

    async def execution_started(self, record: ExecutionRecord) -> None:
        """Queued: mark the execution running."""
        started = self._sql.moment(record.started_at)
        pending = self._batch.creates.get(record.execution_id)
        if pending is not None:
            pending["status"] = "running"
            pending["started_at"] = started
            pending["wake_at"] = None
        else:
            self._batch.starts[record.execution_id] = {
                "id": record.execution_id,
                "status": "running",
                "started_at": started,
                "wake_at": None,
            }
        self._push()

    async def node_started(
        self, execution_id: str, node_id: str, attempt: int, started_at: datetime
    ) -> None:
        """Nothing is stored when a node starts (its result is stored when it finishes)."""

    async def attempt_failed(
        self, execution_id: str, node_id: str, attempt: int, error: ErrorInfo, retry_in_s: float
    ) -> None:
        """Queued: one row per retried attempt."""
        self._batch.attempts[(execution_id, node_id, attempt)] = {
            "execution_id": execution_id,
            "node_id": node_id,
            "attempt": attempt,
            "error": self._json(error.model_dump()),
            "retry_in_s": retry_in_s,
            "failed_at": self._sql.moment(datetime.now(UTC)),
        }
        self._push()

    async def node_finished(self, execution_id: str, node_id: str, record: NodeRecord) -> None:
        """Queued: the node's final record (a later record of the same node replaces it).

        Only the record is kept here; it is encoded when the batch is written, together with
        the other nodes of its execution when the execution finishes in the same batch.
        """
        nodes = self._batch.nodes.get(execution_id)
        if nodes is None:
            nodes = self._batch.nodes[execution_id] = {}
        nodes[node_id] = record
        self._push()

    async def execution_finished(self, record: ExecutionRecord) -> None:
        """Queued: the execution's final state (committed within the group-commit window)."""
        error, response, wake_at = record.error, record.response, record.wake_at
        pending = self._batch.creates.get(record.execution_id)
        values: dict[str, Any] = (
            pending if pending is not None else {"id": record.execution_id, "nodes": None}
        )
        values["status"] = record.status.value
        values["output"] = self._json(record.output)
        values["error"] = self._json(error.model_dump()) if error is not None else None
        values["response"] = self._json(response.model_dump()) if response is not None else None
        values["finished_at"] = self._sql.moment(record.finished_at)
        values["duration_ms"] = record.duration_ms
        values["owner"] = None
        values["lease_until"] = None
        values["wake_at"] = self._sql.moment(wake_at) if wake_at is not None else None
        if pending is None:
            self._batch.finishes[record.execution_id] = values
        self._push()
        await self._pace()

    async def _pace(self) -> None:
        """Give the writer its turn when executions keep the event loop busy.

        An execution of instant blocks never suspends, so without this the writer could wait
        for the CPU indefinitely: past the window, a finishing execution yields once; past
        MAX_PENDING queued events, it waits for the commit. "Past the window" means several
        windows: the writer itself waits one window before it takes a batch.
        """
        if self._pushed - self._committed > MAX_PENDING:
            await self.flush()
        elif self._oldest and asyncio.get_running_loop().time() - self._oldest > self._overdue_s:
            await asyncio.sleep(0)

    # --- writing ---------------------------------------------------------------------------

    def _ports(self, ports: list[str] | None) -> str | None:
        if ports is None:
            return None
        key = tuple(ports)
        text = _PORTS.get(key)
        if text is None:
            text = _PORTS[key] = str(tables.encode(ports)) if len(_PORTS) < 1000 else None
        return text or str(tables.encode(ports))

    def _json(self, value: Any) -> str | None:
        if value is None:
            return None
        try:
            text = orjson.dumps(value).decode()
        except TypeError:
            text = str(tables.encode(value))
        return self._redact(text) if self._redact is not None else text

    def _push(self) -> None:
        if not self._oldest:
            self._oldest = asyncio.get_running_loop().time()
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
        task = self._task
        if task is None or task.done():
            raise Unavailable("the execution journal is not running")
        async with self._done:
            await self._done.wait_for(lambda: self._committed >= target or task.done())

    async def _writer(self) -> None:
        delay = 0.05
        while True:
            await self._wake.wait()
            if self._window_s and not self._closing:
                await asyncio.sleep(self._window_s)
            self._wake.clear()
            batch, self._batch = self._batch, _Batch()
            self._oldest = 0.0
            count = self._pushed
            if batch:
                while True:
                    try:
                        await self._write(batch)
                        delay = 0.05
                        break
                    except Unavailable as exc:
                        # keep the batch and try again: an accepted result is never dropped
                        log.warning("journal write failed, retrying in %.2fs: %s", delay, exc)
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, 5.0)
                    except Exception:
                        # a batch the database refuses for good is a bug, not an outage: log
                        # it and go on, so one bad row cannot stop all persistence
                        log.exception("journal batch refused by the database; it is dropped")
                        break
                self.batches += 1
                self._maybe_checkpoint()
            async with self._done:
                self._committed = count
                self._done.notify_all()
            if self._closing and not self._batch:
                return

    async def _write(self, batch: _Batch) -> None:
        node_rows, large_rows = self._place_nodes(batch)
        sql = self._sql
        documents = [{"hash": k, "document": v} for k, v in batch.documents.items()]
        steps = [
            (sql.insert_document, documents),
            (sql.insert_execution, list(batch.creates.values())),
            (sql.start_execution, list(batch.starts.values())),
            (sql.upsert_node, node_rows),
            (sql.upsert_large, large_rows),
            (sql.upsert_attempt, list(batch.attempts.values())),
            (sql.finish_execution, list(batch.finishes.values())),
        ]
        steps = [(statement, rows) for statement, rows in steps if rows]
        if self._db.is_sqlite:
            async with self._db.writing():
                self._write_sqlite(steps)
            return
        async with self._db.write() as conn:
            for statement, rows in steps:
                await sql.run_async(conn, statement, rows)

    def _maybe_checkpoint(self) -> None:
        """Start a WAL checkpoint in a thread, at most once a second and one at a time.

        SQLite's own auto-checkpoint would run inside a commit on the event loop's thread,
        copying pages and syncing the file while every execution waits.
        """
        if not self._db.is_sqlite or (self._checkpoint and not self._checkpoint.done()):
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

    def _write_sqlite(self, steps: list[tuple[statements.Statement, list[Any]]]) -> None:
        """One SQLite transaction, synchronously on the event loop's own thread.

        SQLite is in-process and, in WAL mode with synchronous=NORMAL, a commit is an append to
        the WAL with no fsync: a batch of hundreds of executions takes about a millisecond.
        Handing it to a thread instead costs a GIL hand-off per SQLite call, and when
        executions keep the event loop busy those hand-offs starve the writer (decision 0004).
        """
        try:
            with self._db.sync_engine.connect() as conn:
                immediate = conn.execution_options(conv3n_immediate=True)
                with immediate.begin():
                    for statement, rows in steps:
                        self._sql.run(immediate, statement, rows)
        except (OperationalError, InterfaceError) as exc:
            raise Unavailable(f"the database is unavailable: {exc.orig or exc}") from exc

    def _place_nodes(self, batch: _Batch) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Put the node records of executions that finish in this batch on their execution row
        (one JSON value); the rest become node_results rows."""
        rows: list[dict[str, Any]] = []
        large: list[dict[str, Any]] = []
        for execution_id, nodes in batch.nodes.items():
            final = batch.finishes.get(execution_id) or batch.creates.get(execution_id)
            if final is not None and final.get("finished_at") is not None:
                text = self._json_records(nodes)
                if len(text) <= self._max_result_bytes:
                    final["nodes"] = text
                    continue
            for node_id, record in nodes.items():
                rows.append(self._node_row(execution_id, node_id, record, large))
        return rows, large

    def _json_records(self, nodes: dict[str, NodeRecord]) -> str:
        text = orjson.dumps(nodes, default=_model_default).decode()
        return self._redact(text) if self._redact is not None else text

    def _node_row(
        self, execution_id: str, node_id: str, record: NodeRecord, large: list[dict[str, Any]]
    ) -> dict[str, Any]:
        data = self._json(record.data)
        size = len(data) if data is not None else 0
        external = size > self._max_result_bytes
        if external:
            large.append({"execution_id": execution_id, "node_id": node_id, "data": data})
        error = record.error
        return {
            "execution_id": execution_id,
            "node_id": node_id,
            "status": record.status.value,
            "data": None if external else data,
            "data_bytes": size,
            "data_external": external,
            "error": self._json(error.model_dump()) if error is not None else None,
            "ports": self._ports(record.ports),
            "effects": self._json(record.effects),
            "attempts": record.attempts,
            "started_at": self._sql.moment(record.started_at),
            "finished_at": self._sql.moment(record.finished_at),
            "duration_ms": record.duration_ms,
        }


def _model_default(value: Any) -> Any:
    """orjson's fallback: pydantic models (ErrorInfo) as plain dicts."""
    dump = getattr(value, "model_dump", None)
    if dump is None:
        raise TypeError(f"{type(value).__name__} is not JSON")
    return dump()
