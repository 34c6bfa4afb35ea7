"""`TaskGroup`: asyncio's, minus a leaked cancellation request on Python < 3.13.

Used by `runner.Run` (a graph's node tasks) and `NodeContext.run_subgraph` (loop items).
Before 3.13, when a child fails while the parent already waits in `__aexit__`, the group
cancels the parent but never takes that request back (`uncancel()` runs before the wait).
The calling task then stays "cancelling", and a deadline the caller set around
`Engine.execute` raises CancelledError instead of TimeoutError. 3.13 moved the `uncancel()`
after the wait; this subclass does the same on older versions.
"""

import asyncio
import sys
from types import TracebackType

if sys.version_info >= (3, 13):
    TaskGroup = asyncio.TaskGroup
else:

    class TaskGroup(asyncio.TaskGroup):
        """`asyncio.TaskGroup` that takes back the parent cancellation it requested late."""

        async def __aexit__(
            self,
            et: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> None:
            requested_before = self._parent_cancel_requested  # type: ignore[attr-defined]
            try:
                await super().__aexit__(et, exc, tb)
            finally:
                if self._parent_cancel_requested and not requested_before:  # type: ignore[attr-defined]
                    self._parent_task.uncancel()  # type: ignore[attr-defined]
