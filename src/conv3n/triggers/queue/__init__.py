"""The `queue` trigger (SPEC §5): Redis, RabbitMQ, MQTT, NATS and PostgreSQL LISTEN/NOTIFY.

`validate(definition)` lists every problem of a trigger definition; `build(definition,
secret=...)` returns the running `Trigger`. A broker's client library is imported only when a
trigger of that broker is built. Delivery guarantees per broker: docs/triggers-queue.md.
"""

import importlib
from collections.abc import Mapping, Sequence

from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON, Problem
from conv3n.triggers import base
from conv3n.triggers.queue import config
from conv3n.triggers.queue.config import (
    MODELS,
    AnyQueueConfig,
    MQTTConfig,
    NATSConfig,
    PostgresConfig,
    QueueConfig,
    RabbitMQConfig,
    RedisConfig,
)
from conv3n.triggers.queue.consumer import Secret

_MODULES = {
    "redis": ("conv3n.triggers.queue.redis", "RedisTrigger"),
    "rabbitmq": ("conv3n.triggers.queue.rabbitmq", "RabbitMQTrigger"),
    "mqtt": ("conv3n.triggers.queue.mqtt", "MQTTTrigger"),
    "nats": ("conv3n.triggers.queue.nats", "NATSTrigger"),
    "postgres": ("conv3n.triggers.queue.postgres", "PostgresTrigger"),
}


def validate(definition: Mapping[str, JSON], at: Sequence[str | int] = ()) -> list[Problem]:
    """Every problem of a `queue` trigger definition; paths start with `at`
    (e.g. `("triggers", 0)` gives `triggers[0].topic`). Empty when it is valid."""
    return config.problems_of(definition, at)[1]


def parse(definition: Mapping[str, JSON], at: Sequence[str | int] = ()) -> AnyQueueConfig:
    """The definition as its broker's config model, or WorkflowInvalid naming each field."""
    parsed, problems = config.problems_of(definition, at)
    if parsed is None:
        raise WorkflowInvalid(problems, message="the queue trigger is not valid")
    return parsed


def build(
    definition: Mapping[str, JSON], *, secret: Secret, at: Sequence[str | int] = ()
) -> base.Trigger:
    """The trigger for `definition` (not yet running: the trigger manager awaits its `run`).

    Raises:
        WorkflowInvalid: the definition is not valid; each problem names its field.
    """
    parsed = parse(definition, at)
    module_name, class_name = _MODULES[parsed.broker]
    trigger_class = getattr(importlib.import_module(module_name), class_name)
    trigger: base.Trigger = trigger_class(parsed, secret=secret)
    return trigger


__all__ = [
    "MODELS",
    "AnyQueueConfig",
    "MQTTConfig",
    "NATSConfig",
    "PostgresConfig",
    "QueueConfig",
    "RabbitMQConfig",
    "RedisConfig",
    "build",
    "parse",
    "validate",
]
