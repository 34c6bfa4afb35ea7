"""`ExecutionLimits`: how many executions run at once, and how many may wait for a turn.

Two limits apply to every top-level execution a Runtime starts: a global one (per process,
CONV3N_MAX_CONCURRENCY) and a workflow's own `settings.concurrency`. An execution that cannot
run at once waits in one bounded FIFO queue (CONV3N_MAX_QUEUED); when that queue is full,
`enter()` refuses synchronously with `Overloaded` (HTTP 429 with Retry-After) *before*
anything is stored, so an accepted execution is never dropped and memory stays bounded.

Fairness: waiters are served in arrival order, except that a waiter whose workflow is at its
own limit lets the ones behind it pass (no head-of-line blocking across workflows). A
newcomer only starts at once if every earlier waiter is blocked by its own workflow's limit.
Executions that were accepted earlier (resumes after a restart, due timers) enter with
`bounded=False`: they wait for a turn like everyone else but are never refused.
"""

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field

from conv3n.errors import Overloaded

RETRY_AFTER_S = 1
"""The Retry-After a refused request is given (seconds)."""


@dataclass(eq=False, slots=True)
class Ticket:
    """One execution's place: granted (it may run) or waiting in the queue.

    Use `await ticket.wait()` before running and `ticket.release()` when done (or when the
    execution is abandoned: a waiting ticket leaves the queue).
    """

    limits: "ExecutionLimits"
    workflow_id: str | None
    concurrency: int | None
    granted: bool = False
    released: bool = False
    _ready: asyncio.Future[None] | None = field(default=None, repr=False)

    @property
    def queued(self) -> bool:
        """Whether the execution waits for a turn."""
        return not self.granted and not self.released

    async def wait(self) -> None:
        """Until the execution may run (cancelling leaves the queue)."""
        if self.granted or self._ready is None:
            return
        try:
            await asyncio.shield(self._ready)
        except asyncio.CancelledError:
            self.release()
            raise

    def release(self) -> None:
        """Give the place back (idempotent); waiters behind may start."""
        if self.released:
            return
        self.released = True
        self.limits._release(self)


class ExecutionLimits:
    """The process's execution slots and its bounded queue.

    Attributes:
        max_running: executions running at once in this process.
        max_queued: executions that may wait for a slot; more are refused.
    """

    def __init__(self, max_running: int, max_queued: int):
        self.max_running = max_running
        self.max_queued = max_queued
        self.running = 0
        self._by_workflow: dict[str, int] = {}
        self._queue: deque[Ticket] = deque()

    @property
    def queued(self) -> int:
        """Executions waiting for a slot."""
        return len(self._queue)

    def snapshot(self) -> dict[str, int]:
        """Running and queued counts with their limits (for /health)."""
        return {
            "running": self.running,
            "queued": self.queued,
            "max_running": self.max_running,
            "max_queued": self.max_queued,
        }

    def enter(
        self, workflow_id: str | None, concurrency: int | None, *, bounded: bool = True
    ) -> Ticket:
        """A ticket for a new execution: granted at once when a slot is free, else queued.

        Raises:
            Overloaded: the queue is full (only when `bounded`); nothing was taken.
        """
        ticket = Ticket(self, workflow_id, concurrency)
        if self._fits(ticket):
            self._grant(ticket)
            return ticket
        if bounded and len(self._queue) >= self.max_queued:
            raise Overloaded(
                f"too many executions are waiting ({self.max_queued:,} queued): retry later",
                details={"queued": len(self._queue), "retry_after_s": RETRY_AFTER_S},
                retry_after_s=RETRY_AFTER_S,
            )
        ticket._ready = asyncio.get_running_loop().create_future()
        self._queue.append(ticket)
        return ticket

    def _fits(self, ticket: Ticket) -> bool:
        if self.running >= self.max_running:
            return False
        if ticket.workflow_id is None or ticket.concurrency is None:
            return True
        return self._by_workflow.get(ticket.workflow_id, 0) < ticket.concurrency

    def _grant(self, ticket: Ticket) -> None:
        ticket.granted = True
        self.running += 1
        if ticket.workflow_id is not None:
            self._by_workflow[ticket.workflow_id] = self._by_workflow.get(ticket.workflow_id, 0) + 1
        if ticket._ready is not None and not ticket._ready.done():
            ticket._ready.set_result(None)

    def _release(self, ticket: Ticket) -> None:
        if not ticket.granted:
            # left the queue before its turn (cancelled, or an idempotent repeat)
            with contextlib.suppress(ValueError):
                self._queue.remove(ticket)
            return
        self.running -= 1
        if ticket.workflow_id is not None:
            left = self._by_workflow[ticket.workflow_id] - 1
            if left:
                self._by_workflow[ticket.workflow_id] = left
            else:
                del self._by_workflow[ticket.workflow_id]
        self._serve_queue()

    def _serve_queue(self) -> None:
        """Grant every waiter that fits, in arrival order."""
        if not self._queue or self.running >= self.max_running:
            return
        kept: deque[Ticket] = deque()
        while self._queue:
            ticket = self._queue.popleft()
            if self.running < self.max_running and self._fits(ticket):
                self._grant(ticket)
            else:
                kept.append(ticket)
                if self.running >= self.max_running:
                    kept.extend(self._queue)
                    self._queue.clear()
        self._queue = kept
