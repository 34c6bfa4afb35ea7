"""GET /health: the process answers and its database is reachable."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from conv3n import __version__

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """`{"status": "ok"}`, or 503 when the database is unreachable."""
    runtime = request.app.state.runtime
    database = await runtime.db.ping()
    body = {
        "status": "ok" if database else "unavailable",
        "version": __version__,
        "database": "ok" if database else "unreachable",
    }
    return JSONResponse(body, 200 if database else 503)
