"""How a server's executions end when the process stops, and what each one logs.

On SIGTERM `conv3n serve` stops taking requests, then `Runtime.shutdown(grace)` lets running
executions finish for the grace period. What is still running then is *parked for resume*,
not cancelled: its task is cancelled in a way the engine does not record (unfinished nodes
stay unrecorded, the execution stays `running` or `queued`), the journal is flushed so every
finished node's result is kept, and this process's leases are released so the next start's
`resume_interrupted` takes those executions at once instead of waiting for leases to expire.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from conv3n.model import ExecutionRecord, ExecutionStatus

log = logging.getLogger("conv3n.runtime")

_EXPECTED = {ExecutionStatus.SUCCESS, ExecutionStatus.WAITING}


async def drain(tasks: Callable[[], Collection["asyncio.Task[Any]"]], grace_s: float) -> int:
    """Wait up to `grace_s` for the tasks `tasks()` gives (asked again as they finish, so
    tasks started meanwhile count too); cancel those still running then and wait until they
    have stopped. Returns how many were cancelled."""
    deadline = time.monotonic() + grace_s
    while pending := [task for task in tasks() if not task.done()]:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_COMPLETED)
    pending = [task for task in tasks() if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return len(pending)


def log_finished(record: ExecutionRecord) -> None:
    """One line per finished (or parked) execution: at debug when it went as expected (a busy
    server finishes thousands a second), as a warning when it failed, without a traceback (a
    failing workflow is the user's business, not a crash)."""
    level = logging.DEBUG if record.status in _EXPECTED else logging.WARNING
    if not log.isEnabledFor(level):
        return
    fields: dict[str, Any] = {
        "status": record.status.value,
        "mode": record.mode,
        "duration_ms": round(record.duration_ms, 3) if record.duration_ms is not None else None,
    }
    if record.error is not None:
        fields["error_type"] = record.error.type
        fields["error_node"] = record.error.node
        fields["error_message"] = record.error.message
    log.log(level, "execution finished", extra=fields)
