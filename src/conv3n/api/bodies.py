"""`BodyLimit`: /api/* request bodies larger than CONV3N_MAX_REQUEST_BYTES get 413.

A pure ASGI middleware, so the check happens before FastAPI reads (and buffers) a body. A
declared `Content-Length` over the limit is refused without reading anything; a chunked body
is read up to the limit and refused as soon as it passes it. Webhooks have their own limit
per trigger (`max_body_bytes`).
"""

from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conv3n.api.errors import error_body


class BodyLimit:
    """Refuse request bodies over `max_bytes` on paths under `prefix` with SPEC's 413 body."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, prefix: str = "/api/"):
        self.app = app
        self.max_bytes = max_bytes
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            # the server holds the client to its Content-Length: nothing more can arrive
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = error_body(
            "payload_too_large",
            f"the request body is larger than {self.max_bytes:,} bytes",
            {"limit": self.max_bytes},
        )
        await JSONResponse(body, 413, headers={"Connection": "close"})(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    headers: Any = scope.get("headers") or ()
    for name, value in headers:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None
