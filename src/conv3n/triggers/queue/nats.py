"""NATS queue trigger (nats-py): a JetStream durable pull consumer, or a core subscription.

JetStream: the stream is created for `subject` when missing and `create` is set; the durable
consumer (explicit ack) is created when missing. Messages are fetched in batches, acked after
`fire`, nak'd when it fails, terminated when too large. The fire key is
`nats:{stream}:{durable}:{stream sequence}`. Core mode is at most once. nats-py's own reconnect
is off: the trigger's loop reconnects, so the state shows `reconnecting`.
"""

import nats
import nats.aio.client
import nats.aio.msg
import nats.errors
import nats.js.api
import nats.js.errors

from conv3n.model import JSON
from conv3n.triggers.queue import config, consumer, payload

CONNECT_TIMEOUT_S = 10
POLL_S = 1.0
"""How long one fetch (or core read) waits; also how soon a lost connection is noticed."""


class ConnectionLost(ConnectionError):
    """The NATS connection closed."""


class NATSTrigger(consumer.QueueConsumer[config.NATSConfig]):
    """A NATS JetStream or core subscription trigger."""

    async def consume(self, url: str) -> None:
        """Connect, subscribe, deliver until the connection closes."""
        errors: list[BaseException] = []

        async def on_error(error: Exception) -> None:
            errors.append(error)

        client = await nats.connect(
            url, allow_reconnect=False, connect_timeout=CONNECT_TIMEOUT_S,
            name=f"conv3n:{self.config.subject}", error_cb=on_error,
        )
        try:
            if self.config.mode == "core":
                await self._core(client, errors)
            else:
                await self._jetstream(client, errors)
        finally:
            if not client.is_closed:
                await client.close()

    @staticmethod
    def _alive(client: nats.aio.client.Client, errors: list[BaseException]) -> None:
        if client.is_closed or not client.is_connected:
            raise ConnectionLost(str(errors[-1]) if errors else "the connection closed")

    async def _core(self, client: nats.aio.client.Client, errors: list[BaseException]) -> None:
        subscription = await client.subscribe(
            self.config.subject, queue=self.config.queue_group or ""
        )
        await client.flush()  # the server has the subscription before `running`
        self.connected()
        while True:
            consumer.checkpoint()
            self._alive(client, errors)
            try:
                message = await subscription.next_msg(timeout=POLL_S)
            except nats.errors.TimeoutError:
                continue
            if self.oversized(len(message.data)):
                continue
            event = payload.event(payload.decode(message.data), message.subject,
                                  payload.headers_of(message.headers))
            await self.deliver(event, key=None)  # at most once: nothing to return it to

    async def _jetstream(self, client: nats.aio.client.Client,
                         errors: list[BaseException]) -> None:
        cfg = self.config
        stream, durable = cfg.stream or "", cfg.durable or ""  # required in jetstream mode
        js = client.jetstream()
        if cfg.create:
            try:
                await js.stream_info(stream)
            except nats.js.errors.NotFoundError:
                await js.add_stream(name=stream, subjects=[cfg.subject])
        subscription = await js.pull_subscribe(
            cfg.subject, durable=durable, stream=stream,
            config=nats.js.api.ConsumerConfig(
                durable_name=durable,
                ack_policy=nats.js.api.AckPolicy.EXPLICIT,
                ack_wait=cfg.ack_wait_ms / 1000,
                filter_subject=cfg.subject,
            ),
        )
        self.connected()
        while True:
            consumer.checkpoint()
            self._alive(client, errors)
            try:
                messages = await subscription.fetch(cfg.batch, timeout=POLL_S)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            for index, message in enumerate(messages):
                if not await self._jetstream_message(stream, durable, message):
                    # Return the rest of the batch too, so it comes back now, in order,
                    # not after ack_wait.
                    for rest in messages[index + 1:]:
                        await rest.nak()
                    await self.after_failed_fire()
                    break

    async def _jetstream_message(self, stream: str, durable: str,
                                 message: nats.aio.msg.Msg) -> bool:
        """Fire and ack one message; False when fire failed (it was nak'd)."""
        if self.oversized(len(message.data)):
            await message.term()
            return True
        meta = message.metadata
        headers: dict[str, JSON] = payload.headers_of(message.headers)
        headers.update({"stream": meta.stream, "sequence": meta.sequence.stream,
                        "delivered": meta.num_delivered})
        event = payload.event(payload.decode(message.data), message.subject, headers)
        key = f"nats:{stream}:{durable}:{meta.sequence.stream}"
        outcome = await self.deliver(event, key=key)
        if outcome == "stored":
            # Wait for the server to confirm: an ack lost on the way would redeliver (and the
            # key would catch it), but a confirmed one keeps ack_pending honest.
            await message.ack_sync(timeout=CONNECT_TIMEOUT_S)
            self.acknowledged()
        elif outcome == "refused":
            await message.term()
        else:
            await message.nak()
            return False
        return True
