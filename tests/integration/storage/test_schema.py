"""Migrations: every table exists after upgrade, a second upgrade does nothing."""

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


def test_the_migrations_build_exactly_the_tables_of_tables_py(tmp_path):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from conv3n.storage import migrations

    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(migrations.LOCATION))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), tables.metadata) == []
    engine.dispose()
