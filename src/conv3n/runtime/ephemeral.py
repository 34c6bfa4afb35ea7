"""`DiscardingJournal`: the store journal of a server that persists nothing (CONV3N_PERSIST=off).

For benchmarks and throwaway setups only: executions run and webhooks answer as usual, but no
execution, node result or attempt is written, so nothing can be listed, resumed or retried
afterwards (an `Idempotency-Key` still stores its row, so repeats are still recognised).
Workflows, secrets and triggers are stored as usual.
"""

from datetime import datetime
from typing import Any

from conv3n.model import ErrorInfo, ExecutionRecord, NodeRecord
from conv3n.storage import StoreJournal


class DiscardingJournal(StoreJournal):
    """A StoreJournal that drops every execution event instead of writing it."""

    async def start(self) -> None:
        """No writer task is needed."""

    async def close(self) -> None:
        """Nothing is queued."""

    async def flush(self) -> None:
        """Nothing is queued."""

    def execution_created(self, row: dict[str, Any]) -> None:
        """Dropped."""

    async def execution_started(self, record: ExecutionRecord) -> None:
        """Dropped."""

    def node_started(
        self, execution_id: str, node_id: str, attempt: int, started_at: datetime
    ) -> None:
        """Dropped."""

    def attempt_failed(
        self, execution_id: str, node_id: str, attempt: int, error: ErrorInfo, retry_in_s: float
    ) -> None:
        """Dropped."""

    def node_finished(self, execution_id: str, node_id: str, record: NodeRecord) -> None:
        """Dropped."""

    async def execution_finished(self, record: ExecutionRecord) -> None:
        """Dropped."""
