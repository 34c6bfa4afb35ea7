"""PostgreSQL LISTEN/NOTIFY trigger against the real local PostgreSQL (never restarted here)."""

import json
from collections.abc import AsyncIterator

import psycopg
import pytest

from conv3n.triggers.queue.postgres import application_name, libpq_url
from tests.conftest import require_service
from tests.integration.triggers.queue.conftest import RunTrigger, connections_to

pytestmark = pytest.mark.postgres

URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
async def pg() -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    connection = await psycopg.AsyncConnection.connect(URL, autocommit=True)
    async with connection:
        yield connection


async def notify(pg: psycopg.AsyncConnection[tuple[object, ...]], channel: str,
                 body: str) -> None:
    await pg.execute("SELECT pg_notify(%s, %s)", (channel, body))


def definition(channel: str, **extra: object) -> dict[str, object]:
    return {"type": "queue", "broker": "postgres", "url": URL, "channel": channel, **extra}


async def test_notification_fires_with_payload_channel_and_pid(pg, run_trigger: RunTrigger,
                                                               unique: str):
    async with run_trigger(definition(unique)) as running:
        await notify(pg, unique, json.dumps({"row": 5}))
        started = await running.recorder.next()
    assert started.payload["message"] == {"row": 5}
    assert started.payload["topic"] == unique
    assert isinstance(started.payload["headers"]["pid"], int)
    assert started.key is None


async def test_channel_names_are_quoted_not_interpolated(pg, run_trigger: RunTrigger,
                                                         unique: str):
    channel = f'{unique} "; DROP TABLE x; --'
    async with run_trigger(definition(channel)) as running:
        await notify(pg, channel, "text body")
        started = await running.recorder.next()
    assert (started.payload["topic"], started.payload["message"]) == (channel, "text body")


async def test_oversized_notification_starts_nothing(pg, run_trigger: RunTrigger, unique: str):
    async with run_trigger(definition(unique, max_message_bytes=5)) as running:
        await notify(pg, unique, "123456")
        await notify(pg, unique, "12345")
        started = await running.recorder.next()
    assert started.payload["message"] == 12345
    assert len(running.recorder.calls) == 1


async def test_terminated_backend_reconnects_and_listens_again(pg, run_trigger: RunTrigger,
                                                               unique: str):
    async with run_trigger(definition(unique)) as running:
        before = running.entered("reconnecting")
        cursor = await pg.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name(unique),),
        )
        assert await cursor.fetchall() == [(True,)]
        await running.reconnected(before)
        assert running.state.last_error is not None
        await notify(pg, unique, "after")
        assert (await running.recorder.next()).payload["message"] == "after"


async def test_cancelled_trigger_closes_its_connection(pg, run_trigger: RunTrigger, unique: str):
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
    ours = connections_to(5432)
    async with run_trigger(definition(unique)):
        assert await (await pg.execute(query, (application_name(unique),))).fetchone() == (1,)
        assert len(connections_to(5432) - ours) == 1
    assert connections_to(5432) - ours == set()


def test_sqlalchemy_style_urls_are_accepted():
    assert libpq_url("postgresql+psycopg://u@h/db") == "postgresql://u@h/db"
    assert libpq_url("postgres://u@h/db") == "postgres://u@h/db"
