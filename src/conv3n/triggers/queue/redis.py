"""Redis queue trigger: pub/sub channels (at most once) or a stream read by a consumer group.

Stream mode: the group is created with MKSTREAM if missing; entries are read with XREADGROUP and
acknowledged with XACK only after `fire` returned; this consumer's own pending entries are read
first, and entries other consumers left pending longer than `claim_idle_ms` are taken over with
XAUTOCLAIM (on connect and then periodically), so nothing stays pending forever.
"""

import os
import re
import socket
import time
from typing import Any

import redis.asyncio
import redis.exceptions
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from conv3n.model import JSON
from conv3n.triggers.queue import config, consumer, payload

BLOCK_MS = 2000
CONNECT_TIMEOUT_S = 10.0
KEEPALIVE: dict[int, int | bytes] = {
    option: value
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
    if (option := getattr(socket, name, None)) is not None
}
"""A broker that vanished without closing the connection is noticed within about a minute."""


def default_consumer() -> str:
    """`conv3n-{host}-{pid}`: unique per process, so a restarted process gets a new name and
    XAUTOCLAIM hands the dead one's entries over."""
    return f"conv3n-{socket.gethostname()}-{os.getpid()}"


def client_name(name: str) -> str:
    """The CLIENT SETNAME of a trigger's connection (visible in CLIENT LIST)."""
    return "conv3n:" + re.sub(r"[^A-Za-z0-9:_.\-]", "_", name)[:100]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


Entry = tuple[bytes, dict[bytes, bytes] | None]


def _entries(reply: Any) -> list[Entry]:
    """The entries of a one-stream XREADGROUP reply (RESP2 list or RESP3 dict form)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        (value,) = reply.values()
        return list(value[0]) if value and isinstance(value[0], list) else list(value)
    return list(reply[0][1])


class RedisTrigger(consumer.QueueConsumer[config.RedisConfig]):
    """A Redis pub/sub or stream trigger."""

    def _client(self, url: str) -> "redis.asyncio.Redis":
        name = self.config.channel if self.config.mode == "pubsub" else self.config.stream
        # No hidden retries inside redis-py: a lost connection ends `consume`, so the state
        # shows `reconnecting` and the reconnect follows the trigger's own backoff. No socket
        # timeout: reads block on purpose (SUBSCRIBE, XREADGROUP BLOCK), and redis-py wraps
        # timed writes in asyncio.wait_for, which loses cancellations on Python 3.11; TCP
        # keepalive notices a peer that vanished instead.
        return redis.asyncio.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=None,
            socket_keepalive=True,
            socket_keepalive_options=KEEPALIVE,
            retry=Retry(NoBackoff(), 0),
            client_name=client_name(name or "trigger"),
        )

    async def consume(self, url: str) -> None:
        """Connect, subscribe or join the group, deliver until the connection is lost."""
        async with self._client(url) as client:
            if self.config.mode == "pubsub":
                await self._pubsub(client)
            else:
                await self._stream(client)

    async def _pubsub(self, client: "redis.asyncio.Redis") -> None:
        channel = self.config.channel or ""  # required in pubsub mode by the model
        async with client.pubsub() as pubsub:
            if self.config.pattern:
                await pubsub.psubscribe(channel)
            else:
                await pubsub.subscribe(channel)
            await self._confirmed(pubsub)
            self.connected()
            while True:
                consumer.checkpoint()
                item = await pubsub.get_message(timeout=None)
                if item is None or item["type"] not in ("message", "pmessage"):
                    continue
                data: bytes = item["data"]
                if self.oversized(len(data)):
                    continue
                headers: dict[str, JSON] = {}
                if item.get("pattern") is not None:
                    headers["pattern"] = _text(item["pattern"])
                event = payload.event(payload.decode(data), _text(item["channel"]), headers)
                # At most once: pub/sub keeps nothing to redeliver, so a failed fire is reported
                # and the message is gone.
                await self.deliver(event, key=None)

    async def _confirmed(self, pubsub: PubSub) -> None:
        # Messages published before the server confirmed the subscription are not ours: wait
        # for the confirmation before reporting `running`.
        while True:
            item = await pubsub.get_message(timeout=CONNECT_TIMEOUT_S)
            if item is None:
                raise redis.exceptions.TimeoutError("no subscription confirmation")
            if item["type"] in ("subscribe", "psubscribe"):
                return

    async def _stream(self, client: "redis.asyncio.Redis") -> None:
        cfg = self.config
        stream, group = cfg.stream or "", cfg.group or ""  # required in stream mode
        name = cfg.consumer or default_consumer()
        try:
            await client.xgroup_create(stream, group, id="0" if cfg.from_beginning else "$",
                                       mkstream=True)
        except redis.exceptions.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self.connected()
        claim_every = max(cfg.claim_idle_ms / 1000, 1.0)
        next_claim = 0.0
        backlog = True  # this consumer's own pending entries come first
        while True:
            consumer.checkpoint()
            if time.monotonic() >= next_claim:
                backlog = await self._claim(client, stream, group, name) or backlog
                next_claim = time.monotonic() + claim_every
            start = "0" if backlog else ">"
            reply: Any = await client.xreadgroup(
                group, name, {stream: start}, count=cfg.batch,
                block=None if backlog else min(BLOCK_MS, int(claim_every * 1000)),
            )
            entries = _entries(reply)
            if backlog and not entries:
                backlog = False
                continue
            for entry_id, fields in entries:
                if not await self._entry(client, stream, group, _text(entry_id), fields):
                    backlog = True  # read it again from the pending list
                    await self.after_failed_fire()
                    break

    async def _claim(self, client: "redis.asyncio.Redis", stream: str, group: str,
                     name: str) -> bool:
        """Take over entries idle longer than claim_idle_ms; True when any were taken."""
        start: Any = "0-0"
        claimed = False
        while True:
            reply = await client.xautoclaim(stream, group, name, self.config.claim_idle_ms,
                                            start_id=start, count=100)
            start, entries = reply[0], reply[1]
            claimed = claimed or bool(entries)
            if _text(start) == "0-0":
                return claimed

    async def _entry(self, client: "redis.asyncio.Redis", stream: str, group: str,
                     entry_id: str, fields: dict[bytes, bytes] | None) -> bool:
        """Fire one entry and XACK it; False when fire failed (it stays pending)."""
        if not fields:
            # Trimmed or deleted while pending: nothing left to start.
            self.report(f"stream entry {entry_id} was deleted before it was processed")
            await client.xack(stream, group, entry_id)
            return True
        size = sum(len(k) + len(v) for k, v in fields.items())
        if self.oversized(size):
            # Acknowledged without an execution; the entry itself stays in the stream.
            await client.xack(stream, group, entry_id)
            return True
        decoded = {_text(k): v for k, v in fields.items()}
        headers: dict[str, JSON] = {"id": entry_id}
        field = self.config.field
        if field is not None:
            raw = decoded.pop(field, None)
            message = None if raw is None else payload.decode(raw)
            headers.update({k: payload.header_value(v) for k, v in decoded.items()})
        else:
            message = {k: payload.decode(v) for k, v in decoded.items()}
        event = payload.event(message, stream, headers)
        key = f"redis:{stream}:{self.config.group}:{entry_id}"
        if await self.deliver(event, key=key) == "retry":
            return False
        await client.xack(stream, group, entry_id)  # stored, or refused for good
        self.acknowledged()
        return True
