"""Broker bytes -> the `queue` trigger's `$input` = `{message, topic, headers}`.

Pure: a body is JSON when it parses as JSON, else UTF-8 text, else `{"base64": "..."}`;
header values become JSON the same way. Every broker module builds its payload here.
"""

import base64
import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from conv3n.model import JSON

BINARY_KEY = "base64"


class MessageTooLarge(ValueError):
    """A message is larger than the trigger's `max_message_bytes`."""

    def __init__(self, size: int, limit: int):
        self.size = size
        self.limit = limit
        super().__init__(f"a message of {size} bytes exceeds max_message_bytes ({limit}); "
                         "no execution was started")


def _no_constant(name: str) -> JSON:
    # NaN and Infinity are not JSON: such a body is text.
    raise ValueError(name)


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e400 overflows to inf, which JSON cannot carry
        raise ValueError(text)
    return number


def decode(body: bytes | str) -> JSON:
    """A message body as JSON if it parses, else text, else the base64 form."""
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return {BINARY_KEY: base64.b64encode(body).decode("ascii")}
    else:
        text = body
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError):
        return text


def check_size(size: int, limit: int) -> None:
    """Raise MessageTooLarge when `size` bytes exceed `limit`."""
    if size > limit:
        raise MessageTooLarge(size, limit)


def header_value(value: object) -> JSON:
    """A broker header value as JSON: bytes are decoded like bodies, tables recursively."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return {BINARY_KEY: base64.b64encode(data).decode("ascii")}
    if isinstance(value, Mapping):
        return {str(k): header_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [header_value(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def headers_of(pairs: Mapping[Any, Any] | None) -> dict[str, JSON]:
    """Broker headers as a JSON object (None for none)."""
    if not pairs:
        return {}
    return {_key(k): header_value(v) for k, v in pairs.items()}


def _key(key: object) -> str:
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    return str(key)


def event(message: JSON, topic: str, headers: Mapping[str, JSON] | None = None) -> JSON:
    """The `$input` of one execution started by a queue trigger."""
    return {"message": message, "topic": topic, "headers": dict(headers or {})}
