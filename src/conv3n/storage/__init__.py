"""Storage on SQLAlchemy 2 Core + Alembic: SQLite (default), PostgreSQL, MariaDB/MySQL.

All SQL lives in this package. Repository modules (`workflows`, `executions`, `secrets`,
`retention`, `triggers`) take a `Database` and return `conv3n.model` types; `StoreJournal` is
the engine's Journal on a database.
"""

from conv3n.storage import executions, retention, schema, secrets, tables, triggers, workflows
from conv3n.storage.database import Database, async_url, sqlite_url
from conv3n.storage.journal import DEFAULT_MAX_RESULT_BYTES, StoreJournal
from conv3n.storage.retention import RetentionPolicy

__all__ = [
    "DEFAULT_MAX_RESULT_BYTES",
    "Database",
    "RetentionPolicy",
    "StoreJournal",
    "async_url",
    "executions",
    "retention",
    "schema",
    "secrets",
    "sqlite_url",
    "tables",
    "triggers",
    "workflows",
]
