"""GET /api/blocks: the block types a workflow may use."""

from typing import Any

from fastapi import APIRouter, Request

from conv3n.runtime import describe_blocks

router = APIRouter(tags=["blocks"])


@router.get("/blocks")
async def blocks(request: Request) -> list[dict[str, Any]]:
    """Every block type with its ports and config JSON Schema."""
    return describe_blocks(request.app.state.runtime.registry)
