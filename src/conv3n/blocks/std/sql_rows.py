"""JSON in and out of std/database: bound parameter values and result rows as JSON-safe values.

Rows come back as objects keyed by column name. Driver values become JSON as follows:

| database value | JSON |
|---|---|
| NULL, booleans, integers, text | as is |
| floating point (NaN, Infinity) | number (`"NaN"`, `"Infinity"`, `"-Infinity"` as strings) |
| DECIMAL / NUMERIC | string: `"12.30"` keeps every digit a float would round away |
| date, time, timestamp | ISO 8601 string (`2026-12-01T20:00:00+00:00`) |
| interval, MySQL TIME | ISO 8601 duration (`PT12H30M`, `-P1DT2H`) |
| bytes (BLOB, BYTEA) | `{"base64": "..."}` (as std/http_request returns binary bodies) |
| UUID, inet and anything else | its text (`str(value)`) |
| JSON / JSONB, arrays | JSON (items converted by the same rules) |

Parameters go the other way: JSON scalars are bound as they are, objects and lists as JSON text
(`CAST(:doc AS jsonb)`, `json_each(:ids)`, `JSON_CONTAINS(col, :ids)` read them).
"""

import base64
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from conv3n.model import JSON


def bind_value(value: JSON) -> Any:
    """A JSON parameter value as the driver binds it: objects and lists as JSON text."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


def bind_params(params: Mapping[str, JSON]) -> dict[str, Any]:
    """Every parameter ready for the driver."""
    return {name: bind_value(value) for name, value in params.items()}


def row_dict(keys: Sequence[str], row: Sequence[Any], json_columns: frozenset[int]) -> JSON:
    """One result row as an object (JSON text of `json_columns` parsed)."""
    out: dict[str, JSON] = {}
    for index, (key, value) in enumerate(zip(keys, row, strict=True)):
        if index in json_columns and isinstance(value, str | bytes):
            out[key] = _parsed(value)
        else:
            out[key] = to_json(value)
    return out


def _parsed(text: str | bytes) -> JSON:
    try:
        return to_json(json.loads(text))
    except ValueError:
        return to_json(text)


def to_json(value: Any) -> JSON:
    """A driver value as JSON (see the module's table)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return str(value)


def iso_duration(value: timedelta) -> str:
    """An ISO 8601 duration: `P1DT2H3M4.5S`, `PT0S`, `-PT30M`."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    days, micros = divmod(micros, 86_400_000_000)
    hours, micros = divmod(micros, 3_600_000_000)
    minutes, micros = divmod(micros, 60_000_000)
    seconds, micros = divmod(micros, 1_000_000)
    clock = ""
    if hours:
        clock += f"{hours}H"
    if minutes:
        clock += f"{minutes}M"
    if seconds or micros:
        fraction = f".{micros:06d}".rstrip("0") if micros else ""
        clock += f"{seconds}{fraction}S"
    if not days and not clock:
        return "PT0S"
    return f"{sign}P{f'{days}D' if days else ''}{f'T{clock}' if clock else ''}"
