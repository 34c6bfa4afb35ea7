"""Every table conv3n stores, on one MetaData (SQLAlchemy Core; SQLite, PostgreSQL, MariaDB).

JSON values are stored as text (`JSONText`): one encoding on every dialect, and the engine's
records round-trip exactly. Times are timezone-aware UTC.
"""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Encoded(str):
    """JSON text encoded already (the journal encodes once to measure and redact)."""

    __slots__ = ()


def encode(value: Any) -> Encoded:
    """Compact JSON text of a value (orjson: the journal encodes every stored result)."""
    try:
        return Encoded(orjson.dumps(value).decode())
    except TypeError:
        # orjson refuses ints over 64 bits and non-str keys; the stdlib encoder does not
        return Encoded(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


class JSONText(TypeDecorator[Any]):
    """A JSON value kept as text (LONGTEXT on MariaDB, TEXT elsewhere)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import LONGTEXT

            return dialect.type_descriptor(LONGTEXT())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if type(value) is Encoded:
            return str(value)
        return str(encode(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return orjson.loads(value)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect (SQLite and MariaDB keep no zone)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import DATETIME

            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=dialect.name == "postgresql"))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


ID = String(64)

workflows = Table(
    "workflows",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(256)),
    Column("current_version", Integer, nullable=False),
    Column("active", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column("workflow_id", ID, ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("document", JSONText, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

executions = Table(
    "executions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("workflow_id", ID),  # looked up through ix_executions_workflow_created
    Column("workflow_version", Integer),
    Column("status", String(16), nullable=False),
    Column("mode", String(32), nullable=False),
    Column("input", JSONText),
    Column("output", JSONText),
    Column("error", JSONText),
    Column("response", JSONText),
    Column("nodes", JSONText),
    Column("document_hash", String(64)),
    Column("source", Text),
    Column("idempotency_key", String(255), unique=True),
    Column("parent_id", ID),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("duration_ms", Double),
    Column("wake_at", UTCDateTime),
    Column("owner", String(128)),
    Column("lease_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_executions_status_created", "status", "created_at"),
    Index("ix_executions_workflow_created", "workflow_id", "created_at"),
)
"""One row per execution. `wake_at` is the durable timer of a waiting one;
`document_hash` names the workflow document it ran (in `documents`);
`owner`/`lease_until` say which live process runs it (a resume only takes expired leases);
`nodes` holds the records of the nodes that finished in the same commit window as the
execution itself ({node id: record}), the others are rows of node_results."""

documents = Table(
    "documents",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("document", JSONText, nullable=False),
)
"""Workflow documents that executions ran, stored once per content (sha256 of the JSON text):
a resume or retry does not depend on the workflow still existing, and ten thousand executions
of one workflow keep one copy."""


def document_hash(text: str) -> str:
    """The key of a document's JSON text in `documents`."""
    return hashlib.sha256(text.encode()).hexdigest()


node_results = Table(
    "node_results",
    metadata,
    Column("execution_id", ID, ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True),
    Column("node_id", String(128), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("data", JSONText),
    Column("data_bytes", BigInteger, nullable=False, default=0),
    Column("data_external", Boolean, nullable=False, default=False),
    Column("error", JSONText),
    Column("ports", JSONText),
    Column("effects", JSONText),
    Column("attempts", Integer, nullable=False, default=0),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("duration_ms", Double),
)
"""The final record of each node. A result larger than the size cap lives in `large_results`
and `data_external` is set; listings show a marker instead of the data."""

node_attempts = Table(
    "node_attempts",
    metadata,
    Column("execution_id", ID, ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True),
    Column("node_id", String(128), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("error", JSONText),
    Column("retry_in_s", Double),
    Column("failed_at", UTCDateTime, nullable=False),
)
"""Every failed attempt that was retried (the final attempt is in node_results)."""

large_results = Table(
    "large_results",
    metadata,
    Column("execution_id", ID, ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True),
    Column("node_id", String(128), primary_key=True),
    Column("data", JSONText, nullable=False),
)

secrets = Table(  # nonce and ciphertext are base64 text: portable across drivers
    "secrets",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("nonce", String(32), nullable=False),
    Column("ciphertext", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

trigger_state = Table(
    "trigger_state",
    metadata,
    Column("workflow_id", ID, primary_key=True),
    Column("trigger_key", String(255), primary_key=True),
    Column("next_fire_at", UTCDateTime),
    Column("last_fire_at", UTCDateTime),
    Column("fire_count", BigInteger, nullable=False, default=0),
    Column("cursor", JSONText),
    Column("last_error", Text),
    Column("lease_owner", String(128)),
    Column("lease_until", UTCDateTime),
)
"""Scheduler and queue-trigger state: next fire time, cursors, and the lease that makes a
due time fire once across processes."""

webhook_inbox = Table(
    "webhook_inbox",
    metadata,
    Column("id", ID, primary_key=True),
    Column("path", String(255), nullable=False),
    Column("webhook_id", String(255)),
    Column("request", JSONText, nullable=False),
    Column("execution_id", ID),
    Column("response", JSONText),
    Column("received_at", UTCDateTime, nullable=False),
    Index("ix_webhook_inbox_dedupe", "path", "webhook_id", unique=True),
    Index("ix_webhook_inbox_received", "received_at"),
)
"""Accepted webhook requests, stored before they are answered; `webhook_id` de-duplicates."""

__all__ = [
    "document_hash",
    "documents",
    "executions",
    "large_results",
    "metadata",
    "node_attempts",
    "node_results",
    "secrets",
    "trigger_state",
    "webhook_inbox",
    "workflow_versions",
    "workflows",
]
