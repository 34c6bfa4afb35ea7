"""`ProcessWriter`: the journal's SQLite batches, committed by a writer process of their own.

SQLite work is C code that a Python thread cannot run beside the event loop (each call takes
the GIL back), so on the loop's thread it cost about a third of a stored execution: binding
parameters, b-tree inserts and writing WAL frames (system time on this kind of machine).
Handing each batch to a child process instead (`sqlite_child.py`) costs the server one orjson
call and one pipe write, and the commit runs on another core (decision 0011).

The protocol is in `sqlite_child.py`. Batches go down the pipe in order and are acknowledged in
order; every batch stays in memory until its acknowledgement, so when the child dies a new one
is started and is sent, again and in order, every batch not yet acknowledged. The statements
are idempotent for that (inserts skip rows that exist, the rest are upserts and updates).
"""

import asyncio
import contextlib
import logging
import socket
import struct
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from conv3n.errors import Unavailable
from conv3n.storage.statements import ROWS_PER_STATEMENT, Statement

log = logging.getLogger("conv3n.storage")

CHILD = Path(__file__).with_name("sqlite_child.py")
START_TIMEOUT_S = 15.0
CHECKPOINT_EVERY_S = 1.0
"""How often, at most, the child checkpoints the WAL into the database file."""
PIPE_BYTES = 1 << 20
"""The channel to the child holds this much (Linux's default pipe is 64 KiB; 1 MiB is the most
an unprivileged process may ask for). The server writes into it once per turn of its event
loop, which a saturated server takes every few tens of milliseconds: 64 KiB a turn is about
1 MB/s, less than the journal of workflow (b) at 800 executions/s (~7 MB/s), which then
backed up in the server's memory and held finishing executions back (2026-12-04). The child
sizes a pipe (`sqlite_child.py`; uvloop's pipe transports hide their descriptor); on uvloop,
which connects the child through a socket pair, the server raises its socket's send buffer."""
_F_GETPIPE_SZ = 1032
MAX_DEATHS = 3
"""A batch the child died on this many times running is dropped (and logged)."""


