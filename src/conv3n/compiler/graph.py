"""The connection graph: adjacency by port, start and sink nodes, cycle detection. Pure."""

from collections.abc import Sequence
from dataclasses import dataclass

from conv3n.model import Connection


@dataclass(frozen=True, slots=True)
class Graph:
    """Adjacency of a workflow's nodes (by index), built from valid connections only.

    Attributes:
        successors: for each node, {successor index: ports of this node that lead there}.
        predecessors: for each node, the distinct predecessor indexes.
    """

    successors: tuple[dict[int, frozenset[str]], ...]
    predecessors: tuple[tuple[int, ...], ...]

    @property
    def starts(self) -> tuple[int, ...]:
        """Nodes with no incoming connection."""
        return tuple(i for i, preds in enumerate(self.predecessors) if not preds)

    @property
    def sinks(self) -> tuple[int, ...]:
        """Nodes with no outgoing connection."""
        return tuple(i for i, succ in enumerate(self.successors) if not succ)


def build(size: int, edges: Sequence[tuple[int, str, int]]) -> Graph:
    """A Graph of `size` nodes from (source, port, target) edges."""
    successors: list[dict[int, set[str]]] = [{} for _ in range(size)]
    predecessors: list[dict[int, None]] = [{} for _ in range(size)]
    for source, port, target in edges:
        successors[source].setdefault(target, set()).add(port)
        predecessors[target][source] = None
    return Graph(
        successors=tuple({t: frozenset(p) for t, p in s.items()} for s in successors),
        predecessors=tuple(tuple(p) for p in predecessors),
    )


def find_cycle(graph: Graph) -> list[int] | None:
    """A list of node indexes forming a cycle (first repeated at the end), or None."""
    white, grey, black = 0, 1, 2
    color = [white] * len(graph.successors)
    parent: dict[int, int] = {}
    for root in range(len(color)):
        if color[root] != white:
            continue
        stack = [(root, iter(graph.successors[root]))]
        color[root] = grey
        while stack:
            node, children = stack[-1]
            for child in children:
                if color[child] == white:
                    color[child] = grey
                    parent[child] = node
                    stack.append((child, iter(graph.successors[child])))
                    break
                if color[child] == grey:
                    cycle = [child, node]
                    while node != child:
                        node = parent[node]
                        cycle.append(node)
                    cycle.reverse()
                    return cycle
            else:
                color[node] = black
                stack.pop()
    return None


def topological_order(graph: Graph) -> list[int]:
    """Node indexes so that every node comes after its predecessors (graph must be acyclic)."""
    indegree = [len(p) for p in graph.predecessors]
    ready = [i for i, d in enumerate(indegree) if d == 0]
    order: list[int] = []
    while ready:
        node = ready.pop()
        order.append(node)
        for child in graph.successors[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return order


def connection_label(connection: Connection) -> str:
    """`a -[port]-> b` for messages."""
    return f"{connection.source} -[{connection.port}]-> {connection.to}"
