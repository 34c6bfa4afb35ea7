"""Schema upgrades: Alembic migrations run on conv3n's own connection (`conv3n db upgrade`).

`upgrade()` is cheap when the schema is current: it reads the revision without importing
Alembic, so a start-up on an up-to-date database costs one query.
"""

from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from conv3n.storage import migrations
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
    if await current_revision(db) == migrations.HEAD:
        return False
    async with db.write() as conn:
        await conn.run_sync(_alembic_upgrade)
    return True


def _alembic_upgrade(connection: Any) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations.LOCATION))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
