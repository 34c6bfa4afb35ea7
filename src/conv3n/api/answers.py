"""SPEC §8's error answers as Starlette responses, without FastAPI (the webhook path and the
front app of `conv3n serve` answer with these before FastAPI is even imported)."""

from typing import Any

from starlette.responses import JSONResponse

from conv3n.errors import Conv3nError, Overloaded


def error_body(
    error_type: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """SPEC §8's error shape: `{"error": {"type", "message", "details"}}`."""
    return {"error": {"type": error_type, "message": message, "details": details or {}}}


def error_response(exc: Conv3nError) -> JSONResponse:
    """conv3n's own error as SPEC's body with its status (a 429 also says `Retry-After`)."""
    headers = None
    if isinstance(exc, Overloaded):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse(
        error_body(exc.type, exc.message, exc.details), exc.http_status, headers=headers
    )


def internal_error() -> JSONResponse:
    """The answer to an unexpected exception (whose traceback the caller logs)."""
    return JSONResponse(error_body("internal_error", "an unexpected error occurred"), 500)
