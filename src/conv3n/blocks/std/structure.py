"""Structural blocks: std/loop (a sub-graph per item) and std/subworkflow (another workflow)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conv3n.model import JSON
from conv3n.sdk import BlockError, Context, block

MAX_LOOP_ITEMS = 1_000_000


class LoopConfig(BaseModel):
    """Configuration of std/loop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: JSON = Field(
        description="The list to iterate, usually {{ ... }}; an object iterates "
        "its [key, value] pairs."
    )
    concurrency: int = Field(1, ge=1, le=1000, description="Items running at once.")
    body: dict[str, Any] = Field(
        description="{nodes, connections} run once per item with $item and $index."
    )


@block("loop", subgraphs=("body",))
async def loop(ctx: Context, config: LoopConfig) -> JSON:
    """Run the body once per item; returns the body outputs in item order."""
    items = config.items
    if isinstance(items, dict):
        items = [[key, value] for key, value in items.items()]
    if items is None:
        items = []
    if not isinstance(items, list):
        raise BlockError(f"items must be a list, not {type(items).__name__}")
    if len(items) > MAX_LOOP_ITEMS:
        raise BlockError(f"more than {MAX_LOOP_ITEMS:,} items")
    return await ctx.run_subgraph("body", items, concurrency=config.concurrency)


class SubworkflowConfig(BaseModel):
    """Configuration of std/subworkflow."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workflow: str = Field(
        min_length=1,
        description="A workflow file path (relative to this "
        "workflow's file) or a stored workflow id.",
    )
    input: JSON = Field(None, description="The child's $input.")
    wait: bool = Field(True, description="Wait for the child's output (else return its id).")


@block("subworkflow")
async def subworkflow(ctx: Context, config: SubworkflowConfig) -> JSON:
    """Run another workflow with an input; returns its output (or `{execution_id}`)."""
    return await ctx.run_workflow(config.workflow, config.input, wait=config.wait)
