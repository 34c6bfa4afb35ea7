"""The `queue` trigger's definition (SPEC §5): one frozen pydantic model per broker.

`parse(definition)` picks the model by `broker` and reports every problem with its field path
(`topic`, `url`); callers prefix the trigger's own place (`triggers[0].topic`).
"""

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from conv3n.model import Problem

Broker = Literal["redis", "rabbitmq", "mqtt", "nats", "postgres"]
BROKERS: tuple[Broker, ...] = ("redis", "rabbitmq", "mqtt", "nats", "postgres")

MiB = 1024 * 1024
Name = Annotated[str, Field(min_length=1, max_length=255)]


def _problem(field: str, message: str) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError("queue_config", message), loc=(field,), input=None
    )


class QueueConfig(BaseModel):
    """What every broker's `queue` trigger accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schemes: ClassVar[tuple[str, ...]] = ()

    type: Literal["queue"] = Field(description="Always `queue`.")
    broker: Broker = Field(description="The broker: redis, rabbitmq, mqtt, nats or postgres.")
    url: str | None = Field(
        None, min_length=1, max_length=4096, description="The broker URL (use `credential` when "
        "it holds a password)."
    )
    credential: Name | None = Field(
        None, description="Name of a stored secret whose value is the broker URL."
    )
    max_message_bytes: int = Field(
        MiB, ge=1, le=64 * MiB,
        description="Larger messages start no execution; they are rejected or acknowledged "
        "and reported in the trigger's last_error.",
    )
    reconnect_min_ms: int = Field(
        200, ge=1, le=60_000, description="First delay before reconnecting after a failure."
    )
    reconnect_max_ms: int = Field(
        30_000, ge=1, le=600_000, description="Longest delay between reconnection attempts."
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, url: str | None) -> str | None:
        if url is not None and urlsplit(url).scheme.split("+")[0].lower() not in cls.schemes:
            allowed = ", ".join(f"{s}://" for s in cls.schemes)
            raise ValueError(f"this broker's URL starts with {allowed}")
        return url

    def _cross_problems(self) -> list[InitErrorDetails]:
        """Rules between fields; broker models add theirs."""
        problems: list[InitErrorDetails] = []
        if (self.url is None) == (self.credential is None):
            problems.append(_problem("url", "give exactly one of `url` and `credential`"))
        if self.reconnect_max_ms < self.reconnect_min_ms:
            problems.append(
                _problem("reconnect_max_ms", "must not be smaller than `reconnect_min_ms`")
            )
        return problems

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = self._cross_problems()
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self


class RedisConfig(QueueConfig):
    """Redis: pub/sub channels (at most once) or a stream read by a consumer group."""

    schemes = ("redis", "rediss", "unix")

    broker: Literal["redis"] = Field(description="`redis`.")
    mode: Literal["pubsub", "stream"] = Field(
        "pubsub", description="`pubsub` (SUBSCRIBE, at most once) or `stream` (consumer group)."
    )
    channel: Name | None = Field(None, description="pubsub: the channel (or pattern) to read.")
    pattern: bool = Field(False, description="pubsub: treat `channel` as a glob (PSUBSCRIBE).")
    stream: Name | None = Field(None, description="stream: the stream key.")
    group: Name | None = Field(None, description="stream: the consumer group (created if missing).")
    consumer: Name | None = Field(
        None, description="stream: this consumer's name; default `conv3n-{host}-{pid}`."
    )
    field: Name | None = Field(
        None, description="stream: take `message` from this entry field (else the whole entry)."
    )
    from_beginning: bool = Field(
        False, description="stream: a new group starts at the stream's first entry, not its end."
    )
    claim_idle_ms: int = Field(
        60_000, ge=1, le=86_400_000,
        description="stream: claim entries another consumer left pending this long (XAUTOCLAIM).",
    )
    batch: int = Field(10, ge=1, le=1000, description="stream: entries read per XREADGROUP.")

    def _cross_problems(self) -> list[InitErrorDetails]:
        problems = super()._cross_problems()
        if self.mode == "pubsub":
            if self.channel is None:
                problems.append(_problem("channel", "pubsub mode needs a `channel`"))
            for name in ("stream", "group", "consumer", "field"):
                if getattr(self, name) is not None:
                    problems.append(_problem(name, "only stream mode takes this field"))
        else:
            if self.stream is None:
                problems.append(_problem("stream", "stream mode needs a `stream`"))
            if self.group is None:
                problems.append(_problem("group", "stream mode needs a `group`"))
            if self.channel is not None:
                problems.append(_problem("channel", "only pubsub mode takes this field"))
        return problems


class RabbitMQConfig(QueueConfig):
    """RabbitMQ (AMQP 0-9-1): one queue, optionally bound to an exchange."""

    schemes = ("amqp", "amqps")

    broker: Literal["rabbitmq"] = Field(description="`rabbitmq`.")
    queue: Name = Field(description="The queue to consume (declared durable unless `passive`).")
    passive: bool = Field(False, description="Only check that the queue exists; never declare it.")
    exchange: Name | None = Field(None, description="Bind the queue to this exchange.")
    exchange_type: Literal["direct", "topic", "fanout", "headers"] | None = Field(
        None, description="Declare the exchange (durable) with this type; else it must exist."
    )
    routing_key: str | None = Field(
        None, max_length=255, description="Binding key; default the queue name."
    )
    prefetch: int = Field(10, ge=1, le=10_000, description="Unacknowledged messages in flight.")

    def _cross_problems(self) -> list[InitErrorDetails]:
        problems = super()._cross_problems()
        if self.exchange is None:
            for name in ("exchange_type", "routing_key"):
                if getattr(self, name) is not None:
                    problems.append(_problem(name, "needs an `exchange`"))
        return problems


_MQTT_FILTER = re.compile(r"^(#|([^#+/]*|\+)(/([^#+/]*|\+))*(/#)?)$")


class MQTTConfig(QueueConfig):
    """MQTT: one topic filter, QoS 1 on a persistent session."""

    schemes = ("mqtt", "mqtts", "tcp", "ssl")

    broker: Literal["mqtt"] = Field(description="`mqtt`.")
    topic: Annotated[str, Field(min_length=1, max_length=65_535)] = Field(
        description="Topic filter; `+` and `#` wildcards allowed."
    )
    qos: Literal[0, 1, 2] = Field(1, description="Subscription QoS; 0 gives at-most-once.")
    client_id: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        None, description="Stable client id of the persistent session; default derived from "
        "the URL and topic.",
    )
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive interval.")

    @field_validator("topic")
    @classmethod
    def _filter(cls, topic: str) -> str:
        if not _MQTT_FILTER.match(topic):
            raise ValueError("`+` must fill a whole level and `#` must be the last level")
        return topic



def _nats_subject_ok(subject: str) -> bool:
    parts = subject.split(".")
    for index, part in enumerate(parts):
        if not part or any(c.isspace() for c in part):
            return False
        if (">" in part and (part != ">" or index != len(parts) - 1)) or (
            "*" in part and part != "*"
        ):
            return False
    return True


class NATSConfig(QueueConfig):
    """NATS: a JetStream durable pull consumer, or a plain core subscription."""

    schemes = ("nats", "tls")

    broker: Literal["nats"] = Field(description="`nats`.")
    mode: Literal["jetstream", "core"] = Field(
        "jetstream", description="`jetstream` (durable, at least once) or `core` (at most once)."
    )
    subject: Annotated[str, Field(min_length=1, max_length=1024)] = Field(
        description="Subject; `*` and `>` wildcards allowed."
    )
    stream: Name | None = Field(None, description="jetstream: the stream holding `subject`.")
    durable: Name | None = Field(None, description="jetstream: the durable consumer's name.")
    create: bool = Field(
        False, description="jetstream: create the stream (for `subject`) if it is missing."
    )
    queue_group: Name | None = Field(None, description="core: share messages in a queue group.")
    batch: int = Field(10, ge=1, le=1000, description="jetstream: messages fetched at once.")
    ack_wait_ms: int = Field(
        30_000, ge=1000, le=86_400_000,
        description="jetstream: redeliver a message not acknowledged in this time.",
    )

    @field_validator("subject")
    @classmethod
    def _subject(cls, subject: str) -> str:
        if not _nats_subject_ok(subject):
            raise ValueError("not a valid NATS subject (dot-separated tokens; `*` and `>` fill "
                             "a whole token, `>` only last)")
        return subject

    def _cross_problems(self) -> list[InitErrorDetails]:
        problems = super()._cross_problems()
        if self.mode == "jetstream":
            for name in ("stream", "durable"):
                if getattr(self, name) is None:
                    problems.append(_problem(name, f"jetstream mode needs a `{name}`"))
            if self.queue_group is not None:
                problems.append(_problem("queue_group", "only core mode takes this field"))
        else:
            for name in ("stream", "durable"):
                if getattr(self, name) is not None:
                    problems.append(_problem(name, "only jetstream mode takes this field"))
        return problems


_PG_CHANNEL_MAX = 63


class PostgresConfig(QueueConfig):
    """PostgreSQL LISTEN/NOTIFY on one channel (at most once)."""

    schemes = ("postgresql", "postgres")

    broker: Literal["postgres"] = Field(description="`postgres`.")
    channel: Annotated[str, Field(min_length=1, max_length=_PG_CHANNEL_MAX)] = Field(
        description="The channel to LISTEN on (case-sensitive, quoted)."
    )


MODELS: dict[str, type[QueueConfig]] = {
    "redis": RedisConfig,
    "rabbitmq": RabbitMQConfig,
    "mqtt": MQTTConfig,
    "nats": NATSConfig,
    "postgres": PostgresConfig,
}

AnyQueueConfig = RedisConfig | RabbitMQConfig | MQTTConfig | NATSConfig | PostgresConfig


def _message(error: Mapping[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def problems_of(definition: object, at: Sequence[str | int] = ()) -> tuple[
    AnyQueueConfig | None, list[Problem]
]:
    """The parsed config, or None and every problem found (paths start with `at`)."""
    prefix = tuple(at)
    if not isinstance(definition, Mapping):
        return None, [Problem(prefix, "a trigger is an object")]
    broker = definition.get("broker")
    model = MODELS.get(broker) if isinstance(broker, str) else None
    if model is None:
        allowed = ", ".join(BROKERS)
        got = "missing" if broker is None else f"{broker!r} is not one"
        return None, [Problem((*prefix, "broker"), f"{got}; use one of {allowed}")]
    try:
        config = model.model_validate(dict(definition))
    except ValidationError as error:
        problems = [
            Problem((*prefix, *(part for part in e["loc"])), _message(e))
            for e in error.errors(include_url=False)
        ]
        return None, problems
    return config, []  # type: ignore[return-value]

