"""Shared by the commands that use storage: open a Runtime, run a coroutine with it."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def with_runtime(action: Callable[..., Awaitable[T]]) -> T:
    """Open a Runtime from the environment, run `action(runtime)`, close it."""
    from conv3n.runtime.service import Runtime

    async def main() -> T:
        async with Runtime() as runtime:
            return await action(runtime)

    return asyncio.run(main())
