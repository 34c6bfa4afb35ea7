"""Alembic environment: runs on the connection conv3n hands over (see storage/schema.py)."""

from alembic import context

from conv3n.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `conv3n db upgrade`")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
