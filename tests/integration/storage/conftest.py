"""Databases for the storage suite: each test runs on SQLite, PostgreSQL and MariaDB.

PostgreSQL tests get a fresh schema and MariaDB tests a fresh database, dropped afterwards;
a missing server skips locally and fails in CI (tests/conftest.require_service).
"""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conv3n.runtime import Settings
from conv3n.runtime.service import Runtime
from conv3n.storage import Database, schema
from tests.conftest import require_service

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
MARIADB_ADMIN = "mysql://root@127.0.0.1:3306/test"


async def _admin(url: str, statement: str) -> None:
    db = Database(url)
    try:
        async with db.write() as conn:
            await conn.exec_driver_sql(statement)
    finally:
        await db.close()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL of an empty database of each kind."""
    name = f"conv3n_t_{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'conv3n.db'}"
    elif request.param == "postgresql":
        require_service("PostgreSQL", "127.0.0.1", 5432)
        await _admin(PG_ADMIN, f"CREATE SCHEMA {name}")
        yield f"{PG_ADMIN}?options=-csearch_path%3D{name}"
        await _admin(PG_ADMIN, f"DROP SCHEMA {name} CASCADE")
    else:
        require_service("MariaDB", "127.0.0.1", 3306)
        await _admin(MARIADB_ADMIN, f"CREATE DATABASE {name}")
        yield f"mysql://root@127.0.0.1:3306/{name}"
        await _admin(MARIADB_ADMIN, f"DROP DATABASE {name}")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database."""
    database = Database(database_url)
    await schema.upgrade(database)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test database and a temporary data dir."""
    return Settings.from_env({"CONV3N_DATA_DIR": str(tmp_path / "data")}, database_url=database_url)


@pytest.fixture
async def runtime(settings: Settings, database_url: str) -> AsyncIterator[Runtime]:
    """An open Runtime on the test database (schema upgraded first for server databases)."""
    database = Database(database_url)
    await schema.upgrade(database)
    await database.close()
    async with Runtime(settings) as rt:
        yield rt
