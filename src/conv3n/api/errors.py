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

from conv3n.api.answers import error_body, error_response, internal_error
from conv3n.errors import Conv3nError

__all__ = ["error_body", "error_response", "install_error_handlers", "internal_error"]

log = logging.getLogger("conv3n.api")

_HTTP_KINDS = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


_ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message", "details"],
            "properties": {
                "type": {"type": "string", "description": "What went wrong, e.g. `not_found`."},
                "message": {"type": "string", "description": "For people."},
                "details": {"type": "object", "description": "For programs."},
            },
        }
    },
}
_STATUS_TEXT = {
    400: "The request is malformed (`details.problems` names each place).",
    401: "A valid `Authorization: Bearer <token>` header is required.",
    404: "Nothing is there.",
    409: "The request conflicts with the current state.",
    413: "The request body is too large.",
    422: "The workflow is invalid (`details.problems` lists every problem).",
    429: "Too many executions wait already: retry after `Retry-After` seconds.",
    500: "An unexpected error (its traceback is in the server's log, never in the answer).",
    503: "The database is unreachable.",
}
_WEBHOOK_STATUS = {
    202: "An async webhook's execution was accepted (`{execution_id}`).",
    500: "The execution failed: `{error, execution_id}`.",
}


def document_errors(app: FastAPI) -> None:
    """Declare the error answers of every operation in /openapi.json, so clients (and the
    schema fuzzer) know them: SPEC's error body for 4xx/5xx, webhooks' own 202 and 500."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, text in _STATUS_TEXT.items():
                    responses.setdefault(str(status), {"description": text, "content": error})
                if path.startswith("/webhook/"):
                    for status, text in _WEBHOOK_STATUS.items():
                        responses[str(status)] = {"description": text, "content": {"*/*": {}}}
                    responses["200"] = {
                        "description": "The std/respond node's answer, else the output as JSON.",
                        "content": {"*/*": {}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    """Make every error path of `app` answer in SPEC's shape (and say so in its schema)."""
    document_errors(app)

    @app.exception_handler(Conv3nError)
    async def conv3n_error(_request: Request, exc: Conv3nError) -> JSONResponse:
        return error_response(exc)

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
        return JSONResponse(error_body(kind, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in a request")
        return internal_error()
