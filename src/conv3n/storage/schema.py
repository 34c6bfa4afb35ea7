"""Schema upgrades: Alembic migrations run on conv3n's own connection (`conv3n db upgrade`).

`upgrade()` is cheap when the schema is current: it reads the revision without importing
Alembic, so a start-up on an up-to-date database costs one query. A brand-new SQLite file
(the first `conv3n serve` or `make run`) gets the head schema straight from `tables.py` and
is stamped with its revision, as Alembic's docs advise for new databases: importing Alembic
and replaying every migration would add about 200 ms and 11 MB to that first start.
tests/integration/storage/test_schema.py checks both paths build the same schema.
"""

from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from conv3n.storage import migrations, tables
from conv3n.storage.database import Database

HEAD = migrations.HEAD
"""The newest schema revision this version of conv3n knows."""


async def current_revision(db: Database) -> str | None:
    """The schema revision stored in the database (None for an empty one)."""
    try:
        async with db.read() as conn:
            row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
    except DBAPIError:
        return None
    return str(row[0]) if row else None


async def upgrade(db: Database) -> bool:
    """Bring the schema to the newest revision; True if anything was applied."""
    current = await current_revision(db)
    if current == migrations.HEAD:
        return False
    async with db.write() as conn:
        if current is None and db.is_sqlite and await conn.run_sync(_is_empty):
            await conn.run_sync(_create_head)
        else:
            await conn.run_sync(_alembic_upgrade)
    return True


def _is_empty(connection: Any) -> bool:
    return not inspect(connection).get_table_names()


def _create_head(connection: Any) -> None:
    """The newest schema on an empty database, stamped as Alembic would stamp it."""
    tables.metadata.create_all(connection)
    connection.exec_driver_sql(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
    )
    connection.execute(
        text("INSERT INTO alembic_version (version_num) VALUES (:head)"),
        {"head": migrations.HEAD},
    )


def _alembic_upgrade(connection: Any) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations.LOCATION))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
