"""Queue trigger definitions: every problem named by its field; payload decoding; backoff.

Pure (no broker needed); they live beside the broker suites they support.
"""

import asyncio
import contextlib
import json
import random

import pytest

from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON
from conv3n.triggers.queue import MODELS, RedisConfig, build, parse, payload, validate
from conv3n.triggers.queue.consumer import QueueConsumer, backoff_delay, checkpoint

VALID: dict[str, dict[str, JSON]] = {
    "redis": {"type": "queue", "broker": "redis", "url": "redis://127.0.0.1:6379/0",
              "channel": "orders"},
    "redis-stream": {"type": "queue", "broker": "redis", "url": "redis://h", "mode": "stream",
                     "stream": "s", "group": "g"},
    "rabbitmq": {"type": "queue", "broker": "rabbitmq", "url": "amqp://guest:guest@h/",
                 "queue": "orders"},
    "mqtt": {"type": "queue", "broker": "mqtt", "url": "mqtt://h:1883", "topic": "a/+/c/#"},
    "nats": {"type": "queue", "broker": "nats", "url": "nats://h:4222", "subject": "a.*.>",
             "stream": "S", "durable": "d"},
    "nats-core": {"type": "queue", "broker": "nats", "url": "nats://h", "mode": "core",
                  "subject": "a.b"},
    "postgres": {"type": "queue", "broker": "postgres", "credential": "pg-url",
                 "channel": "orders"},
}


def where(definition: object) -> dict[str, str]:
    return {p.where: p.message for p in validate(definition)}  # type: ignore[arg-type]


async def no_secret(name: str) -> str:
    raise AssertionError(f"no secret is read while building ({name})")


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_definitions_build_a_trigger_that_has_not_started(name: str):
    assert validate(VALID[name]) == []
    trigger = build(VALID[name], secret=no_secret)
    assert trigger.state.status == "starting"
    assert trigger.state.fire_count == 0


def test_every_broker_model_has_a_json_schema_with_descriptions():
    for model in MODELS.values():
        schema = model.model_json_schema()
        assert all("description" in field for field in schema["properties"].values()), model


def test_problems_carry_the_trigger_place():
    definition = {**VALID["mqtt"], "topic": "a/#/b"}
    problems = validate(definition, at=("triggers", 0))
    assert [p.where for p in problems] == ["triggers[0].topic"]


@pytest.mark.parametrize(
    ("definition", "place", "words"),
    [
        ({"type": "queue", "url": "redis://h", "channel": "c"}, "broker", "missing"),
        ({**VALID["redis"], "broker": "kafka"}, "broker", "use one of redis, rabbitmq"),
        ({**VALID["redis"], "broker": ["redis"]}, "broker", "use one of"),
        ({**VALID["redis"], "credential": "x"}, "url", "exactly one of"),
        ({k: v for k, v in VALID["redis"].items() if k != "url"}, "url", "exactly one of"),
        ({**VALID["redis"], "url": "http://h"}, "url", "redis://"),
        ({**VALID["rabbitmq"], "url": "redis://h"}, "url", "amqp://"),
        ({**VALID["redis"], "channel": None}, "channel", "needs a `channel`"),
        ({**VALID["redis"], "stream": "s"}, "stream", "only stream mode"),
        ({**VALID["redis-stream"], "group": None}, "group", "needs a `group`"),
        ({**VALID["redis"], "mode": "list"}, "mode", "'pubsub' or 'stream'"),
        ({**VALID["rabbitmq"], "routing_key": "k"}, "routing_key", "needs an `exchange`"),
        ({**VALID["rabbitmq"], "prefetch": 0}, "prefetch", "greater than or equal to 1"),
        ({**VALID["mqtt"], "topic": "a+/b"}, "topic", "whole level"),
        ({**VALID["mqtt"], "topic": "#/a"}, "topic", "last level"),
        ({**VALID["mqtt"], "qos": 3}, "qos", "0, 1 or 2"),
        ({**VALID["nats"], "subject": "a..b"}, "subject", "not a valid NATS subject"),
        ({**VALID["nats"], "subject": "a.>.b"}, "subject", "not a valid NATS subject"),
        ({**VALID["nats"], "subject": "a b"}, "subject", "not a valid NATS subject"),
        ({**VALID["nats"], "durable": None}, "durable", "jetstream mode needs"),
        ({**VALID["nats-core"], "stream": "S"}, "stream", "only jetstream mode"),
        ({**VALID["postgres"], "channel": ""}, "channel", "at least 1 character"),
        ({**VALID["postgres"], "channel": "x" * 64}, "channel", "at most 63 characters"),
        ({**VALID["redis"], "max_message_bytes": 10**12}, "max_message_bytes", "less than"),
        ({**VALID["redis"], "reconnect_min_ms": 900, "reconnect_max_ms": 100},
         "reconnect_max_ms", "not be smaller"),
        ({**VALID["redis"], "chanel": "typo"}, "chanel", "extra inputs are not permitted"),
        ({**VALID["redis"], "channel": {"$ne": 1}}, "channel", "valid string"),
        ({**VALID["redis"], "type": "cron"}, "type", "'queue'"),
    ],
)
def test_bad_definition_names_the_field(definition: dict[str, JSON], place: str, words: str):
    problems = where(definition)
    assert place in problems, problems
    assert words in problems[place]


