"""std/http_request: one HTTP call through the engine's shared connection pool (httpx)."""

import email.utils
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from conv3n.model import JSON
from conv3n.sdk import BlockError, Context, block

if TYPE_CHECKING:
    import httpx

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class HttpRequestConfig(BaseModel):
    """Configuration of std/http_request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method = Field("GET", description="HTTP method.")
    url: AnyHttpUrl = Field(description="Absolute http(s) URL; may hold expressions.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers.")
    query: dict[str, JSON] = Field(
        default_factory=dict, description="Query parameters (lists repeat the key)."
    )
    body: JSON = Field(None, description="Request body (see body_type).")
    body_type: Literal["json", "form", "text"] = Field("json", description="How body is sent.")
    credential: str | None = Field(
        None,
        description="Name of a stored secret sent as "
        "`Authorization: Bearer <value>` (or the whole header value "
        "when it starts with a scheme such as `Basic `).",
    )
    timeout_ms: int = Field(30_000, gt=0, le=600_000, description="Limit for one request.")
    fail_on_status: bool = Field(True, description="Fail the node on a status of 400 or more.")
    idempotency_header: str | None = Field(
        None, description="Send the node's idempotency key in this header (e.g. Idempotency-Key)."
    )
    max_response_bytes: int = Field(
        MAX_RESPONSE_BYTES,
        gt=0,
        le=1024 * 1024 * 1024,
        description="Larger responses fail the node.",
    )


@block("http_request")
async def http_request(ctx: Context, config: HttpRequestConfig) -> JSON:
    """Send one HTTP request and return `{status, headers, body}` (JSON bodies parsed)."""
    import httpx

    headers = dict(config.headers)
    if config.credential:
        token = await ctx.secret(config.credential)
        headers["Authorization"] = token if " " in token.strip() else f"Bearer {token}"
    if config.idempotency_header:
        headers[config.idempotency_header] = ctx.idempotency_key
    kwargs: dict[str, Any] = {}
    if config.body is not None and config.method not in ("GET", "HEAD"):
        if config.body_type == "json":
            kwargs["content"] = json.dumps(config.body, separators=(",", ":")).encode()
            headers.setdefault("Content-Type", "application/json")
        elif config.body_type == "form":
            if not isinstance(config.body, dict):
                raise BlockError("a form body must be an object of fields")
            kwargs["data"] = {k: _text(v) for k, v in config.body.items()}
        else:
            kwargs["content"] = _text(config.body).encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    params: list[tuple[str, str | int | float | bool | None]] = [
        (k, _text(v))
        for k, value in config.query.items()
        for v in (value if isinstance(value, list) else [value])
    ]
    url = str(config.url)
    try:
        async with ctx.http.stream(
            config.method,
            url,
            headers=headers,
            params=params,
            timeout=config.timeout_ms / 1000,
            **kwargs,
        ) as reply:
            raw = await _read(reply, config.max_response_bytes)
    except httpx.TimeoutException as exc:
        raise BlockError(
            f"{config.method} {url} timed out after {config.timeout_ms} ms",
            retryable=True,
            details={"url": url, "kind": type(exc).__name__},
        ) from None
    except httpx.TransportError as exc:
        raise BlockError(
            f"{config.method} {url} failed: {exc or type(exc).__name__}",
            retryable=True,
            details={"url": url, "kind": type(exc).__name__},
        ) from None
    status = reply.status_code
    body = _decode(reply, raw)
    if config.fail_on_status and status >= 400:
        retryable = status in (408, 425, 429) or status >= 500
        raise BlockError(
            f"{config.method} {url} answered {status}",
            retryable=retryable,
            retry_after_ms=_retry_after_ms(reply) if status in (429, 503) else None,
            details={"status": status, "body": body if len(raw) <= 4096 else "(truncated)"},
        )
    return {"status": status, "headers": dict(reply.headers), "body": body}


async def _read(reply: "httpx.Response", limit: int) -> bytes:
    declared = reply.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BlockError(f"response of {int(declared):,} bytes is over the {limit:,} byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in reply.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise BlockError(f"response is over the {limit:,} byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _text(value: JSON) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"))


def _decode(reply: "httpx.Response", raw: bytes) -> JSON:
    content_type = reply.headers.get("content-type", "").lower()
    if "json" in content_type and raw.strip():
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            pass
    if not raw:
        return None
    try:
        return raw.decode(reply.encoding or "utf-8")
    except (UnicodeDecodeError, LookupError):
        import base64

        return {"base64": base64.b64encode(raw).decode()}


def _retry_after_ms(reply: "httpx.Response") -> float | None:
    value = reply.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return int(value) * 1000.0
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds() * 1000)
