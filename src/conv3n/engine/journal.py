"""`Journal`: the engine's entire storage and observation contract.

The runner calls it as executions and nodes start and finish; storage (durability), the API's
live view and metrics implement it. Methods take `model` types only, so implementers never
import the engine. `Journals` fans one event out to several.

Node events (`node_started`, `attempt_failed`, `node_finished`) are plain calls: an
implementer queues or counts them and returns, and never makes a node wait (they come
several times per node, on the engine's hottest path). Execution events are awaited: that
is where a journal may hold an execution back (the store's backpressure, decision 0017).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from conv3n.model import ErrorInfo, ExecutionRecord, NodeRecord


class Journal(Protocol):
    """Receives every execution and node event, in order, for one engine."""

    async def execution_started(self, record: ExecutionRecord) -> None:
        """An execution began (its record has status `running` and no nodes yet)."""

    def node_started(
        self, execution_id: str, node_id: str, attempt: int, started_at: datetime
    ) -> None:
        """An attempt of a node began (queue it and return: never block)."""

    def attempt_failed(
        self, execution_id: str, node_id: str, attempt: int, error: ErrorInfo, retry_in_s: float
    ) -> None:
        """An attempt failed and will be retried after `retry_in_s` seconds (never block)."""

    def node_finished(self, execution_id: str, node_id: str, record: NodeRecord) -> None:
        """A node reached a final status; called before any successor starts (never block)."""

    async def execution_finished(self, record: ExecutionRecord) -> None:
        """An execution reached a final status; `record` is complete."""


class NullJournal:
    """Remembers nothing (one-shot `conv3n run` without storage)."""

    async def execution_started(self, record: ExecutionRecord) -> None:
        """Ignored."""

    def node_started(
        self, execution_id: str, node_id: str, attempt: int, started_at: datetime
    ) -> None:
        """Ignored."""

    def attempt_failed(
        self, execution_id: str, node_id: str, attempt: int, error: ErrorInfo, retry_in_s: float
    ) -> None:
        """Ignored."""

    def node_finished(self, execution_id: str, node_id: str, record: NodeRecord) -> None:
        """Ignored."""

    async def execution_finished(self, record: ExecutionRecord) -> None:
        """Ignored."""


class Journals:
    """Several journals as one, called in the order given."""

    def __init__(self, journals: Sequence[Journal]):
        self._journals = tuple(journals)

    async def execution_started(self, record: ExecutionRecord) -> None:
        """Forwarded to each."""
        for journal in self._journals:
            await journal.execution_started(record)

    def node_started(
        self, execution_id: str, node_id: str, attempt: int, started_at: datetime
    ) -> None:
        """Forwarded to each."""
        for journal in self._journals:
            journal.node_started(execution_id, node_id, attempt, started_at)

    def attempt_failed(
        self, execution_id: str, node_id: str, attempt: int, error: ErrorInfo, retry_in_s: float
    ) -> None:
        """Forwarded to each."""
        for journal in self._journals:
            journal.attempt_failed(execution_id, node_id, attempt, error, retry_in_s)

    def node_finished(self, execution_id: str, node_id: str, record: NodeRecord) -> None:
        """Forwarded to each."""
        for journal in self._journals:
            journal.node_finished(execution_id, node_id, record)

    async def execution_finished(self, record: ExecutionRecord) -> None:
        """Forwarded to each."""
        for journal in self._journals:
            await journal.execution_finished(record)