def test_every_problem_is_reported_at_once():
    problems = where({"type": "queue", "broker": "nats", "url": "ftp://h", "subject": "",
                      "mode": "jetstream", "batch": -1, "extra": 1})
    assert {"url", "subject", "batch", "extra"} <= set(problems)


def test_a_definition_that_is_not_an_object_is_one_problem():
    assert where(["queue"]) == {"(document)": "a trigger is an object"}


def test_huge_definition_is_refused_without_echoing_it():
    huge = {**VALID["redis"], "channel": "c" * 1_000_000, "url": "redis://" + "h" * 10_000}
    problems = where(huge)
    assert set(problems) == {"channel", "url"}
    assert all(len(message) < 200 for message in problems.values())


def test_parse_raises_workflow_invalid_listing_the_problems():
    with pytest.raises(WorkflowInvalid) as raised:
        parse({**VALID["mqtt"], "topic": "#/x"}, at=("triggers", 2))
    assert [p.where for p in raised.value.problems] == ["triggers[2].topic"]


def test_build_refuses_an_invalid_definition():
    with pytest.raises(WorkflowInvalid):
        build({"type": "queue", "broker": "redis"}, secret=no_secret)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": [1, 2]}', {"a": [1, 2]}),
        (b"42", 42),
        (b"plain text", "plain text"),
        (b"", ""),
        ("caf\u00e9".encode(), "caf\u00e9"),
        (b"NaN", "NaN"),
        (b"[Infinity]", "[Infinity]"),
        (b"\xff\xfe\x00", {"base64": "//4A"}),
        (b"[" * 100_000, "[" * 100_000),
    ],
)
def test_bodies_decode_as_json_then_text_then_base64(body: bytes, expected: JSON):
    assert payload.decode(body) == expected


def test_decoded_bodies_are_always_json_serialisable():
    for body in (b"NaN", b"-Infinity", b"\x00\x01", b'{"x": 1e400}', b"[" * 5000 + b"]" * 5000):
        json.dumps(payload.decode(body), allow_nan=False)


def test_header_values_become_json():
    from datetime import UTC, datetime
    from decimal import Decimal

    headers = payload.headers_of({
        b"raw": b"bytes", "bin": b"\xff", "when": datetime(2026, 1, 2, tzinfo=UTC),
        "price": Decimal("1.50"), "nested": {"l": [1, b"x", float("nan")]}, "n": None,
    })
    assert headers == {
        "raw": "bytes", "bin": {"base64": "/w=="}, "when": "2026-01-02T00:00:00+00:00",
        "price": "1.50", "nested": {"l": [1, "x", "nan"]}, "n": None,
    }


def test_size_limit_is_inclusive():
    payload.check_size(10, 10)
    with pytest.raises(payload.MessageTooLarge, match="11 bytes exceeds max_message_bytes"):
        payload.check_size(11, 10)


def test_backoff_doubles_with_jitter_up_to_the_ceiling():
    rng = random.Random(7)
    delays = [backoff_delay(attempt, 100, 1000, rng) for attempt in range(1, 8)]
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert backoff_delay(10_000, 100, 1000, rng) <= 1.0


async def test_checkpoint_raises_a_cancellation_a_library_swallowed():
    async def swallowing() -> None:
        # What asyncio.wait_for does on Python 3.11 when a result races the cancel:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        checkpoint()

    task = asyncio.create_task(swallowing())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_last_error_never_shows_the_url_password():
    class Leaky(QueueConsumer[RedisConfig]):
        async def consume(self, url: str) -> None:
            raise ConnectionError(f"cannot reach {url}")

    async def secret(name: str) -> str:
        return "redis://user:p%40ss-w0rd@127.0.0.1:1/0"

    definition = {"type": "queue", "broker": "redis", "credential": "r", "channel": "c"}
    trigger = Leaky(RedisConfig.model_validate(definition), secret=secret)

    async def fire(payload: JSON, *, key: str | None = None) -> str:
        return "x"

    task = asyncio.create_task(trigger.run(fire))
    try:
        await asyncio.wait_for(trigger.until(lambda: trigger.state.last_error is not None), 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    error = trigger.state.last_error or ""
    assert "cannot reach redis://user:***@127.0.0.1:1/0" in error
    assert "w0rd" not in error
