"""URLs and connection pools of std/database: which async driver serves a URL, and one pooled
AsyncEngine per distinct URL (the block keeps it in `ctx.shared`; the engine disposes of it).
"""

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

# The async driver behind every accepted URL scheme.
DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "mysql": "mysql+aiomysql",
    "mysql+aiomysql": "mysql+aiomysql",
    "mariadb": "mariadb+aiomysql",
    "mariadb+aiomysql": "mariadb+aiomysql",
}
POOL_SIZE = 5
POOL_OVERFLOW = 15
POOL_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10
IDLE_PING_S = 10.0
SCHEMES = "sqlite:///path, postgresql://..., mysql://... or mariadb://..."


def parse_url(text: str) -> "URL":
    """The URL with its async driver (ValueError, never showing the password, when it is bad)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(text.strip())
    except (ArgumentError, ValueError, TypeError):
        raise ValueError(f"not a database URL: use {SCHEMES}") from None
    driver = DRIVERS.get(url.drivername.lower())
    if driver is None:
        scheme = url.drivername.split("+")[0]
        raise ValueError(f"unknown database {scheme!r}: use {SCHEMES}")
    if not driver.startswith("sqlite") and not url.host:
        raise ValueError("the URL names no host")
    return url.set(drivername=driver)


def mask(text: str) -> str:
    """`text` (a URL) with its password replaced by `***`."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(text.strip()).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - anything unparsable is shown as nothing at all
        return "(unparsable URL)"


def create_engine(url: "URL") -> "AsyncEngine":
    from sqlalchemy import event
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import AsyncAdaptedQueuePool

    options: dict[str, Any] = {
        "poolclass": AsyncAdaptedQueuePool,
        "pool_size": POOL_SIZE,
        "max_overflow": POOL_OVERFLOW,
        "pool_timeout": POOL_TIMEOUT_S,
        "pool_recycle": 1800,
    }
    sqlite = url.drivername.startswith("sqlite")
    if sqlite:
        options["connect_args"] = {"timeout": POOL_TIMEOUT_S}
        if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
            # One connection is the whole database: it is never recycled, and callers queue.
            options.update(pool_size=1, max_overflow=0, pool_recycle=-1, pool_timeout=60.0)
    else:
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    engine = create_async_engine(url, **options)
    if sqlite:
        # pysqlite's own transaction handling skips DDL; BEGIN ourselves so that every
        # transaction, DDL included, is all or nothing (the SQLAlchemy documentation's recipe).
        @event.listens_for(engine.sync_engine, "connect")
        def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN")

    else:
        _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: "AsyncEngine") -> None:
    """Check a connection that sat idle in the pool before handing it out (the server may have
    closed it); a busy pool skips the round trip that `pool_pre_ping` would spend on every
    checkout. A failed ping makes the pool connect afresh (SQLAlchemy's checkout recipe)."""
    from sqlalchemy import event
    from sqlalchemy.exc import DisconnectionError

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["conv3n_idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("conv3n_idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_S:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        except Exception:  # noqa: BLE001 - whatever the driver raises, the connection is gone
            raise DisconnectionError("idle connection failed its ping") from None
