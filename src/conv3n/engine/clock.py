"""The engine's clock: wall time for records, loop time for waiting. Tests fast-forward it."""

import asyncio
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Where the engine reads time and waits."""

    def now(self) -> datetime:
        """The current UTC time."""

    async def sleep(self, seconds: float) -> None:
        """Wait this long."""


class SystemClock:
    """Real time; `sleep` is `asyncio.sleep`, so looptime can fast-forward it in tests."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Wait on the event loop."""
        await asyncio.sleep(seconds)
