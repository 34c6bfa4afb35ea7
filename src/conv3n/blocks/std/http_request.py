"""std/http_request: one HTTP call through the engine's shared connection pool (aiohttp)."""

import base64
import email.utils
import functools
import io
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote, urlencode

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from conv3n.blocks.std import timing
from conv3n.model import JSON
from conv3n.sdk import BlockError, Context, block

if TYPE_CHECKING:
    import aiohttp
    from multidict import CIMultiDictProxy

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
ERROR_BODY_CHARS = 4096
# One response header line may be this long (aiohttp's default, 8 KiB, is below what some
# APIs send in cookies and policies); a longer one fails the node.
MAX_HEADER_LINE = 64 * 1024
READ_CHUNK = 64 * 1024
# Statuses worth another attempt besides 5xx: the server may answer differently later.
RETRYABLE_STATUSES = frozenset({408, 425, 429})
# Content types that are text even without a charset.
TEXT_TYPES = ("text/", "json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "csv")


def _scalar_text(value: Any) -> Any:
    """Numbers and booleans (what `{{ len(x) }}` renders to) as header text; others unchanged."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return value


# RFC 9110 §5.1: field names are tokens; values may not hold CR, LF or NUL (header injection).
# std/respond uses the same types for its response headers.
HeaderName = Annotated[str, StringConstraints(pattern=r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")]
HeaderValue = Annotated[
    str, BeforeValidator(_scalar_text), StringConstraints(pattern=r"^[^\r\n\x00]*$")
]


class HttpRequestConfig(BaseModel):
    """Configuration of std/http_request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method = Field("GET", description="HTTP method.")
    url: AnyHttpUrl = Field(
        description="Absolute http(s) URL; may hold expressions and its own query string."
    )
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict, description="Request headers (names are case-insensitive)."
    )
    query: dict[str, JSON] = Field(
        default_factory=dict,
        description="Query parameters added to the URL's own (lists repeat the key).",
    )
    body: JSON = Field(None, description="Request body (see body_type); ignored for GET and HEAD.")
    body_type: Literal["json", "form", "text"] = Field(
        "json",
        description="json: the body as JSON; form: an object sent url-encoded (lists repeat "
        "the key); text: a string sent as is (other values as JSON text).",
    )
    credential: str | None = Field(
        None,
        description="Name of a stored secret sent as "
        "`Authorization: Bearer <value>` (or the whole header value "
        "when it starts with a scheme such as `Basic `).",
    )
    timeout_ms: int = Field(30_000, gt=0, le=600_000, description="Limit for one request.")
    fail_on_status: bool = Field(True, description="Fail the node on a status of 400 or more.")
    idempotency_header: HeaderName | None = Field(
        None, description="Send the node's idempotency key in this header (e.g. Idempotency-Key)."
    )
    max_response_bytes: int = Field(
        MAX_RESPONSE_BYTES,
        gt=0,
        le=1024 * 1024 * 1024,
        description="Larger responses fail the node.",
    )

    @model_validator(mode="after")
    def _form_is_an_object(self) -> "HttpRequestConfig":
        if self.body_type == "form" and self.body is not None and not isinstance(self.body, dict):
            # Located at `body` (a whole-config error would not name the place).
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("form_body", "a form body must be an object"),
                        loc=("body",),
                        input=self.body,
                    )
                ],
            )
        return self


@block("http_request")
async def http_request(ctx: Context, config: HttpRequestConfig) -> JSON:
    """Send one HTTP request and return `{status, headers, body}` (JSON bodies parsed)."""
    import aiohttp
    from multidict import CIMultiDict
    from yarl import URL

    # Case-insensitive, so a user's `content-type` is not sent twice.
    headers: CIMultiDict[str] = CIMultiDict(config.headers)
    if config.credential:
        token = await ctx.secret(config.credential)
        headers["Authorization"] = token if " " in token.strip() else f"Bearer {token}"
    if config.idempotency_header:
        headers[config.idempotency_header] = ctx.idempotency_key
    data: bytes | None = None
    if config.body is not None and config.method not in ("GET", "HEAD"):
        if config.body_type == "json":
            data = json.dumps(config.body, separators=(",", ":")).encode()
            headers.setdefault("Content-Type", "application/json")
        elif config.body_type == "form":
            fields = config.body if isinstance(config.body, dict) else {}
            data = urlencode(_pairs(fields), quote_via=quote).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        else:
            data = _text(config.body).encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    url = _with_query(str(config.url), _pairs(config.query))
    try:
        # encoded=True: the URL is sent as pydantic normalised it and _with_query encoded it.
        async with ctx.http.request(
            config.method,
            URL(url, encoded=True),
            headers=headers,
            # aiohttp writes a large bytes body in one call; a file object goes out in chunks.
            data=io.BytesIO(data) if data is not None and len(data) > 2**20 else data,
            timeout=aiohttp.ClientTimeout(total=config.timeout_ms / 1000),
            proxy=_proxy(config.url.scheme, config.url.host or ""),
            max_line_size=MAX_HEADER_LINE,
            max_field_size=MAX_HEADER_LINE,
        ) as reply:
            raw = await _read(reply, config.max_response_bytes)
            status = reply.status
            answer_headers = _headers(reply.headers)
            charset = reply.charset
    except TimeoutError:
        raise BlockError(
            f"{config.method} {url} timed out after {config.timeout_ms} ms",
            retryable=True,
            details={"url": url, "kind": "timeout"},
        ) from None
    except aiohttp.ClientError as exc:
        kind, retryable = _failure(exc)
        raise BlockError(
            f"{config.method} {url} failed: {_reason(exc)}",
            retryable=retryable,
            details={"url": url, "kind": kind},
        ) from None
    body = _decode(answer_headers.get("content-type", ""), charset, raw)
    if config.fail_on_status and status >= 400:
        retry_after = None
        if status in (429, 503):
            retry_after = _retry_after_ms(answer_headers.get("retry-after", ""), timing.now(ctx))
        raise BlockError(
            f"{config.method} {url} answered {status}",
            retryable=status in RETRYABLE_STATUSES or status >= 500,
            retry_after_ms=retry_after,
            details={"status": status, "body": _excerpt(body)},
        )
    return {"status": status, "headers": answer_headers, "body": body}


