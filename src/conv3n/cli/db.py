"""`conv3n db upgrade` and `conv3n backup`: schema and copies of the database."""

import asyncio
import sqlite3
from pathlib import Path

import typer

from conv3n.cli import output

app = typer.Typer(help="The database: schema upgrades.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Bring the database schema to the newest revision.

    SQLite (the default, in CONV3N_DATA_DIR) is upgraded automatically at start; run this for
    PostgreSQL or MariaDB (CONV3N_DATABASE_URL) after installing a new conv3n.
    """
    from conv3n.runtime import Settings
    from conv3n.storage import Database, schema

    async def main() -> tuple[bool, str | None]:
        db = Database(Settings.from_env().database)
        try:
            applied = await schema.upgrade(db)
            return applied, await schema.current_revision(db)
        finally:
            await db.close()

    applied, revision = asyncio.run(main())
    state = "upgraded to" if applied else "already at"
    output.console().print(f"database schema {state} revision {revision}")


def backup(
    destination: Path = typer.Argument(
        None, help="Where to write the copy (default: conv3n-backup-<time>.db in the data dir)."
    ),
) -> None:
    """Copy the SQLite database while conv3n runs (an online, consistent backup).

    For PostgreSQL, use its own tools; this prints the command to run.
    """
    from datetime import UTC, datetime

    from sqlalchemy.engine import make_url

    from conv3n.runtime import Settings

    settings = Settings.from_env()
    url = make_url(settings.database)
    if url.get_backend_name() != "sqlite":
        target = url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)
        tool = (
            "pg_dump --format=custom --file=conv3n.dump"
            if "postgres" in target
            else ("mariadb-dump --single-transaction")
        )
        output.console().print(
            f"conv3n backs up only its embedded SQLite database. For this database run:\n"
            f"  {tool} '{target}'"
        )
        return
    source = Path(url.database or "")
    if not source.exists():
        raise typer.BadParameter(f"no database at {source}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    destination = destination or settings.data_dir / f"conv3n-backup-{stamp}.db"
    with sqlite3.connect(source) as src, sqlite3.connect(destination) as dst:
        src.backup(dst, pages=1024)
    size = destination.stat().st_size
    output.console().print(f"backed up {source} to {destination} ({size:,} bytes)")
