"""Retry, fork and resume decisions: which stored results a new run reuses, and what a resume
changes in a parked execution's records. Pure."""

from collections.abc import Mapping

from conv3n.compiler import Plan
from conv3n.engine.attempt import PARKED_KEY, PAYLOAD_KEY, WAIT_KEY
from conv3n.model import JSON, NodeRecord, NodeStatus


def reusable(record: NodeRecord) -> bool:
    """A stored result a retry or fork reuses instead of re-running."""
    if record.status is NodeStatus.SUCCESS:
        return True
    return record.status is NodeStatus.ERROR and bool(record.ports)


def downstream(plan: Plan, node_id: str) -> set[str]:
    """`node_id` and every node reachable from it."""
    seen = {plan.by_id[node_id]}
    stack = [plan.by_id[node_id]]
    while stack:
        for child in plan.nodes[stack.pop()].successors:
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return {plan.nodes[i].id for i in seen}


def apply_resume(
    records: Mapping[str, NodeRecord], payload: JSON, *, now: str, node: str | None = None
) -> list[str]:
    """Hand a resume to a parked execution's records, in place; the ids of the nodes resumed.

    Nodes waiting for a resume (std/wait) get the payload; `node` picks one of them. When none
    waits for a resume, parked timers (a long std/delay) end now instead.
    """
    parked = {
        node_id: record
        for node_id, record in records.items()
        if record.status is NodeStatus.RUNNING
        and isinstance(record.data, dict)
        and PARKED_KEY in record.data
    }
    waits = [
        node_id
        for node_id, record in parked.items()
        if isinstance(record.data, dict) and record.data.get(WAIT_KEY)
    ]
    if node is not None:
        if node not in waits:
            return []
        waits = [node]
    if waits:
        for node_id in waits:
            record = parked[node_id]
            record.data = {**record.data, PAYLOAD_KEY: payload}
        return waits
    for record in parked.values():
        record.data = {**record.data, PARKED_KEY: now}
    return list(parked)
