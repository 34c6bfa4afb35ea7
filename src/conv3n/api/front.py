"""`Front`: the ASGI app `conv3n serve` listens with: webhooks from the first moment, the
management API's FastAPI app on its first request.

A server's load comes through /webhook/* (and its monitor through GET /health); neither needs
FastAPI, whose import and app (OpenAPI models, routers, dependencies) cost about a quarter of a
second and 20-odd MiB. So the front answers those two itself and builds the FastAPI app
(`create_app`) only when another path is first asked for, in a thread so webhooks keep being
answered meanwhile; requests arriving during the build wait for it, and it is built once. A
server that only serves webhooks never builds it.
"""

import asyncio
import gc
import logging
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from conv3n import __version__
from conv3n.api.answers import internal_error
from conv3n.api.webhook_path import is_webhook, serve_webhook
from conv3n.runtime.service import Runtime

HEALTH = "/health"
log = logging.getLogger("conv3n.api")


async def health_answer(runtime: Runtime) -> JSONResponse:
    """GET /health: `{"status": "ok"}`, or 503 when the database is unreachable;
    `executions` tells how many run and wait for a turn in this process, with the limits;
    `instance` names the process answering (`host:pid:random`, as in leases and trigger
    owners: with `serve --processes N` each process answers for itself)."""
    database = await runtime.db.ping()
    body: dict[str, Any] = {
        "status": "ok" if database else "unavailable",
        "version": __version__,
        "instance": runtime.instance,
        "database": "ok" if database else "unreachable",
        "executions": runtime.limits.snapshot(),
    }
    return JSONResponse(body, 200 if database else 503)


class Front:
    """/webhook/* and GET /health answered here; everything else by the app `build()` makes,
    built on the first request that needs it."""

    def __init__(self, runtime: Runtime, build: Callable[[], ASGIApp]):
        self.runtime = runtime
        self._build = build
        self._app: ASGIApp | None = None
        self._building: asyncio.Lock | None = None

    @property
    def built(self) -> bool:
        """True once the management API's app exists."""
        return self._app is not None

    async def app(self) -> ASGIApp:
        """The management API's app, built on the first call (in a thread, once)."""
        if self._app is not None:
            return self._app
        if self._building is None:
            self._building = asyncio.Lock()
        async with self._building:
            if self._app is None:
                self._app = await asyncio.to_thread(self._build)
                gc.freeze()  # the app lives as long as the process (see cli.serve.settle_heap)
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_webhook(scope):
            await serve_webhook(self.runtime, scope, receive, send)
            return
        if scope["type"] == "http":
            root = len(scope.get("root_path", ""))
            if scope["path"][root:] == HEALTH and scope["method"] in ("GET", "HEAD"):
                response = await health_answer(self.runtime)
                await response(scope, receive, send)
                return
        try:
            app = await self.app()
        except Exception:  # an import or configuration failure: answer, retry next request
            log.exception("the management API could not be built")
            if scope["type"] == "http":
                await internal_error()(scope, receive, send)
            return
        await app(scope, receive, send)
