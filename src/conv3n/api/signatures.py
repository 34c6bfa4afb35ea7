"""Standard Webhooks signature verification (webhook-id, webhook-timestamp, webhook-signature).

The signed content is `{id}.{timestamp}.{raw body}`, HMAC-SHA256 with the base64-decoded part
of a `whsec_…` secret; the header holds space-separated `v1,<base64>` signatures (any may
match, so keys can rotate). Timestamps more than 5 minutes away are refused (replays).
"""

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from conv3n.errors import InvalidInput, Unauthorized

TOLERANCE_S = 300


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret.

    Raises:
        InvalidInput: the secret is not `whsec_` + base64.
    """
    if not secret.startswith("whsec_"):
        raise InvalidInput("a webhook secret must look like whsec_<base64>")
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("a webhook secret must look like whsec_<base64>") from None


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of a message (what a sender puts in webhook-signature)."""
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> str:
    """Check a request's signature; returns its webhook-id.

    Raises:
        Unauthorized: a header is missing, the timestamp is stale, or no signature matches.
    """
    message_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not message_id or not stamp or not signatures:
        raise Unauthorized("webhook-id, webhook-timestamp and webhook-signature are required")
    if not stamp.isdigit():
        raise Unauthorized("webhook-timestamp must be whole seconds since 1970")
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > TOLERANCE_S:
        raise Unauthorized("webhook-timestamp is more than 5 minutes away from now")
    expected = sign(secret, message_id, timestamp, body).encode()
    for candidate in signatures.split():
        if hmac.compare_digest(candidate.encode(), expected):
            return message_id
    raise Unauthorized("no webhook-signature matches")
