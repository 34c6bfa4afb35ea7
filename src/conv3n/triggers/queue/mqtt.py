"""MQTT queue trigger (aiomqtt): one topic filter at QoS 1 on a persistent session.

The session is persistent (clean_session False, a stable client id), so messages published while
the trigger was disconnected arrive when it reconnects. Acknowledgement is manual: PUBACK is sent
only after `fire` returned. aiomqtt 2.x does not expose paho's manual_ack, so it is switched on
the paho client aiomqtt wraps. A failed fire ends the connection: the broker redelivers every
unacknowledged message on reconnect (MQTT has no nack).
"""

import hashlib
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
import paho.mqtt.client

from conv3n.model import JSON
from conv3n.triggers.queue import config, consumer, payload

CONNECT_TIMEOUT_S = 10.0


class FireFailed(Exception):
    """fire failed: reconnect so the broker redelivers the unacknowledged message."""


def default_client_id(url: str, topic: str) -> str:
    """`conv3n-` + 16 hex digits of the URL (without credentials) and topic: stable across
    restarts, so the broker keeps the session; 23 characters, the MQTT 3.1 limit."""
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port}{parts.path}|{topic}"
    return "conv3n-" + hashlib.sha256(where.encode()).hexdigest()[:16]


class MQTTTrigger(consumer.QueueConsumer[config.MQTTConfig]):
    """An MQTT topic trigger."""

    _resumed = False
    """Whether the broker kept this client's session at the last connect."""

    def _client(self, url: str) -> aiomqtt.Client:
        cfg = self.config
        parts = urlsplit(url)
        secure = parts.scheme.lower() in ("mqtts", "ssl")
        client = aiomqtt.Client(
            parts.hostname or "127.0.0.1",
            parts.port or (8883 if secure else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            identifier=cfg.client_id or default_client_id(url, cfg.topic),
            clean_session=False,
            keepalive=cfg.keepalive_s,
            timeout=CONNECT_TIMEOUT_S,
            tls_params=aiomqtt.TLSParameters() if secure else None,
        )
        paho_client = self._paho(client)
        # PUBACK after fire, not when the message arrives (paho 2's manual_ack).
        paho_client.manual_ack_set(True)
        # aiomqtt drops CONNACK's session-present flag; keep it (see `_message`).
        aiomqtt_on_connect = paho_client.on_connect

        def on_connect(*args: Any) -> None:
            self._resumed = bool(args[2].session_present)
            if aiomqtt_on_connect is not None:
                aiomqtt_on_connect(*args)

        paho_client.on_connect = on_connect
        return client

    @staticmethod
    def _paho(client: aiomqtt.Client) -> paho.mqtt.client.Client:
        return client._client

    async def consume(self, url: str) -> None:
        """Connect with the persistent session, subscribe, deliver until disconnected."""
        async with self._client(url) as client:
            await client.subscribe(self.config.topic, qos=self.config.qos)
            self.connected()
            async for message in client.messages:
                await self._message(client, message)
                consumer.checkpoint()

    async def _message(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        body = message.payload
        data = bytes(body) if isinstance(body, bytes | bytearray) else str(body).encode()
        if self.oversized(len(data)):
            self._paho(client).ack(message.mid, message.qos)  # dropped, and reported
            return
        if message.retain and self._resumed:
            # Re-subscribing on a resumed session makes the broker send the topic's retained
            # message again (MQTT 3.1.1 §3.8.4), flagged retain; it was fired when first
            # received. New messages for an existing subscription arrive with retain unset.
            self._paho(client).ack(message.mid, message.qos)
            return
        headers: dict[str, JSON] = {"qos": message.qos, "retain": bool(message.retain),
                                    "mid": message.mid}
        properties = getattr(message.properties, "UserProperty", None)
        if properties:
            headers.update({str(k): payload.header_value(v) for k, v in properties})
        event = payload.event(payload.decode(data), message.topic.value, headers)
        if await self.deliver(event, key=None) == "retry":
            await self.after_failed_fire()
            raise FireFailed(self.state.last_error or "fire failed")
        self._paho(client).ack(message.mid, message.qos)
        self.acknowledged()
