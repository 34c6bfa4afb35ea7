"""Migrations: every table exists after upgrade, a second upgrade does nothing."""

from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from conv3n.storage import Database, schema, tables


async def test_upgrade_creates_every_table_and_is_idempotent(database_url):
    db = Database(database_url)
    try:
        assert await schema.current_revision(db) is None
        assert await schema.upgrade(db) is True
        assert await schema.current_revision(db) == schema.HEAD
        assert await schema.upgrade(db) is False
        async with db.read() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert set(tables.metadata.tables) <= names
    finally:
        await db.close()


async def test_migration_head_matches_the_scripts():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from conv3n.storage import migrations

    config = Config()
    config.set_main_option("script_location", str(migrations.LOCATION))
    assert ScriptDirectory.from_config(config).get_current_head() == schema.HEAD


async def test_sqlite_runs_in_wal_mode_with_incremental_vacuum(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        await schema.upgrade(db)
        async with db.read() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            vacuum = (await conn.exec_driver_sql("PRAGMA auto_vacuum")).scalar()
        assert mode == "wal"
        assert vacuum == 2  # incremental
    finally:
        await db.close()


def alembic_upgrade(connection: Any, revision: str) -> None:
    """Alembic's own `upgrade` to `revision` on a synchronous connection."""
    from alembic import command
    from alembic.config import Config

    from conv3n.storage import migrations

    config = Config()
    config.set_main_option("script_location", str(migrations.LOCATION))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def test_the_migrations_build_exactly_the_tables_of_tables_py(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.begin() as conn:
        alembic_upgrade(conn, "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), tables.metadata) == []
    engine.dispose()


def _schema_of(path: Path) -> dict[str, Any]:
    """Every table's columns (name, type, nullable, default), keys and indexes."""
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            found = inspect(conn)
            return {
                name: {
                    "columns": [
                        (c["name"], str(c["type"]), c["nullable"], c["default"])
                        for c in found.get_columns(name)
                    ],
                    "primary": found.get_pk_constraint(name)["constrained_columns"],
                    "foreign": [
                        (f["constrained_columns"], f["referred_table"], f["referred_columns"])
                        for f in found.get_foreign_keys(name)
                    ],
                    "indexes": sorted(
                        (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                        for i in found.get_indexes(name)
                    ),
                }
                for name in found.get_table_names()
            }
    finally:
        engine.dispose()


async def test_a_new_sqlite_file_gets_the_same_schema_without_replaying_migrations(tmp_path):
    from sqlalchemy import create_engine

    migrated = tmp_path / "migrated.db"
    engine = create_engine(f"sqlite:///{migrated}")
    with engine.begin() as conn:
        alembic_upgrade(conn, "head")
    engine.dispose()

    fresh = tmp_path / "fresh.db"
    db = Database(f"sqlite:///{fresh}")
    try:
        assert await schema.upgrade(db) is True
        assert await schema.current_revision(db) == schema.HEAD
        assert await schema.upgrade(db) is False
    finally:
        await db.close()
    assert _schema_of(fresh) == _schema_of(migrated)


async def test_a_sqlite_file_with_other_tables_is_migrated_by_alembic(tmp_path):
    import sqlite3

    path = tmp_path / "shared.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE notes (text TEXT)")
    db = Database(f"sqlite:///{path}")
    try:
        assert await schema.upgrade(db) is True
        assert await schema.current_revision(db) == schema.HEAD
    finally:
        await db.close()
    assert set(tables.metadata.tables) | {"notes", "alembic_version"} == set(_schema_of(path))


async def test_a_database_at_the_first_revision_is_upgraded_to_the_head(database_url):
    db = Database(database_url)
    try:
        async with db.write() as conn:
            await conn.run_sync(alembic_upgrade, "0001")
        assert await schema.current_revision(db) == "0001"
        assert await schema.upgrade(db) is True
        assert await schema.current_revision(db) == schema.HEAD
        async with db.read() as conn:
            indexes = await conn.run_sync(
                lambda sync: {i["name"] for i in inspect(sync).get_indexes("executions")}
            )
        assert "ix_executions_workflow_id" not in indexes
        assert "ix_executions_workflow_created" in indexes
    finally:
        await db.close()
