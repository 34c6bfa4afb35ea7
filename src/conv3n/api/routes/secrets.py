"""Secrets: names are listed, values are only ever written."""

from typing import Any

from fastapi import APIRouter, Request, Response

from conv3n.api.schemas import SecretValue

router = APIRouter(tags=["secrets"])


@router.get("/secrets")
async def list_secrets(request: Request) -> list[dict[str, Any]]:
    """Secret names and times; never values."""
    rows = await request.app.state.runtime.secrets.names()
    return [{"name": r["name"], "updated_at": r["updated_at"].isoformat()} for r in rows]


@router.put(
    "/secrets/{name}",
    status_code=201,
    response_class=Response,
    responses={
        201: {"description": "Stored: there was no secret of that name."},
        204: {"description": "Replaced the secret of that name."},
    },
)
async def put_secret(request: Request, name: str, body: SecretValue) -> Response:
    """Store a secret encrypted at rest (201 when new, 204 when replaced)."""
    created = await request.app.state.runtime.secrets.set(name, body.value)
    return Response(status_code=201 if created else 204)


@router.delete("/secrets/{name}", status_code=204)
async def delete_secret(request: Request, name: str) -> Response:
    """Delete a secret."""
    await request.app.state.runtime.secrets.delete(name)
    return Response(status_code=204)
