"""PostgreSQL queue trigger: LISTEN on one channel, one execution per NOTIFY (at most once).

A psycopg async connection in autocommit mode LISTENs and reads `notifies()`. PostgreSQL keeps
no notification for a listener that is not connected, so what is sent while the trigger
reconnects is lost; every reconnect LISTENs again. TCP keepalive notices a vanished server.
"""

import re

import psycopg
from psycopg import sql

from conv3n.triggers.queue import config, consumer, payload

CONNECT_TIMEOUT_S = 10


def application_name(channel: str) -> str:
    """The connection's application_name (visible in pg_stat_activity)."""
    return f"conv3n:{channel}"[:63]


def libpq_url(url: str) -> str:
    """A SQLAlchemy-style `postgresql+psycopg://` URL as libpq reads it."""
    return re.sub(r"^(postgres(?:ql)?)\+[a-z0-9_]+://", r"\1://", url, flags=re.IGNORECASE)


class PostgresTrigger(consumer.QueueConsumer[config.PostgresConfig]):
    """A PostgreSQL LISTEN/NOTIFY trigger."""

    async def consume(self, url: str) -> None:
        """Connect, LISTEN, deliver every notification until the connection is lost."""
        channel = self.config.channel
        connection = await psycopg.AsyncConnection.connect(
            libpq_url(url), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
            application_name=application_name(channel),
            keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3,
        )
        async with connection:
            await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self.connected()
            async for notify in connection.notifies():
                consumer.checkpoint()
                data = notify.payload.encode()
                if self.oversized(len(data)):
                    continue
                event = payload.event(payload.decode(notify.payload), notify.channel,
                                      {"pid": notify.pid})
                await self.deliver(event, key=None)
        raise psycopg.OperationalError("the notification stream ended")
