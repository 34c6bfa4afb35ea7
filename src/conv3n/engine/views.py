"""`NodeViews`: `$node` as expressions see it, built from node records only when read.

Every finished node is visible to later expressions as `$node.<id>` ({data, status, error,
started_at, finished_at, duration_ms, attempts}). Most workflows read few of them (or
none), so the view of a node is made on first read from its record and kept, instead of a
dict per node on the engine's hot path.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from conv3n.model import NodeRecord


class NodeViews(Mapping[str, dict[str, Any]]):
    """The finished nodes of one Run by id, each as its `$node` view."""

    __slots__ = ("_made", "_records")

    def __init__(self) -> None:
        self._records: dict[str, NodeRecord] = {}
        self._made: dict[str, dict[str, Any]] = {}

    def set(self, node_id: str, record: NodeRecord) -> None:
        """Node `node_id` finished (again, on a resume) with `record`."""
        self._records[node_id] = record
        self._made.pop(node_id, None)

    def __getitem__(self, node_id: str) -> dict[str, Any]:
        view = self._made.get(node_id)
        if view is None:
            view = self._made[node_id] = _view(self._records[node_id])
        return view

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._records

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)


def _view(record: NodeRecord) -> dict[str, Any]:
    error = record.error
    return {
        "data": record.data,
        "status": record.status.value,
        "error": error.model_dump() if error is not None else None,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "duration_ms": record.duration_ms,
        "attempts": record.attempts,
    }
