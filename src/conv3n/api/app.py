"""`create_app(runtime)`: the FastAPI application, its error handlers, body limit and routers."""

import hmac

from fastapi import Depends, FastAPI, Request
from starlette.types import Receive, Scope, Send

from conv3n import __version__
from conv3n.api.bodies import BodyLimit
from conv3n.api.errors import error_body, install_error_handlers
from conv3n.api.webhook_path import is_webhook, serve_webhook
from conv3n.errors import Unauthorized
from conv3n.runtime.service import Runtime

__all__ = ["Conv3nAPI", "create_app", "error_body"]


class Conv3nAPI(FastAPI):
    """FastAPI, with webhook requests answered before its middleware and routing.

    /webhook/* is the path a server's load comes through, and it needs none of FastAPI's
    per-request machinery (dependencies, validation, telemetry, the exception middleware):
    `serve_webhook` reads, runs and answers, errors included, in SPEC's shape (8-10 % more
    webhooks per second in bench/server.py, decision 0010). Everything else is FastAPI's.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_webhook(scope):
            await serve_webhook(self.state.runtime, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    runtime: Runtime, *, api_token: str | None = None, max_request_bytes: int | None = None
) -> FastAPI:
    """The API on a running Runtime (the caller owns the Runtime's lifecycle).

    Args:
        api_token: when set, every /api/* request needs `Authorization: Bearer <token>`.
        max_request_bytes: the largest /api/* body (413 beyond; default: the runtime's
            CONV3N_MAX_REQUEST_BYTES).
    """
    from conv3n.api.routes import (
        blocks,
        executions,
        health,
        secrets,
        triggers,
        webhooks,
        workflows,
    )

    app = Conv3nAPI(
        title="conv3n",
        version=__version__,
        description="Self-hosted workflow automation: the HTTP API (SPEC §8).",
    )
    app.state.runtime = runtime

    async def authorize(request: Request) -> None:
        if api_token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.encode(), api_token.encode()
        ):
            raise Unauthorized("a valid `Authorization: Bearer <token>` header is required")

    guarded = [Depends(authorize)]
    app.include_router(webhooks.router)  # in /openapi.json; answered by Conv3nAPI.__call__
    app.include_router(health.router)
    app.include_router(workflows.router, prefix="/api", dependencies=guarded)
    app.include_router(executions.router, prefix="/api", dependencies=guarded)
    app.include_router(blocks.router, prefix="/api", dependencies=guarded)
    app.include_router(secrets.router, prefix="/api", dependencies=guarded)
    app.include_router(triggers.router, prefix="/api", dependencies=guarded)
    install_error_handlers(app)
    limit = max_request_bytes or runtime.settings.max_request_bytes
    app.add_middleware(BodyLimit, max_bytes=limit)
    return app
