"""`StoreJournal`: the engine's Journal on a database, with group commit.

Events are queued as the engine reports them and written in batches: every event that
arrives within a short window goes into the next transaction, so concurrent executions share
transactions and persistence stays cheap. A crash loses at most the results of that window,
whose nodes re-run on resume (at-least-once). Reads that must see an execution's latest state
call `flush()` first.

Who commits: on a SQLite file, a writer process of the server's own (`sqlite_process.py`,
decision 0011), or the event loop's thread (`sqlite_inline.py`); PostgreSQL and MariaDB, a
writer task through their async drivers. Rows are encoded once here (JSON text, UTC
datetimes) for statements SQLAlchemy compiles once per dialect (`statements.py`): this is the
hot path of every stored execution.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from conv3n.errors import Unavailable
from conv3n.model import ErrorInfo, ExecutionRecord, NodeRecord
from conv3n.storage import statements, tables
from conv3n.storage.database import Database
from conv3n.storage.sqlite_inline import BUSY_TIMEOUT_S, InlineWriter
from conv3n.storage.sqlite_process import ProcessWriter

log = logging.getLogger("conv3n.storage")

DEFAULT_MAX_RESULT_BYTES = 1024 * 1024
"""Node results larger than this (as JSON) go to the side table; listings show a marker."""
DEFAULT_WINDOW_S = 0.002
"""How long the writer gathers events before it commits (the group-commit window)."""
MAX_PENDING = 5_000
"""Events not yet committed past which a finishing execution waits for the writer (bounds
memory and the results a crash can lose when executions keep the CPU busy)."""
MAX_UNACKNOWLEDGED = 20_000
"""With the SQLite writer process: events handed to it and not yet acknowledged past which a
finishing execution waits. A batch in the writer's channel (1 MiB, `sqlite_process`) is
committed even when this process dies; only one still waiting in this process's transport,
when the writer falls behind, is lost with it. So this bounds that and the memory of the
batches kept for a new child. It is larger than MAX_PENDING because acknowledgements are read
by the event loop, which a busy server turns only every few tens of milliseconds: at 50
connections on workflow (b), 2,500-5,000 events were always in flight, and one finishing
execution in ten waited 80 ms for acknowledgements with MAX_PENDING as the bound
(2026-12-04)."""


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
        sqlite_writer: Literal["process", "inline"] = "process",
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ):
        self._db = db
        self._max_result_bytes = max_result_bytes
        self._redact = redact
        self._window_s = window_s
        self._sqlite_writer = sqlite_writer
        # the writer is overdue (starved of the CPU) once a batch is several windows old
        self._overdue_s = max(window_s * 5, 0.01)
        self._batch = _Batch()
        self._pushed = 0
        self._committed = 0
        self._wake = asyncio.Event()
        self._flushes: list[tuple[int, asyncio.Future[None]]] = []
        self._writing = False
        self._inline_failed = False
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._oldest = 0.0
        self._sql = statements.Statements(db)
        self._inline = (
            InlineWriter(db, self._sql, busy_timeout_s=busy_timeout_s) if db.is_sqlite else None
        )
        self._process: ProcessWriter | None = None
        self.batches = 0
        """Transactions committed so far (benchmarks and tests read it)."""

    async def start(self) -> None:
        """Start the writer task (and, on a SQLite file, the writer process)."""
        if self._task is not None:
            return
        self._closing = False
        self._wake.clear()
        path = self._db.sqlite_path
        if path is not None and self._sqlite_writer == "process" and self._process is None:
            process = ProcessWriter(path, self._acknowledged)
            try:
                await process.start()
                self._process = process
            except Unavailable as exc:
                log.warning("%s; writing SQLite on the event loop's thread instead", exc)
        self._task = asyncio.create_task(self._writer(), name="conv3n-journal-writer")
        self._task.add_done_callback(self._writer_stopped)

    async def close(self) -> None:
        """Write everything queued, then stop the writer."""
        if self._task is None:
            return
        await self.flush()
        self._closing = True
        self._wake.set()
        await self._task
        self._task = None
        if self._process is not None:
            await self._process.close()
            self._process = None
        if self._inline is not None:
            await self._inline.close()

    @property
    def gathering(self) -> bool:
        """Whether events wait in the batch being gathered, not yet handed to a writer."""
        return bool(self._batch)

    @property
    def writer_pid(self) -> int | None:
        """The process id of the SQLite writer process, when there is one."""
        return self._process.pid if self._process is not None else None

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

    def node_started(
        self, execution_id: str, node_id: str, attempt: int, started_at: datetime
    ) -> None:
        """Nothing is stored when a node starts (its result is stored when it finishes)."""

    def attempt_failed(
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

    def node_finished(self, execution_id: str, node_id: str, record: NodeRecord) -> None:
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
        """Keep the batch moving when executions keep the event loop busy.

        An execution of instant blocks never suspends, so the writer task could wait for the
        CPU indefinitely. On SQLite, a finishing execution that finds the batch a window old
        hands it to the writer process (or, inline, writes it itself, as the writer task
        would on this same thread). Otherwise, past several windows it yields once, and past
        MAX_PENDING uncommitted events it waits for the commit; with the writer process, past
        MAX_UNACKNOWLEDGED events handed to it, for the older half of them.
        """
        if not self._oldest:
            return
        age = asyncio.get_running_loop().time() - self._oldest
        written = age >= self._window_s and self._may_write_now()
        if written:
            self._write_now()
        if self._process is not None:
            if self._pushed - self._committed > MAX_UNACKNOWLEDGED:
                # its answers come in order: wait for the older half, not for the newest
                # batch, which is still gathering its window
                await self._committed_up_to(self._pushed - MAX_UNACKNOWLEDGED // 2)
        elif written:
            return
        elif self._pushed - self._committed > MAX_PENDING:
            await self.flush()
        elif age > self._overdue_s:
            await asyncio.sleep(0)

    def _may_write_now(self) -> bool:
        """Whether a caller may write the batch now: to the writer process (it keeps the
        order) or, inline, when no batch of the writer task is in flight (batches commit in
        order), nobody else has the write turn, and the last inline write did not find the
        database unavailable (the writer task retries, with backoff)."""
        if self._task is None:
            return False
        if self._process is not None:
            return True
        return (
            self._inline is not None
            and not self._writing
            and not self._inline_failed
            and not self._db.write_turn_taken()
        )

    def _write_now(self) -> None:
        oldest = self._oldest
        batch, count = self._take()
        if self._process is not None:
            self._process.send(self._steps(batch), count)
            return
        try:
            if self._inline is None:  # `_may_write_now` is false: never happens
                raise Unavailable("only SQLite is written by the caller")
            self._inline.write(self._steps(batch))
        except Unavailable as exc:
            # give the batch back (nothing was queued since it was taken) for the writer
            log.warning("journal write failed, the writer retries it: %s", exc)
            self._batch, self._oldest = batch, oldest
            self._inline_failed = True
            self._wake.set()
            return
        except Exception:
            log.exception("journal batch refused by the database; it is dropped")
        self._acknowledged(count)

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
        self._pushed += 1
        if not self._oldest:
            self._oldest = asyncio.get_running_loop().time()
            self._wake.set()

    def _take(self) -> tuple[_Batch, int]:
        """The batch to write next (a new one starts) and the events it completes."""
        batch, self._batch = self._batch, _Batch()
        self._oldest = 0.0
        self._wake.clear()
        return batch, self._pushed

    def _acknowledged(self, count: int) -> None:
        """A batch that completes the events up to `count` is committed."""
        self.batches += 1
        self._mark_committed(count)

    def _mark_committed(self, count: int) -> None:
        """Every event up to `count` is written: wake the `flush()` calls waiting for them."""
        self._committed = count
        waiting = self._flushes
        if waiting and any(target <= count for target, _ in waiting):  # not sorted by target
            self._flushes = [(target, f) for target, f in waiting if target > count]
            for target, future in waiting:
                if target <= count and not future.done():
                    future.set_result(None)

    def _writer_stopped(self, _task: "asyncio.Task[None]") -> None:
        for _target, future in self._flushes:
            if not future.done():
                future.set_result(None)
        self._flushes = []

    async def flush(self) -> None:
        """Wait until every event queued so far is committed.

        Raises:
            Unavailable: the writer is not running.
        """
        await self._committed_up_to(self._pushed)

    async def _committed_up_to(self, target: int) -> None:
        if self._committed >= target:
            return
        task = self._task
        if task is None or task.done():
            raise Unavailable("the execution journal is not running")
        future = asyncio.get_running_loop().create_future()
        self._flushes.append((target, future))
        await future

    async def _writer(self) -> None:
        delay = 0.05
        while True:
            await self._wake.wait()
            if self._window_s and not self._closing and self._inline is None:
                # a server database: each commit is a round trip through the async driver,
                # so a full window after the last one makes batches as large as they get
                await asyncio.sleep(self._window_s)
            while self._window_s and self._oldest and not self._closing:
                # the window runs from the batch's first event, not from when the writer got
                # the CPU: a writer that was kept waiting takes the batch at once (and one
                # that a finishing execution wrote meanwhile waits for the next one's window)
                wait = self._oldest + self._window_s - asyncio.get_running_loop().time()
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self._process is not None:
                if self._batch:  # committed when the process acknowledges it
                    self._write_now()
                else:
                    self._wake.clear()
            else:
                batch, count = self._take()
                if batch:
                    self._writing = True
                    try:
                        delay = await self._write_until_done(batch, delay)
                    finally:
                        self._writing = False
                    self._inline_failed = False
                    self.batches += 1
                self._mark_committed(count)
            if self._closing and not self._batch:
                return

    async def _write_until_done(self, batch: _Batch, delay: float) -> float:
        """Write `batch`, retrying while the database is unavailable; the next retry delay."""
        while True:
            try:
                await self._write(batch)
                return 0.05
            except Unavailable as exc:
                # keep the batch and try again: an accepted result is never dropped
                log.warning("journal write failed, retrying in %.2fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:
                # a batch the database refuses for good is a bug, not an outage: log it and go
                # on, so one bad row cannot stop all persistence
                log.exception("journal batch refused by the database; it is dropped")
                return delay

    def _steps(self, batch: _Batch) -> list[tuple[statements.Statement, list[Any]]]:
        """The statements that write `batch`, in order, each with its rows."""
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
        return [(statement, rows) for statement, rows in steps if rows]

    async def _write(self, batch: _Batch) -> None:
        steps = self._steps(batch)
        if self._inline is not None:
            async with self._db.writing():
                self._inline.write(steps)
            return
        async with self._db.write() as conn:
            for statement, rows in steps:
                await self._sql.run_async(conn, statement, rows)

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
