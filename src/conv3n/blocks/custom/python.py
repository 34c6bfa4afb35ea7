"""custom/code in Python: a pool of pre-started worker processes (to be built)."""

from typing import TYPE_CHECKING

from conv3n.model import JSON
from conv3n.sdk import BlockError, Context

if TYPE_CHECKING:
    from conv3n.blocks.custom.code import CodeConfig


async def run(ctx: Context, config: "CodeConfig") -> JSON:
    """Run `config.code`'s `main(ctx)` in a pooled worker and return its value."""
    raise BlockError("custom/code in Python is not available yet")
