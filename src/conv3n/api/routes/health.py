"""GET /health: the process answers and its database is reachable."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from conv3n.api.front import health_answer
from conv3n.errors import NotFound

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(request: Request) -> Response:
    """Prometheus text format (404 when the server runs without metrics)."""
    collected = request.app.state.runtime.metrics
    if collected is None:
        raise NotFound("metrics are not collected by this process")
    body, content_type = collected.render()
    return Response(body, media_type=content_type)


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """`{"status": "ok"}`, or 503 when the database is unreachable; `executions` tells how
    many run and wait for a turn, with the limits."""
    return await health_answer(request.app.state.runtime)
