"""`create_app(runtime)`: the FastAPI application, its error handlers, body limit and routers."""

import hmac

from fastapi import Depends, FastAPI, Request

from conv3n import __version__
from conv3n.api.bodies import BodyLimit
from conv3n.api.errors import error_body, install_error_handlers
from conv3n.errors import Unauthorized
from conv3n.runtime.service import Runtime

__all__ = ["create_app", "error_body"]


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

    app = FastAPI(
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
    # webhooks first: their one path pattern is the hot one, matched before the API's routes
    app.include_router(webhooks.router)
    app.include_router(health.router)
    app.include_router(workflows.router, prefix="/api", dependencies=guarded)
    app.include_router(executions.router, prefix="/api", dependencies=guarded)
    app.include_router(blocks.router, prefix="/api", dependencies=guarded)
    app.include_router(secrets.router, prefix="/api", dependencies=guarded)
    app.include_router(triggers.router, prefix="/api", dependencies=guarded)
    install_error_handlers(app)
    app.router.routes.insert(0, webhooks.direct_route())
    limit = max_request_bytes or runtime.settings.max_request_bytes
    app.add_middleware(BodyLimit, max_bytes=limit)
    return app