@functools.cache
def _env_proxies() -> dict[str, str]:
    """HTTP_PROXY, HTTPS_PROXY and NO_PROXY (any case), read once per process."""
    import urllib.request  # not at import time: it pulls in http.client and email

    return urllib.request.getproxies_environment()


def _proxy(scheme: str, host: str) -> str | None:
    """The proxy for a request to `host`, from the environment (None: connect directly)."""
    proxies = _env_proxies()
    if not proxies:
        return None
    # Not in typeshed; public in CPython (proxy_bypass reads the environment again each call).
    from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

    return None if proxy_bypass_environment(host, proxies) else proxies.get(scheme)


def _failure(exc: "aiohttp.ClientError") -> tuple[str, bool]:
    """The `details.kind` of a failed request, and whether another attempt may succeed."""
    import aiohttp

    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid_url", False  # a URL the client refuses: sending again cannot help
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "too_many_redirects", False
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect", True  # refused, unreachable, DNS
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "body", True  # the body broke off or did not decode
    if isinstance(exc, aiohttp.ClientResponseError):
        return "protocol", True  # a malformed answer (such as an oversized header)
    if isinstance(exc, aiohttp.ClientConnectionError):
        return "connection", True  # the server closed the connection mid-request
    return "client", False


def _reason(exc: BaseException) -> str:
    """An exception's message, without aiohttp's `ClientResponseError` prefix noise."""
    import aiohttp

    if isinstance(exc, aiohttp.ClientResponseError) and exc.message:
        return str(exc.message)
    return str(exc) or type(exc).__name__


def _headers(headers: "CIMultiDictProxy[str]") -> dict[str, str]:
    """Response headers as an object: names in lower case, repeated fields joined by `, `."""
    merged: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


def _pairs(fields: dict[str, JSON]) -> list[tuple[str, str]]:
    """Query or form fields as pairs; a list value repeats its key."""
    return [
        (key, _text(item))
        for key, value in fields.items()
        for item in (value if isinstance(value, list) else [value])
    ]


def _with_query(url: str, pairs: list[tuple[str, str]]) -> str:
    """`url` with `pairs` appended to its own query string (`params=` would replace it)."""
    if not pairs:
        return url
    base, hash_, fragment = url.partition("#")
    separator = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
    return f"{base}{separator}{urlencode(pairs, quote_via=quote)}{hash_}{fragment}"


async def _read(reply: "aiohttp.ClientResponse", limit: int) -> bytes:
    declared = reply.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BlockError(
            f"response of {int(declared):,} bytes is over the {limit:,} byte limit",
            details={"max_response_bytes": limit, "content_length": int(declared)},
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in reply.content.iter_chunked(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise BlockError(
                f"response is over the {limit:,} byte limit",
                details={"max_response_bytes": limit},
            )
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


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode(content_type: str, charset: str | None, raw: bytes) -> JSON:
    """JSON when the response says so and parses; text when it is text; else `{base64}`."""
    if not raw:
        return None
    content_type = content_type.lower()
    if "json" in content_type:
        try:
            return json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            pass
    textual = not content_type or charset is not None
    if textual or any(kind in content_type for kind in TEXT_TYPES):
        try:
            return raw.decode(charset or "utf-8")
        except (UnicodeDecodeError, LookupError):
            pass
    return {"base64": base64.b64encode(raw).decode()}


def _excerpt(body: JSON) -> JSON:
    """The response body for an error's details, cut to a readable size."""
    if isinstance(body, str):
        return body if len(body) <= ERROR_BODY_CHARS else body[:ERROR_BODY_CHARS] + "..."
    if len(json.dumps(body)) <= ERROR_BODY_CHARS:
        return body
    return "(truncated)"


def _retry_after_ms(value: str, now: datetime) -> float | None:
    """Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as ms from `now`."""
    value = value.strip()
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
    return max(0.0, (when - now).total_seconds() * 1000)
