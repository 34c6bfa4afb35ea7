"""GET /api/blocks: the block types a workflow may use."""

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(tags=["blocks"])


@router.get("/blocks")
async def blocks(request: Request) -> list[dict[str, Any]]:
    """Every block type with its ports and config JSON Schema."""
    registry = request.app.state.runtime.registry
    return [
        {
            "type": name,
            "description": spec.description,
            "ports": list(spec.ports),
            "dynamic_ports": spec.ports_from_config is not None,
            "config_schema": spec.json_schema(),
        }
        for name, spec in registry
    ]
