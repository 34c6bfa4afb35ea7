"""custom/code in JavaScript and TypeScript: Bun, else Node (see `conv3n.blocks.custom.js`)."""

from typing import TYPE_CHECKING

from conv3n.blocks.custom.js import execute
from conv3n.model import JSON
from conv3n.sdk import Context

if TYPE_CHECKING:
    from conv3n.blocks.custom.code import CodeConfig


async def run(ctx: Context, config: "CodeConfig") -> JSON:
    """Run `config.code`'s `main(ctx)` on Bun or Node and return its value."""
    return await execute.run(ctx, config)
