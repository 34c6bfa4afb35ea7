"""Redis queue trigger against the real local Redis: pub/sub and streams with a group."""

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio

from conv3n.triggers.queue.redis import client_name
from tests.conftest import require_service
from tests.integration.triggers.queue.brokers import own_redis
from tests.integration.triggers.queue.conftest import Recorder, RunTrigger, connections_to

pytestmark = pytest.mark.redis

URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def r() -> AsyncIterator["redis.asyncio.Redis"]:
    require_service("Redis", "127.0.0.1", 6379)
    client = redis.asyncio.Redis.from_url(URL)
    try:
        yield client
    finally:
        await client.aclose()


async def kill_clients(r: "redis.asyncio.Redis", name: str) -> int:
    """CLIENT KILL every connection named `name`; how many."""
    clients = await r.client_list()
    killed = 0
    for client in clients:
        if client.get("name") == name:
            await r.client_kill_filter(_id=client["id"])
            killed += 1
    return killed


def pubsub(channel: str, **extra: object) -> dict[str, object]:
    return {"type": "queue", "broker": "redis", "url": URL, "channel": channel, **extra}


def stream(name: str, **extra: object) -> dict[str, object]:
    return {"type": "queue", "broker": "redis", "url": URL, "mode": "stream", "stream": name,
            "group": "workers", "consumer": "c1", **extra}


async def test_pubsub_message_fires_with_message_topic_and_headers(r, run_trigger: RunTrigger,
                                                                    unique: str):
    async with run_trigger(pubsub(unique)) as running:
        await r.publish(unique, json.dumps({"order": 7}))
        started = await running.recorder.next()
    assert started.payload == {"message": {"order": 7}, "topic": unique, "headers": {}}
    assert started.key is None
    assert running.state.fire_count == 1
    assert running.state.last_fire_at is not None


async def test_pubsub_text_and_binary_bodies_are_decoded(r, run_trigger: RunTrigger, unique: str):
    async with run_trigger(pubsub(unique)) as running:
        await r.publish(unique, "plain words")
        await r.publish(unique, b"\xff\x00\xfe")
        text, binary = await running.recorder.next(), await running.recorder.next()
    assert text.payload["message"] == "plain words"
    assert binary.payload["message"] == {"base64": base64.b64encode(b"\xff\x00\xfe").decode()}


async def test_pubsub_pattern_subscription_reports_channel_and_pattern(
    r, run_trigger: RunTrigger, unique: str
):
    async with run_trigger(pubsub(f"{unique}.*", pattern=True)) as running:
        await r.publish(f"{unique}.eu", "1")
        started = await running.recorder.next()
    assert started.payload == {"message": 1, "topic": f"{unique}.eu",
                               "headers": {"pattern": f"{unique}.*"}}


async def test_pubsub_oversized_message_starts_nothing_and_is_reported(
    r, run_trigger: RunTrigger, unique: str
):
    async with run_trigger(pubsub(unique, max_message_bytes=16)) as running:
        await r.publish(unique, "x" * 17)
        await r.publish(unique, "small")
        started = await running.recorder.next()
    assert started.payload["message"] == "small"
    assert len(running.recorder.calls) == 1
    assert "17 bytes exceeds max_message_bytes (16)" in (running.state.last_error or "")
    assert running.state.status == "stopped"


async def test_pubsub_killed_connection_reconnects_and_fires_again(
    r, run_trigger: RunTrigger, unique: str
):
    async with run_trigger(pubsub(unique)) as running:
        before = running.entered("reconnecting")
        assert await kill_clients(r, client_name(unique)) == 1
        await running.reconnected(before)
        assert running.state.last_error is not None
        await r.publish(unique, "after")
        assert (await running.recorder.next()).payload["message"] == "after"


async def test_unreachable_redis_is_retried_with_backoff_not_raised(run_trigger: RunTrigger,
                                                                    unique: str):
    definition = pubsub(unique, url="redis://127.0.0.1:1/0")
    async with run_trigger(definition, wait=False) as running:
        await running.until(lambda: running.entered("reconnecting") >= 1
                            and running.state.last_error is not None)
        assert running.state.status == "reconnecting"
        assert not running.task.done()


