"""RabbitMQ queue trigger (aio-pika): one durable queue, manual acknowledgement after `fire`.

The queue is declared durable (or only checked, `passive`) and optionally bound to an exchange.
A message is acked once its execution is stored, nacked with requeue when `fire` fails, and
rejected without requeue (dead-lettered, if the queue has a dead-letter exchange) when too large
or refused by the runtime.
The fire key is `rabbitmq:{queue}:{message_id}` when the publisher set a message_id.
"""

import aio_pika
import aio_pika.abc

from conv3n.model import JSON
from conv3n.triggers.queue import config, consumer, payload

CONNECT_TIMEOUT_S = 10.0

_PROPERTIES = (
    "message_id", "correlation_id", "content_type", "content_encoding", "app_id", "type",
    "user_id", "reply_to", "priority", "expiration",
)


def message_headers(message: aio_pika.abc.AbstractIncomingMessage) -> dict[str, JSON]:
    """Application headers, then the AMQP properties and delivery facts (these win)."""
    headers = payload.headers_of(message.headers)
    for name in _PROPERTIES:
        value = getattr(message, name, None)
        if value is not None:
            headers[name] = payload.header_value(value)
    if message.timestamp is not None:
        headers["timestamp"] = payload.header_value(message.timestamp)
    headers["exchange"] = message.exchange or ""
    headers["routing_key"] = message.routing_key or ""
    headers["redelivered"] = bool(message.redelivered)
    return headers


class RabbitMQTrigger(consumer.QueueConsumer[config.RabbitMQConfig]):
    """A RabbitMQ queue trigger."""

    async def consume(self, url: str) -> None:
        """Connect, declare and bind, deliver until the connection or channel is lost."""
        cfg = self.config
        reasons: list[BaseException] = []

        def closed(_sender: object, reason: BaseException | None = None) -> None:
            if reason is not None:
                reasons.append(reason)

        connection = await aio_pika.connect(
            url, timeout=CONNECT_TIMEOUT_S,
            client_properties={"connection_name": f"conv3n:{cfg.queue}"},
        )
        connection.close_callbacks.add(closed)
        async with connection:
            channel = await connection.channel()
            channel.close_callbacks.add(closed)
            await channel.set_qos(prefetch_count=cfg.prefetch)
            queue = await channel.declare_queue(cfg.queue, durable=True, passive=cfg.passive)
            if cfg.exchange is not None:
                if cfg.exchange_type is not None:
                    exchange = await channel.declare_exchange(
                        cfg.exchange, aio_pika.ExchangeType(cfg.exchange_type), durable=True
                    )
                else:
                    exchange = await channel.get_exchange(cfg.exchange, ensure=True)
                await queue.bind(exchange, routing_key=cfg.routing_key or cfg.queue)
            async with queue.iterator() as messages:
                self.connected()
                async for message in messages:
                    await self._message(message)
                    consumer.checkpoint()
        # The iterator ends quietly when the channel or connection closes: raise why.
        consumer.checkpoint()
        if reasons:
            raise reasons[0]

    async def _message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        cfg = self.config
        if self.oversized(len(message.body)):
            await message.reject(requeue=False)
            return
        event = payload.event(
            payload.decode(message.body), message.routing_key or cfg.queue,
            message_headers(message),
        )
        key = f"rabbitmq:{cfg.queue}:{message.message_id}" if message.message_id else None
        outcome = await self.deliver(event, key=key)
        if outcome == "stored":
            await message.ack()
            self.acknowledged()
        elif outcome == "refused":
            await message.reject(requeue=False)
        else:
            await message.nack(requeue=True)
            await self.after_failed_fire()

