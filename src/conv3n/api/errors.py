"""SPEC §8's error shape for every failure: `{"error": {"type", "message", "details"}}`.

One handler per kind of exception: conv3n's own errors carry their type and status (429s
add `Retry-After`), request validation gives 400 with every problem, Starlette's HTTP errors
(404, 405) keep their status, and anything else is a 500 whose traceback goes to the log
only.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from conv3n.errors import Conv3nError, Overloaded

log = logging.getLogger("conv3n.api")

_HTTP_KINDS = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_body(
    error_type: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """SPEC §8's error shape: `{"error": {"type", "message", "details"}}`."""
    return {"error": {"type": error_type, "message": message, "details": details or {}}}


def install_error_handlers(app: FastAPI) -> None:
    """Make every error path of `app` answer in SPEC's shape."""

    @app.exception_handler(Conv3nError)
    async def conv3n_error(_request: Request, exc: Conv3nError) -> JSONResponse:
        headers = None
        if isinstance(exc, Overloaded):
            headers = {"Retry-After": str(exc.retry_after_s)}
        body = error_body(exc.type, exc.message, exc.details)
        return JSONResponse(body, exc.http_status, headers=headers)

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
        kind = _HTTP_KINDS.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(kind, str(exc.detail)), exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in a request")
        return JSONResponse(error_body("internal_error", "an unexpected error occurred"), 500)