async def test_credential_secret_holds_the_url(r, run_trigger: RunTrigger, unique: str,
                                               secrets: dict[str, str]):
    secrets["redis-url"] = URL
    definition = {"type": "queue", "broker": "redis", "credential": "redis-url",
                  "channel": unique}
    async with run_trigger(definition) as running:
        await r.publish(unique, "via secret")
        assert (await running.recorder.next()).payload["message"] == "via secret"


async def test_stream_entry_fires_with_its_key_and_is_acknowledged_after(
    r, run_trigger: RunTrigger, unique: str
):
    async with run_trigger(stream(unique)) as running:
        entry_id = (await r.xadd(unique, {"order": '{"id": 1}', "source": "shop"})).decode()
        started = await running.recorder.next()
        await running.acked(1)
        pending = await r.xpending(unique, "workers")
    assert started.payload == {"message": {"order": {"id": 1}, "source": "shop"},
                               "topic": unique, "headers": {"id": entry_id}}
    assert started.key == f"redis:{unique}:workers:{entry_id}"
    assert pending["pending"] == 0


async def test_stream_field_option_takes_message_from_one_field(
    r, run_trigger: RunTrigger, unique: str
):
    async with run_trigger(stream(unique, field="body")) as running:
        entry_id = (await r.xadd(unique, {"body": "[1, 2]", "trace": "abc"})).decode()
        started = await running.recorder.next()
    assert started.payload == {"message": [1, 2], "topic": unique,
                               "headers": {"id": entry_id, "trace": "abc"}}


async def test_stream_entry_stays_pending_when_fire_fails_and_is_fired_later(
    r, run_trigger: RunTrigger, unique: str
):
    recorder = Recorder(fail_next=1)
    async with run_trigger(stream(unique), recorder) as running:
        await r.xadd(unique, {"n": "1"})
        started = await running.recorder.next()
        await running.acked(1)
        pending = await r.xpending(unique, "workers")
    assert len(recorder.calls) == 2
    assert recorder.calls[0][1] == recorder.calls[1][1] == started.key
    assert "the database is down" in (running.state.last_error or "")
    assert pending["pending"] == 0


async def test_stream_redelivery_after_a_lost_reply_starts_one_execution(
    r, run_trigger: RunTrigger, unique: str
):
    recorder = Recorder(fail_after_store_next=1)
    async with run_trigger(stream(unique), recorder) as running:
        await r.xadd(unique, {"n": "1"})
        await recorder.calls_reach(2)
        await running.acked(1)
    assert len(recorder.started) == 1
    assert recorder.calls[0][1] == recorder.calls[1][1]


async def test_stream_entries_a_dead_consumer_left_pending_are_claimed(
    r, run_trigger: RunTrigger, unique: str
):
    await r.xgroup_create(unique, "workers", id="0", mkstream=True)
    entry_id = (await r.xadd(unique, {"n": "lost"})).decode()
    await r.xreadgroup("workers", "dead-consumer", {unique: ">"})  # read, never acknowledged
    async with run_trigger(stream(unique, claim_idle_ms=1)) as running:
        started = await running.recorder.next()
        await running.acked(1)
        pending = await r.xpending(unique, "workers")
    assert started.key == f"redis:{unique}:workers:{entry_id}"
    assert pending["pending"] == 0


async def test_stream_from_beginning_reads_entries_older_than_the_group(
    r, run_trigger: RunTrigger, unique: str
):
    await r.xadd(unique, {"n": "old"})
    async with run_trigger(stream(unique, from_beginning=True)) as running:
        assert (await running.recorder.next()).payload["message"] == {"n": "old"}


async def test_stream_oversized_entry_is_acknowledged_without_execution(
    r, run_trigger: RunTrigger, unique: str
):
    async with run_trigger(stream(unique, max_message_bytes=10)) as running:
        await r.xadd(unique, {"big": "y" * 20})
        await r.xadd(unique, {"s": "1"})
        started = await running.recorder.next()
        pending = await r.xpending(unique, "workers")
    assert started.payload["message"] == {"s": 1}
    assert len(running.recorder.calls) == 1
    assert "exceeds max_message_bytes (10)" in (running.state.last_error or "")
    assert pending["pending"] == 0


