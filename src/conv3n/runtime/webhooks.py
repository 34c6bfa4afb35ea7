"""The index of webhook triggers of active workflows: which workflow a request starts."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from conv3n.model import Workflow

log = logging.getLogger("conv3n.webhooks")

MISS_REREAD_S = 1.0
"""At most one re-read of the active workflows per this many seconds for unknown paths."""

Route = tuple[str, str, dict[str, Any]]  # (method, workflow id, trigger)


class WebhookIndex:
    """Webhook triggers by path, rebuilt when workflows are saved or (de)activated."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Route]] = {}

    def rebuild(self, active: list[tuple[str, Workflow]]) -> None:
        """Index the webhook triggers of these (workflow id, workflow) pairs."""
        routes: dict[str, list[Route]] = {}
        for workflow_id, workflow in active:
            for trigger in workflow.triggers:
                if trigger.get("type") == "webhook" and isinstance(trigger.get("path"), str):
                    path = trigger["path"].strip("/")
                    method = str(trigger.get("method") or "POST").upper()
                    routes.setdefault(path, []).append((method, workflow_id, trigger))
        self._routes = routes

    def find(self, path: str, method: str) -> tuple[str, dict[str, Any]] | None:
        """(workflow id, trigger) listening on this path and method, if any."""
        for allowed, workflow_id, trigger in self._routes.get(path.strip("/"), ()):
            if allowed == method.upper():
                return workflow_id, trigger
        return None


class RereadOnMiss:
    """Re-read the active workflows when a webhook path is not in the index: another server
    process (`serve --processes`, or a second server on the same database) may have just
    activated its workflow, and the periodic sync would find it only seconds later.

    A flood of requests for unknown paths costs at most one database read per `every_s`:
    misses during a re-read wait for that one, misses after it until `every_s` has passed
    get no re-read (their 404 is immediate).
    """

    def __init__(self, reread: Callable[[], Awaitable[None]], *, every_s: float = MISS_REREAD_S):
        self._reread = reread
        self.every_s = every_s
        self.rereads = 0
        self._next_at = 0.0
        self._running: asyncio.Task[bool] | None = None

    async def __call__(self) -> bool:
        """Whether the index was re-read for this miss (False: not now, or it failed)."""
        running = self._running
        if running is None:
            now = time.monotonic()
            if now < self._next_at:
                return False
            self._next_at = now + self.every_s
            running = self._running = asyncio.create_task(self._run(), name="webhooks:reread")
        return await asyncio.shield(running)

    async def _run(self) -> bool:
        try:
            await self._reread()
            self.rereads += 1
            return True
        except Exception:  # the database is away: the request gets its 404
            log.warning("re-reading the active workflows failed", exc_info=True)
            return False
        finally:
            self._running = None
