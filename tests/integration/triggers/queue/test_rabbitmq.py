"""RabbitMQ queue trigger against the real local RabbitMQ (guest/guest)."""

import asyncio
import json
from collections.abc import AsyncIterator

import aio_pika
import aio_pika.abc
import pytest

from tests.conftest import require_service
from tests.integration.triggers.queue.conftest import Recorder, RunTrigger, connections_to

pytestmark = pytest.mark.rabbitmq

URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
async def channel() -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    connection = await aio_pika.connect(URL)
    async with connection:
        yield await connection.channel()


@pytest.fixture
async def queue_name(channel: aio_pika.abc.AbstractChannel, unique: str) -> AsyncIterator[str]:
    """A unique queue name; the queue is deleted afterwards."""
    yield unique
    await channel.queue_delete(unique)


def definition(queue: str, **extra: object) -> dict[str, object]:
    return {"type": "queue", "broker": "rabbitmq", "url": URL, "queue": queue, **extra}


async def publish(channel: aio_pika.abc.AbstractChannel, queue: str, body: bytes,
                  **properties: object) -> None:
    await channel.default_exchange.publish(
        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                         **properties),  # type: ignore[arg-type]
        routing_key=queue,
    )


async def message_count(channel: aio_pika.abc.AbstractChannel, queue: str) -> int:
    declared = await channel.declare_queue(queue, passive=True)
    count = declared.declaration_result.message_count
    assert count is not None
    return count


async def close_connection_server_side(port: int) -> None:
    """Have RabbitMQ itself close the connection from local `port` (CONNECTION_FORCED)."""
    name = f"127.0.0.1:{port} -> 127.0.0.1:5672"
    expression = (
        '[rabbit_networking:close_connection(P, "closed by test") || '
        "P <- rabbit_networking:connections(), "
        "proplists:get_value(name, rabbit_networking:connection_info(P, [name])) "
        f'=:= <<"{name}">>].'
    )
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "eval", expression,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert out.strip() == b"[ok]", (out, err)


async def test_message_fires_with_body_routing_key_and_properties(
    channel, queue_name: str, run_trigger: RunTrigger
):
    async with run_trigger(definition(queue_name)) as running:
        await publish(channel, queue_name, json.dumps({"sku": "a1"}).encode(),
                      message_id="m-1", headers={"tenant": "acme"},
                      content_type="application/json")
        started = await running.recorder.next()
    assert started.payload["message"] == {"sku": "a1"}
    assert started.payload["topic"] == queue_name
    headers = started.payload["headers"]
    assert headers["tenant"] == "acme"
    assert headers["message_id"] == "m-1"
    assert headers["content_type"] == "application/json"
    assert headers["redelivered"] is False
    assert started.key == f"rabbitmq:{queue_name}:m-1"


async def test_message_is_acknowledged_only_after_fire_returned(
    channel, queue_name: str, run_trigger: RunTrigger
):
    recorder = Recorder(hold=asyncio.Event())
    async with run_trigger(definition(queue_name), recorder):
        await publish(channel, queue_name, b"one")
        await recorder.calls_reach(1)
    # Stopped while fire had not returned: the message went back to the queue.
    assert await message_count(channel, queue_name) == 1
    async with run_trigger(definition(queue_name)) as running:
        started = await running.recorder.next()
        await running.acked(1)
    assert started.payload["headers"]["redelivered"] is True
    assert await message_count(channel, queue_name) == 0


async def test_failed_fire_requeues_the_message_and_it_fires_later(
    channel, queue_name: str, run_trigger: RunTrigger
):
    recorder = Recorder(fail_next=1)
    async with run_trigger(definition(queue_name), recorder) as running:
        await publish(channel, queue_name, b"again", message_id="m-2")
        started = await recorder.next()
    assert len(recorder.calls) == 2
    assert started.payload["headers"]["redelivered"] is True
    assert "the database is down" in (running.state.last_error or "")