async def test_stream_killed_connection_reconnects_and_loses_nothing(
    r, run_trigger: RunTrigger, unique: str
):
    async with run_trigger(stream(unique)) as running:
        before = running.entered("reconnecting")
        assert await kill_clients(r, client_name(unique)) == 1
        await r.xadd(unique, {"n": "during"})
        await running.reconnected(before)
        await r.xadd(unique, {"n": "after"})
        first, second = await running.recorder.next(), await running.recorder.next()
    assert [first.payload["message"], second.payload["message"]] == [{"n": "during"},
                                                                    {"n": "after"}]


async def test_cancelled_trigger_closes_its_connection(r, run_trigger: RunTrigger, unique: str):
    await r.ping()
    ours = connections_to(6379)
    async with run_trigger(stream(unique)):
        names = [c.get("name") for c in await r.client_list()]
        assert client_name(unique) in names
        assert len(connections_to(6379) - ours) == 1
    assert connections_to(6379) - ours == set()


async def test_concurrent_publishers_each_start_one_execution(
    r, run_trigger: RunTrigger, unique: str
):
    async with run_trigger(stream(unique, batch=7)) as running:
        await asyncio.gather(*(r.xadd(unique, {"n": str(i)}) for i in range(50)))
        got = [await running.recorder.next() for _ in range(50)]
    assert sorted(s.payload["message"]["n"] for s in got) == list(range(50))
    assert len({s.key for s in got}) == 50


async def test_stream_entry_is_acknowledged_only_after_fire_returned(
    r, run_trigger: RunTrigger, unique: str
):
    recorder = Recorder(hold=asyncio.Event())
    async with run_trigger(stream(unique), recorder):
        await r.xadd(unique, {"n": "1"})
        await recorder.calls_reach(1)
    # Stopped while fire had not returned: the entry is still pending for this consumer...
    assert (await r.xpending(unique, "workers"))["pending"] == 1
    # ...and the next run of the same consumer fires it from its pending list.
    async with run_trigger(stream(unique)) as running:
        assert (await running.recorder.next()).payload["message"] == {"n": 1}
        await running.acked(1)
    assert (await r.xpending(unique, "workers"))["pending"] == 0


async def test_missing_credential_secret_is_reported_and_retried(run_trigger: RunTrigger,
                                                                 unique: str):
    definition = {"type": "queue", "broker": "redis", "credential": "not-stored",
                  "channel": unique}
    async with run_trigger(definition, wait=False) as running:
        await running.until(lambda: running.entered("reconnecting") >= 1)
        assert "not-stored" in (running.state.last_error or "")


async def test_stream_entry_refused_by_the_runtime_is_acknowledged_not_retried(
    r, run_trigger: RunTrigger, unique: str
):
    recorder = Recorder(refuse_next=1)
    async with run_trigger(stream(unique), recorder) as running:
        await r.xadd(unique, {"n": "bad"})
        await r.xadd(unique, {"n": "good"})
        started = await recorder.next()
        await running.acked(1)
        pending = await r.xpending(unique, "workers")
    assert started.payload["message"] == {"n": "good"}
    assert len(recorder.calls) == 2
    assert "refused and will not be retried" in (running.state.last_error or "")
    assert pending["pending"] == 0


@pytest.mark.slow
async def test_broker_restart_loses_no_entry_and_a_lost_ack_starts_nothing_twice(
    run_trigger: RunTrigger, unique: str, tmp_path: Path
):
    async with own_redis(tmp_path / "redis") as broker:
        url = f"redis://127.0.0.1:{broker.port}/0"
        hold = asyncio.Event()
        recorder = Recorder(hold=hold)
        async with run_trigger(stream(unique, url=url), recorder) as running:
            publisher = redis.asyncio.Redis.from_url(url)
            await publisher.xadd(unique, {"n": "before"})
            await publisher.aclose()
            await recorder.calls_reach(1)
            before = running.entered("reconnecting")
            await broker.stop()
            hold.set()  # stored while Redis is down: its XACK fails
            await running.until(lambda: running.state.status == "reconnecting")
            assert running.state.last_error is not None
            await broker.start()
            await running.reconnected(before)
            publisher = redis.asyncio.Redis.from_url(url)
            await publisher.xadd(unique, {"n": "after"})
            await publisher.aclose()
            await running.acked(2)
    assert [s.payload["message"] for s in recorder.started] == [{"n": "before"}, {"n": "after"}]
    assert len(recorder.calls) == 3  # "before" fired again from the pending list, same key
    assert recorder.calls[0][1] == recorder.calls[1][1]
