"""`create_app(runtime)`: the FastAPI application, its one error handler and its routers."""

import hmac
import logging
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from conv3n import __version__
from conv3n.errors import Conv3nError, Unauthorized
from conv3n.runtime.service import Runtime

log = logging.getLogger("conv3n.api")


def create_app(runtime: Runtime, *, api_token: str | None = None) -> FastAPI:
    """The API on a running Runtime (the caller owns the Runtime's lifecycle).

    Args:
        api_token: when set, every /api/* request needs `Authorization: Bearer <token>`.
    """
    from conv3n.api.routes import blocks, executions, health, secrets, webhooks, workflows

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
    app.include_router(health.router)
    app.include_router(workflows.router, prefix="/api", dependencies=guarded)
    app.include_router(executions.router, prefix="/api", dependencies=guarded)
    app.include_router(blocks.router, prefix="/api", dependencies=guarded)
    app.include_router(secrets.router, prefix="/api", dependencies=guarded)
    app.include_router(webhooks.router)
    _error_handlers(app)
    return app


def error_body(
    error_type: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """SPEC §8's error shape: `{"error": {"type", "message", "details"}}`."""
    return {"error": {"type": error_type, "message": message, "details": details or {}}}


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Conv3nError)
    async def conv3n_error(_request: Request, exc: Conv3nError) -> JSONResponse:
        return JSONResponse(error_body(exc.type, exc.message, exc.details), exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"path": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        return JSONResponse(
            error_body("invalid_input", "the request is not valid", {"problems": problems}), 400
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(kind, str(exc.detail)), exc.status_code)

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in a request")
        return JSONResponse(error_body("internal_error", "an unexpected error occurred"), 500)