async def test_redelivery_after_a_lost_reply_starts_one_execution(
    channel, queue_name: str, run_trigger: RunTrigger
):
    recorder = Recorder(fail_after_store_next=1)
    async with run_trigger(definition(queue_name), recorder) as running:
        await publish(channel, queue_name, b"once", message_id="m-3")
        await recorder.calls_reach(2)
        await running.acked(1)
    assert len(recorder.started) == 1
    assert recorder.calls[0][1] == recorder.calls[1][1] == f"rabbitmq:{queue_name}:m-3"


async def test_exchange_binding_routes_messages_to_the_trigger(
    channel, queue_name: str, run_trigger: RunTrigger, unique: str
):
    exchange_name = f"{unique}-x"
    trigger = definition(queue_name, exchange=exchange_name, exchange_type="topic",
                         routing_key="orders.*")
    try:
        async with run_trigger(trigger) as running:
            exchange = await channel.get_exchange(exchange_name)
            await exchange.publish(aio_pika.Message(b"routed"), routing_key="orders.eu")
            await exchange.publish(aio_pika.Message(b"ignored"), routing_key="invoices.eu")
            await exchange.publish(aio_pika.Message(b"routed 2"), routing_key="orders.us")
            first, second = await running.recorder.next(), await running.recorder.next()
    finally:
        await channel.exchange_delete(exchange_name)
    assert (first.payload["message"], first.payload["topic"]) == ("routed", "orders.eu")
    assert first.payload["headers"]["exchange"] == exchange_name
    assert second.payload["message"] == "routed 2"


async def test_passive_queue_that_does_not_exist_is_reported_and_retried(
    run_trigger: RunTrigger, unique: str
):
    require_service("RabbitMQ", "127.0.0.1", 5672)
    async with run_trigger(definition(unique, passive=True), wait=False) as running:
        await running.until(lambda: running.entered("reconnecting") >= 1)
        assert "NOT_FOUND" in (running.state.last_error or "")
        assert not running.task.done()


async def test_oversized_message_is_rejected_without_execution(
    channel, queue_name: str, run_trigger: RunTrigger
):
    async with run_trigger(definition(queue_name, max_message_bytes=8)) as running:
        await publish(channel, queue_name, b"z" * 9)
        await publish(channel, queue_name, b"ok")
        started = await running.recorder.next()
    assert started.payload["message"] == "ok"
    assert len(running.recorder.calls) == 1
    assert "exceeds max_message_bytes (8)" in (running.state.last_error or "")
    assert await message_count(channel, queue_name) == 0


async def test_prefetched_burst_fires_every_message_once(channel, queue_name: str,
                                                          run_trigger: RunTrigger):
    async with run_trigger(definition(queue_name, prefetch=5)) as running:
        await asyncio.gather(*(publish(channel, queue_name, str(i).encode(), message_id=str(i))
                               for i in range(40)))
        got = [await running.recorder.next() for _ in range(40)]
    assert sorted(s.payload["message"] for s in got) == list(range(40))


@pytest.mark.slow
async def test_connection_closed_by_the_broker_reconnects_and_loses_nothing(
    channel, queue_name: str, run_trigger: RunTrigger
):
    ours = connections_to(5672)
    async with run_trigger(definition(queue_name)) as running:
        (port,) = connections_to(5672) - ours
        before = running.entered("reconnecting")
        await close_connection_server_side(port)
        await publish(channel, queue_name, b"while away", message_id="w")
        await running.reconnected(before)
        assert "CONNECTION_FORCED" in (running.state.last_error or "")
        started = await running.recorder.next()
    assert started.payload["message"] == "while away"


async def test_message_refused_by_the_runtime_is_rejected_not_requeued(
    channel, queue_name: str, run_trigger: RunTrigger
):
    recorder = Recorder(refuse_next=1)
    async with run_trigger(definition(queue_name), recorder) as running:
        await publish(channel, queue_name, b"bad")
        await publish(channel, queue_name, b"good")
        started = await recorder.next()
        await running.acked(1)
    assert started.payload["message"] == "good"
    assert len(recorder.calls) == 2
    assert await message_count(channel, queue_name) == 0

