"""MQTT queue trigger against the real local Mosquitto (and a restarted one of its own)."""

import asyncio
import json
from pathlib import Path

import aiomqtt
import pytest

from tests.conftest import require_service
from tests.integration.triggers.queue.brokers import own_mosquitto
from tests.integration.triggers.queue.conftest import Recorder, RunTrigger

pytestmark = pytest.mark.mqtt

URL = "mqtt://127.0.0.1:1883"


@pytest.fixture
def mosquitto() -> None:
    require_service("Mosquitto", "127.0.0.1", 1883)


async def publish(topic: str, body: bytes | str, *, port: int = 1883, retain: bool = False,
                  ) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.publish(topic, body, qos=1, retain=retain)


def definition(topic: str, unique: str, **extra: object) -> dict[str, object]:
    return {"type": "queue", "broker": "mqtt", "url": URL, "topic": topic,
            "client_id": unique, **extra}


async def test_message_fires_with_topic_and_qos(mosquitto: None, run_trigger: RunTrigger,
                                                unique: str):
    async with run_trigger(definition(f"{unique}/orders/+", unique)) as running:
        await publish(f"{unique}/orders/eu", json.dumps({"n": 1}))
        started = await running.recorder.next()
    assert started.payload == {
        "message": {"n": 1}, "topic": f"{unique}/orders/eu",
        "headers": {"qos": 1, "retain": False, "mid": started.payload["headers"]["mid"]},
    }
    assert started.key is None


async def test_multi_level_wildcard_matches_deeper_topics(mosquitto: None,
                                                          run_trigger: RunTrigger, unique: str):
    async with run_trigger(definition(f"{unique}/#", unique)) as running:
        await publish(f"{unique}/a/b/c", b"\x00\xff")
        started = await running.recorder.next()
    assert started.payload["topic"] == f"{unique}/a/b/c"
    assert started.payload["message"] == {"base64": "AP8="}


async def test_messages_published_while_stopped_arrive_on_the_next_start(
    mosquitto: None, run_trigger: RunTrigger, unique: str
):
    topic = f"{unique}/t"
    async with run_trigger(definition(topic, unique)):
        pass  # the session and its subscription now exist on the broker
    await publish(topic, "while stopped")
    async with run_trigger(definition(topic, unique)) as running:
        assert (await running.recorder.next()).payload["message"] == "while stopped"


async def test_message_is_acknowledged_only_after_fire_returned(
    mosquitto: None, run_trigger: RunTrigger, unique: str
):
    topic = f"{unique}/t"
    recorder = Recorder(hold=asyncio.Event())
    async with run_trigger(definition(topic, unique), recorder):
        await publish(topic, "held")
        await recorder.calls_reach(1)
    # Stopped before fire returned: no PUBACK was sent, so the broker delivers it again.
    async with run_trigger(definition(topic, unique)) as running:
        assert (await running.recorder.next()).payload["message"] == "held"


async def test_failed_fire_reconnects_and_the_message_is_redelivered(
    mosquitto: None, run_trigger: RunTrigger, unique: str
):
    topic = f"{unique}/t"
    recorder = Recorder(fail_next=1)
    async with run_trigger(definition(topic, unique), recorder) as running:
        before = running.entered("reconnecting")
        await publish(topic, "retry me")
        started = await recorder.next()
        assert running.entered("reconnecting") == before + 1
    assert started.payload["message"] == "retry me"
    assert len(recorder.calls) == 2


async def test_oversized_message_is_dropped_and_reported(mosquitto: None,
                                                         run_trigger: RunTrigger, unique: str):
    topic = f"{unique}/t"
    async with run_trigger(definition(topic, unique, max_message_bytes=4)) as running:
        await publish(topic, "12345")
        await publish(topic, "1234")
        started = await running.recorder.next()
    assert started.payload["message"] == 1234
    assert len(running.recorder.calls) == 1
    assert "exceeds max_message_bytes (4)" in (running.state.last_error or "")


@pytest.mark.slow
async def test_broker_restart_reconnects_and_later_messages_fire(
    run_trigger: RunTrigger, unique: str, tmp_path: Path
):
    async with own_mosquitto(tmp_path / "mosquitto") as broker:
        url = f"mqtt://127.0.0.1:{broker.port}"
        topic = f"{unique}/t"
        async with run_trigger(definition(topic, unique, url=url)) as running:
            before = running.entered("reconnecting")
            await broker.stop()
            await running.until(lambda: running.state.status == "reconnecting")
            assert running.state.last_error is not None
            await broker.start()
            await running.reconnected(before)
            await publish(topic, "after restart", port=broker.port)
            assert (await running.recorder.next()).payload["message"] == "after restart"


async def test_concurrent_publishers_each_start_one_execution(mosquitto: None,
                                                               run_trigger: RunTrigger,
                                                               unique: str):
    topic = f"{unique}/burst"
    async with run_trigger(definition(topic, unique)) as running:
        async with aiomqtt.Client("127.0.0.1", 1883) as client:
            await asyncio.gather(*(client.publish(topic, str(i), qos=1) for i in range(50)))
        got = [await running.recorder.next() for _ in range(50)]
        await running.acked(50)
    assert sorted(s.payload["message"] for s in got) == list(range(50))


async def test_message_refused_by_the_runtime_is_acknowledged_not_redelivered(
    mosquitto: None, run_trigger: RunTrigger, unique: str
):
    topic = f"{unique}/t"
    recorder = Recorder(refuse_next=1)
    async with run_trigger(definition(topic, unique), recorder) as running:
        await publish(topic, "bad")
        await publish(topic, "good")
        started = await recorder.next()
        assert running.entered("reconnecting") == 0
    assert started.payload["message"] == "good"
    assert len(recorder.calls) == 2


async def test_retained_message_fires_once_not_again_on_each_reconnect(
    mosquitto: None, run_trigger: RunTrigger, unique: str
):
    topic = f"{unique}/state"
    await publish(topic, "retained", retain=True)
    try:
        async with run_trigger(definition(topic, unique)) as running:
            first = await running.recorder.next()
            await running.acked(1)
        assert first.payload["headers"]["retain"] is True
        async with run_trigger(definition(topic, unique)) as running:
            await publish(topic, "live")
            second = await running.recorder.next()
        assert second.payload["message"] == "live"
        assert len(running.recorder.calls) == 1
    finally:
        await publish(topic, b"", retain=True)  # clears the retained message
