"""`Database`: the async SQLAlchemy engine, dialect differences, and error translation.

SQLite (the default) runs in WAL mode with a busy timeout; writes in this process go one at a
time through `write()` (which also begins SQLite transactions IMMEDIATE, so two processes never
deadlock upgrading a read lock). PostgreSQL uses psycopg 3, MariaDB/MySQL aiomysql.
"""

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from conv3n.errors import InvalidInput, Unavailable

_SYNC_DRIVERS = {
    "sqlite+aiosqlite": "sqlite+pysqlite",
    "postgresql+psycopg": "postgresql+psycopg",
    "mysql+aiomysql": "mysql+pymysql",
}
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+aiomysql",
    "mariadb": "mysql+aiomysql",
}


def async_url(url: str) -> str:
    """A user's database URL with the async driver conv3n uses for its dialect.

    Raises:
        InvalidInput: the URL names no supported database.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several kinds here
        raise InvalidInput(f"not a database URL: {url!r} ({exc})") from None
    backend = parsed.get_backend_name()
    driver = _DRIVERS.get(backend)
    if driver is None:
        raise InvalidInput(f"unsupported database {backend!r}: use sqlite, postgresql or mysql")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def sqlite_url(path: Path) -> str:
    """The URL of a SQLite file."""
    return f"sqlite:///{path}"


class Database:
    """One database, shared by every part of a process.

    Attributes:
        url: the async URL in use.
        dialect: `sqlite`, `postgresql` or `mysql`.
    """

    def __init__(self, url: str, *, pool_size: int = 10):
        self.url = async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        options: dict[str, Any] = {}
        if self.dialect == "sqlite":
            path = make_url(self.url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": 30}
        else:
            options.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
            if self.dialect == "mysql":
                options["pool_recycle"] = 3600
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        self._options = options
        self._sync: Engine | None = None
        self._write_lock = asyncio.Lock()
        self._checkpoint_lock = threading.Lock()
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine.sync_engine)

    @property
    def sync_engine(self) -> Engine:
        """A synchronous engine on the same database: the journal's inline SQLite writer (on
        the event loop's thread) and WAL checkpoints (in a thread) use it."""
        if self._sync is None:
            url = make_url(self.url)
            sync_url = url.set(drivername=_SYNC_DRIVERS[url.drivername])
            options = dict(self._options)
            if self.dialect != "sqlite":
                options.update(pool_size=2, max_overflow=2)
            self._sync = create_engine(sync_url, **options)
            if self.dialect == "sqlite":
                # the journal checkpoints the WAL from a thread (`checkpoint()`), so a commit on
                # the event loop's thread never copies pages and fsyncs the database file
                _configure_sqlite(self._sync, autocheckpoint=False)
        return self._sync

    def checkpoint(self, mode: Literal["PASSIVE", "TRUNCATE"] = "PASSIVE") -> None:
        """Copy the SQLite WAL into the database file: PASSIVE never blocks writers; TRUNCATE
        waits for them and empties the WAL file (retention, to shrink the files).

        Blocking: run it in a thread (SQLite releases the GIL while it copies and syncs). One
        checkpoint runs at a time: a second one would find the first holding SQLite's
        checkpoint lock and give up without a word.
        """
        with self._checkpoint_lock, self.sync_engine.connect() as conn:
            conn.exec_driver_sql(f"PRAGMA wal_checkpoint({mode})")

    @property
    def sqlite_path(self) -> str | None:
        """The file of a SQLite database (None for an in-memory one, or another database)."""
        if not self.is_sqlite:
            return None
        path = make_url(self.url).database
        return path if path and path != ":memory:" and not path.startswith("file:") else None

    @property
    def is_sqlite(self) -> bool:
        """Whether this is the embedded SQLite database."""
        return self.dialect == "sqlite"

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for queries (no transaction is committed).

        Raises:
            Unavailable: the database cannot be reached (or the connection dropped).
        """
        conn = await self._connect()
        try:
            yield conn
        except DBAPIError as exc:
            raise translate(exc) from exc
        finally:
            await conn.close()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction, committed on success; one writer at a time in this process.

        Raises:
            Unavailable: the database cannot be reached (or the connection dropped).
        """
        async with self._write_lock:
            conn = await self._connect()
            try:
                if self.is_sqlite:
                    conn = await conn.execution_options(conv3n_immediate=True)
                async with conn.begin():
                    yield conn
            except DBAPIError as exc:
                raise translate(exc) from exc
            finally:
                await conn.close()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """This process's write turn, for writers that use `sync_engine` themselves."""
        async with self._write_lock:
            yield

    def write_turn_taken(self) -> bool:
        """Whether a writer of this process holds (or is being handed) the write turn."""
        return self._write_lock.locked()

    async def _connect(self) -> AsyncConnection:
        try:
            return await self.engine.connect()
        except (DBAPIError, OSError) as exc:
            reason = _reason(exc) if isinstance(exc, DBAPIError) else str(exc)
            raise Unavailable(f"the database is unavailable: {reason}") from exc

    @contextlib.asynccontextmanager
    async def exclusive_driver_connection(self) -> AsyncIterator[Any]:
        """The driver's own connection (aiosqlite, psycopg, ...), holding this process's write
        lock: for statements that must run outside a transaction (SQLite maintenance)."""
        async with self._write_lock:
            conn = await self._connect()
            try:
                raw = await conn.get_raw_connection()
                yield raw.driver_connection
            finally:
                await conn.close()

    async def ping(self) -> bool:
        """Whether a trivial query succeeds."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (DBAPIError, OSError):
            return False
        return True

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self._sync is not None:
            self._sync.dispose()
            self._sync = None


def _configure_sqlite(engine: Engine, *, autocheckpoint: bool = True) -> None:
    """WAL, a busy timeout, foreign keys, and explicit BEGIN (IMMEDIATE for writes).

    Without `autocheckpoint`, commits never checkpoint the WAL; the caller does.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # only takes effect on a new, empty file: retention can then shrink it
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("conv3n_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def translate(exc: DBAPIError) -> Exception:
    """A dropped connection becomes Unavailable; other database errors stay as they are."""
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return Unavailable(f"the database is unavailable: {_reason(exc)}")
    return exc


def _reason(exc: DBAPIError) -> str:
    original = getattr(exc, "orig", None)
    return str(original or exc).splitlines()[0][:300]
