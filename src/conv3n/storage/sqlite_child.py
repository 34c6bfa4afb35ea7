"""The SQLite writer process: commits the journal's batches outside the server's process.

Run as a script (`python -I -S sqlite_child.py DATABASE CHECKPOINT_EVERY_S PIPE_BYTES`),
never imported: it uses only the standard library, so it starts in about 20 ms and stays near
12 MB. `sqlite_process.py` is the other end, and describes the protocol:

- stdin: frames of a 4-byte little-endian length and a JSON document, either
  `{"define": {id: {"sql", "names", "rows", "most"}}}` (statements to refer to by id: their
  SQL, the row keys in parameter order, and for a multi-row INSERT the (head, one row's
  VALUES group, tail) to repeat, at most `most` rows a statement) or `{"batch": count,
  "steps": [[id, [row, ...]], ...]}` (one transaction; rows are objects by column name).
- stdout: one line per frame handled: `ready`, then `ok COUNT` when a batch is committed,
  `refused COUNT MESSAGE` when the database refused it for good (it is dropped, as a batch
  with a bug in it would be), and `retry MESSAGE` each time the database is unavailable (the
  batch is retried with backoff until it commits: an accepted result is never dropped).

At the end of stdin (the server closed it, or died) it finishes the batch in hand and exits.
When the server dies, what it had written into stdin is still committed (the answers go
nowhere), so the server bounds the batches it handed over apart (journal.MAX_UNACKNOWLEDGED).
It checkpoints the WAL (PASSIVE, in a thread of its own) after a commit at most every
CHECKPOINT_EVERY_S, so WAL pages are copied into the database file outside the server's
process.
"""

import contextlib
import fcntl
import json
import os
import signal
import sqlite3
import struct
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

# a database that is locked, full, read-only or gone may come back: retry; anything else in a
# batch (a constraint it breaks, a statement that does not fit the schema) never will
_TRANSIENT = ("locked", "busy", "disk", "full", "readonly", "read-only", "unable to open", "i/o")
BUSY_TIMEOUT_MS = 30_000
CACHE_KIB = 1024
"""Its page cache: inserts touch the right edge of each b-tree, a few pages."""
F_SETPIPE_SZ = 1031
MAX_BACKOFF_S = 5.0


def connect(path: str) -> sqlite3.Connection:
    """A connection with the pragmas of the server's own (`database._configure_sqlite`)."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
        "PRAGMA foreign_keys=ON",
        f"PRAGMA cache_size=-{CACHE_KIB}",
    ):
        connection.execute(pragma)
    return connection


def read_frame(stream: BinaryIO) -> Any:
    """The next frame's document, or None at the end of the stream."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack("<I", head)
    body = stream.read(size)
    if len(body) < size:
        return None
    return json.loads(body)


class Statements:
    """The statements the server defined, and the multi-row texts made from them."""

    def __init__(self) -> None:
        self._defined: dict[int, dict[str, Any]] = {}
        self._texts: dict[tuple[int, int], str] = {}

    def define(self, definitions: dict[str, dict[str, Any]]) -> None:
        self._defined.update({int(k): v for k, v in definitions.items()})

    def run(self, cursor: sqlite3.Cursor, number: int, rows: list[dict[str, Any]]) -> None:
        """The statement once per row: multi-row INSERTs of power-of-two sizes where it has
        them (so SQLite keeps a few prepared), executemany otherwise."""
        statement = self._defined[number]
        names = statement["names"]
        if statement["rows"] is None or len(rows) == 1:
            cursor.executemany(statement["sql"], [[row[n] for n in names] for row in rows])
            return
        start = 0
        while start < len(rows):
            left = len(rows) - start
            size = min(statement["most"], 1 << (left.bit_length() - 1))
            text = self._texts.get((number, size))
            if text is None:
                head, group, tail = statement["rows"]
                text = self._texts[number, size] = head + ", ".join([group] * size) + tail
            chunk = rows[start : start + size]
            start += size
            cursor.execute(text, [row[n] for row in chunk for n in names])


