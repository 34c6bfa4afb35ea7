"""The stdin/stdout protocol of process blocks: one JSON object per line (docs/process-blocks.md).

Pure: builds request lines and reads the process's lines. conv3n writes
`{"id", "type": "run", "config", "input", "node_id", "execution_id", "idempotency_key",
"attempt"}`; the process may write `{"id", "log"}` lines, then answers `{"id", "ok": true,
"data", "port"?}` or `{"id", "ok": false, "error": {"message", "retryable", "details"}}`.
"""

import json
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conv3n.model import JSON

SHOWN_CHARS = 200
"""How much of a bad line an error message quotes."""


class ProtocolError(Exception):
    """The process broke the protocol (the message says how); it is not reused."""


@dataclass(frozen=True, slots=True)
class Request:
    """One run of a block, as sent to the process."""

    id: str
    config: dict[str, Any]
    input: JSON
    node_id: str
    execution_id: str
    idempotency_key: str
    attempt: int

    def line(self) -> bytes:
        """The request as one line of JSON, newline included."""
        body = {
            "id": self.id,
            "type": "run",
            "config": self.config,
            "input": self.input,
            "node_id": self.node_id,
            "execution_id": self.execution_id,
            "idempotency_key": self.idempotency_key,
            "attempt": self.attempt,
        }
        try:
            return orjson.dumps(body, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:
            # orjson refuses integers beyond 64 bits, which JSON (and Python) allow
            text = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            return text.encode("utf-8") + b"\n"


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str


class Log(_Message):
    """A log line of the process for the request's node."""

    log: str
    level: str = Field("info", max_length=32, description="debug, info, warning or error.")


class Success(_Message):
    """The request's result: `data`, on `port` (None: the block's first port)."""

    ok: Literal[True]
    data: Any = None
    port: str | None = Field(None, min_length=1, max_length=128)


class Failure(BaseModel):
    """The error of a failed request."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message: str = Field(min_length=1)
    retryable: bool = False
    details: dict[str, Any] = Field(default_factory=dict)


class Failed(_Message):
    """The request failed."""

    ok: Literal[False]
    error: Failure


Answer = Success | Failed


def read_line(line: bytes, request_id: str) -> Log | Answer:
    """The message in one stdout line of the process answering `request_id`.

    Raises:
        ProtocolError: the line is not JSON, not a protocol message, or for another request.
    """
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ProtocolError(f"wrote a line that is not JSON: {_shown(line)}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"wrote a line that is not a JSON object: {_shown(line)}")
    if "log" in data and "ok" not in data:
        kind: Any = Log
    elif data.get("ok") is True:
        kind = Success
    elif data.get("ok") is False:
        kind = Failed
    else:
        raise ProtocolError(
            f"wrote a line that is neither an answer (`ok`) nor a log line: {_shown(line)}"
        )
    try:
        message: Log | Answer = kind.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(
            f"wrote a malformed {kind.__name__.lower()} line: {_problems(exc)}"
        ) from None
    if message.id != request_id:
        raise ProtocolError(f"answered request {message.id!r} while {request_id!r} was asked")
    return message


def _problems(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"]) or "(line)"
        message = "required field is missing" if error["type"] == "missing" else error["msg"]
        parts.append(f"{loc}: {message}")
    return "; ".join(parts)


def _shown(line: bytes) -> str:
    text = line.decode("utf-8", errors="replace").rstrip("\r\n")
    if len(text) > SHOWN_CHARS:
        text = text[:SHOWN_CHARS] + f"... ({len(line):,} bytes)"
    return repr(text)