class ProcessWriter:
    """The writer process of one journal, and the batches it has not acknowledged yet.

    `on_committed(count)` is called, in order, once every event up to `count` is committed
    (or, for a batch the database refused for good, dropped and logged).
    """

    def __init__(self, path: str, on_committed: Callable[[int], None]):
        self._path = path
        self._on_committed = on_committed
        self._process: asyncio.subprocess.Process | None = None
        self._stdin: asyncio.StreamWriter | None = None
        self._stdout: asyncio.StreamReader | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: deque[tuple[int, bytes]] = deque()
        self._ids: dict[str, int] = {}
        self._definitions: dict[str, dict[str, Any]] = {}
        self._closing = False
        self._deaths = (0, 0)  # (the oldest unanswered batch, how often the child died on it)
        self.restarts = 0
        """How many times the child was started again after it died (tests read it)."""

    def buffer_bytes(self) -> int | None:
        """How many bytes the channel to the child holds, as the kernel reports them (a pipe's
        size, or a socket's send buffer); None while there is no child."""
        stdin = self._stdin
        if stdin is None:
            return None
        sock = stdin.get_extra_info("socket")
        if sock is not None:
            return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
        pipe = stdin.get_extra_info("pipe")
        if pipe is None:
            return None
        import fcntl

        return fcntl.fcntl(pipe.fileno(), _F_GETPIPE_SZ)

    @property
    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the child and wait until it has opened the database.

        Raises:
            Unavailable: it could not be started, or could not open the database.
        """
        self._closing = False
        await self._spawn()
        self._reader = asyncio.create_task(self._read(), name="conv3n-sqlite-writer")

    async def _spawn(self) -> None:
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",  # isolated from the environment and the current folder
                "-S",  # no site-packages: it needs the standard library only
                str(CHILD),
                self._path,
                str(CHECKPOINT_EVERY_S),
                str(PIPE_BYTES),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise Unavailable(f"the SQLite writer process could not start: {exc}") from exc
        stdin, stdout = process.stdin, process.stdout
        if stdin is None or stdout is None:  # both were asked for: never happens
            raise Unavailable("the SQLite writer process has no pipes")
        try:
            line = await asyncio.wait_for(stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        except BaseException:  # cancelled (the writer closes): the half-started child goes
            _abandon(process, stdin)
            raise
        if line.strip() != b"ready":
            _abandon(process, stdin)
            await process.wait()
            raise Unavailable(f"the SQLite writer process could not open {self._path}")
        _enlarge_send_buffer(stdin)
        self._process, self._stdin, self._stdout = process, stdin, stdout
        # what a new child needs before the batches it is sent again: every statement
        if self._definitions:
            self._write(_frame({"define": self._definitions}))
        for _count, frame in self._pending:
            self._write(frame)

    def send(self, steps: list[tuple[Statement, list[dict[str, Any]]]], count: int) -> None:
        """Queue one transaction of `steps` that completes the events up to `count`.

        Rows go as they are (one orjson call for the batch); the child binds them in its
        statements' parameter order, so that work is done on its core, not the server's.
        """
        frame = _frame({"batch": count, "steps": [[self._id(s), rows] for s, rows in steps]})
        self._pending.append((count, frame))
        self._write(frame)

    def _id(self, statement: Statement) -> int:
        number = self._ids.get(statement.sql)
        if number is None:
            number = self._ids[statement.sql] = len(self._ids)
            definition = {
                "sql": statement.sql,
                "names": statement.names,
                "rows": statement.rows_sql,
                "most": ROWS_PER_STATEMENT,
            }
            self._definitions[str(number)] = definition
            self._write(_frame({"define": {str(number): definition}}))
        return number

    def _write(self, frame: bytes) -> None:
        if self._stdin is not None and not self._stdin.is_closing():
            self._stdin.write(frame)

    async def _read(self) -> None:
        delay = 0.05
        while True:
            process, stdout = self._process, self._stdout
            if process is None or stdout is None:
                return
            while line := await stdout.readline():
                self._handle(line.decode(errors="replace").rstrip("\n"))
            code = await process.wait()
            self._process = self._stdin = self._stdout = None
            if self._closing:
                return
            log.warning(
                "the SQLite writer process exited (%s); starting it again, %d batches to resend",
                code,
                len(self._pending),
            )
            self._give_up_on_a_poison_batch()
            while self._process is None:
                try:
                    await self._spawn()
                    self.restarts += 1
                except Unavailable as exc:
                    log.warning("%s; retrying in %.2fs", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            delay = 0.05

    def _give_up_on_a_poison_batch(self) -> None:
        """Drop the oldest unanswered batch once the child has died MAX_DEATHS times while it
        was the oldest (a batch that kills the child would otherwise do so for ever)."""
        if not self._pending:
            return
        oldest = self._pending[0][0]
        deaths = self._deaths[1] + 1 if self._deaths[0] == oldest else 1
        self._deaths = (oldest, deaths)
        if deaths >= MAX_DEATHS:
            self._pending.popleft()
            log.error(
                "journal batch dropped: the SQLite writer process died %d times on it", deaths
            )
            self._on_committed(oldest)

    def _handle(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        if word == "ok" or word == "refused":
            text, _, message = rest.partition(" ")
            if not text.isdigit():
                log.warning("the SQLite writer process said: %s", line)
                return
            count = int(text)
            if word == "refused":
                log.error("journal batch refused by the database; it is dropped: %s", message)
            while self._pending and self._pending[0][0] <= count:
                self._pending.popleft()
            self._on_committed(count)
        elif word == "retry":
            log.warning("journal write failed, retrying: %s", rest)
        else:
            log.warning("the SQLite writer process said: %s", line)

    async def close(self) -> None:
        """Let the child finish what it was sent, and stop it."""
        self._closing = True
        process = self._process
        if process is not None and self._stdin is not None:
            self._stdin.close()
            try:
                await asyncio.wait_for(process.wait(), START_TIMEOUT_S)
            except TimeoutError:
                log.warning("the SQLite writer process did not stop; killing it")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._reader is not None:
            reader, self._reader = self._reader, None
            if process is None:  # it was starting a new child: stop that
                reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


def _enlarge_send_buffer(stdin: asyncio.StreamWriter) -> None:
    """uvloop connects the child's stdin through a socket pair, not a pipe: raise the send
    buffer of the server's end to PIPE_BYTES (the kernel caps it at net.core.wmem_max)."""
    sock = stdin.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIPE_BYTES)


def _abandon(process: asyncio.subprocess.Process, stdin: asyncio.StreamWriter) -> None:
    """Kill a child that did not start and close its pipe (left open, the pipe's transport
    would outlive the event loop)."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    stdin.close()


def _frame(document: Any) -> bytes:
    body = orjson.dumps(document)
    return struct.pack("<I", len(body)) + body