@contextlib.contextmanager
def immediate(connection: sqlite3.Connection) -> Iterator[sqlite3.Cursor]:
    """A write transaction (`BEGIN IMMEDIATE`), committed at the end, rolled back on any error.
    The server's inline writer uses it too (`sqlite_inline.py`)."""
    cursor = connection.cursor()
    cursor.execute("BEGIN IMMEDIATE")
    try:
        yield cursor
        cursor.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                cursor.execute("ROLLBACK")
        raise


def commit(connection: sqlite3.Connection, statements: Statements, steps: list[Any]) -> None:
    """One transaction with every step of a batch."""
    with immediate(connection) as cursor:
        for number, rows in steps:
            statements.run(cursor, number, rows)


def transient(exc: sqlite3.Error) -> bool:
    """Whether a failure may go away by itself (so the batch is retried, not dropped)."""
    if isinstance(exc, sqlite3.OperationalError | sqlite3.InterfaceError):
        return True
    text = str(exc).lower()
    return any(word in text for word in _TRANSIENT)


class _Listener:
    """Whether the server still reads the answers."""

    gone = False


def say(line: str) -> None:
    """One answer line; once the server is gone (its end of the pipe closed), nothing, and
    the batches still in stdin are committed all the same."""
    if _Listener.gone:
        return
    try:
        sys.stdout.write(line.replace("\n", " ") + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _Listener.gone = True
        # what is left in stdout's buffer would fail again at exit: it goes to /dev/null
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def serve(path: str, stream: BinaryIO, checkpoint_every_s: float) -> None:
    connection: sqlite3.Connection | None = connect(path)
    statements = Statements()
    checkpoints = Checkpoints(path)
    checkpointed_at = time.monotonic()
    say("ready")
    while (frame := read_frame(stream)) is not None:
        if "define" in frame:
            statements.define(frame["define"])
            continue
        count, steps = frame["batch"], frame["steps"]
        delay = 0.05
        while True:
            try:
                if connection is None:
                    connection = connect(path)
                commit(connection, statements, steps)
                say(f"ok {count}")
                if time.monotonic() - checkpointed_at >= checkpoint_every_s:
                    checkpoints.due.set()
                    checkpointed_at = time.monotonic()
                break
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                # a frame that does not fit its statements: a bug on the other end
                say(f"refused {count} {type(exc).__name__}: {exc}")
                break
            except sqlite3.Error as exc:
                if not transient(exc):
                    say(f"refused {count} {type(exc).__name__}: {exc}")
                    break
                say(f"retry {type(exc).__name__}: {exc}")
                time.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
                if connection is not None:  # start again on a new connection
                    connection.close()
                    connection = None
    if connection is not None:
        connection.close()
    checkpoints.stop()


class Checkpoints:
    """A thread that checkpoints the WAL (PASSIVE: it never waits for anyone) when told to, on
    its own connection: copying pages and syncing the file take tens of milliseconds here,
    and commits go on meanwhile (SQLite releases the GIL while it works)."""

    def __init__(self, path: str):
        self.due = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self._thread.start()

    def _run(self, path: str) -> None:
        connection: sqlite3.Connection | None = None
        while True:
            self.due.wait()
            self.due.clear()
            if self._stopping:
                break
            try:
                connection = connection or connect(path)
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                say(f"warning checkpoint failed (retried later): {exc}")
                connection = None
        if connection is not None:
            connection.close()

    def stop(self) -> None:
        self._stopping = True
        self.due.set()
        self._thread.join()


def main() -> None:
    # the server shuts down by itself and closes stdin; signals sent to its whole process
    # group (Ctrl-C, systemd's SIGTERM) must not cut a batch short here
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # the size the server asks for its channel (sqlite_process.PIPE_BYTES), when that is a
    # pipe: larger than Linux allows, or a socket (uvloop's), and it stays as it is
    with contextlib.suppress(OSError, IndexError, ValueError):
        fcntl.fcntl(sys.stdin.fileno(), F_SETPIPE_SZ, int(sys.argv[3]))
    serve(sys.argv[1], sys.stdin.buffer, float(sys.argv[2]))


if __name__ == "__main__":
    main()
