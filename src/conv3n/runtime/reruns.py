"""Retry and fork decisions: which stored results a new execution reuses. Pure."""

from conv3n.compiler import Plan
from conv3n.model import NodeRecord, NodeStatus


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
