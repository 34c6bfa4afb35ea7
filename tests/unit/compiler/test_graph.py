"""compiler/graph.py: adjacency, start and sink nodes, cycles, topological order."""

import pytest

from conv3n.compiler import graph
from conv3n.model import Connection


def build(size: int, *edges: tuple[int, int]) -> graph.Graph:
    return graph.build(size, [(a, "main", b) for a, b in edges])


def test_build_records_successor_ports_and_distinct_predecessors() -> None:
    g = graph.build(3, [(0, "true", 1), (0, "false", 1), (1, "main", 2)])
    assert g.successors[0] == {1: frozenset({"true", "false"})}
    assert g.predecessors[1] == (0,)
    assert g.predecessors[2] == (1,)


def test_starts_are_nodes_without_incoming_and_sinks_without_outgoing_connections() -> None:
    g = build(5, (0, 2), (1, 2), (2, 3))
    assert g.starts == (0, 1, 4)
    assert g.sinks == (3, 4)


def test_find_cycle_returns_none_for_a_dag() -> None:
    assert graph.find_cycle(build(4, (0, 1), (0, 2), (1, 3), (2, 3))) is None


def test_find_cycle_returns_the_cycle_with_its_first_node_repeated_at_the_end() -> None:
    cycle = graph.find_cycle(build(4, (0, 1), (1, 2), (2, 3), (3, 1)))
    assert cycle == [1, 2, 3, 1]


def test_find_cycle_finds_a_self_loop() -> None:
    assert graph.find_cycle(build(2, (0, 1), (1, 1))) == [1, 1]


def test_find_cycle_finds_a_cycle_not_reachable_from_the_first_node() -> None:
    cycle = graph.find_cycle(build(5, (0, 1), (2, 3), (3, 4), (4, 2)))
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {2, 3, 4}


def test_find_cycle_on_a_long_chain_does_not_recurse() -> None:
    size = 50_000
    chain = build(size, *((i, i + 1) for i in range(size - 1)))
    assert graph.find_cycle(chain) is None
    looped = build(size, *((i, (i + 1) % size) for i in range(size)))
    cycle = graph.find_cycle(looped)
    assert cycle is not None
    assert len(cycle) == size + 1


def test_topological_order_puts_every_node_after_its_predecessors() -> None:
    edges = [(0, 2), (1, 2), (2, 3), (0, 4), (4, 3), (5, 1)]
    g = build(6, *edges)
    order = graph.topological_order(g)
    assert sorted(order) == list(range(6))
    position = {node: i for i, node in enumerate(order)}
    for a, b in edges:
        assert position[a] < position[b]


def test_topological_order_of_a_graph_without_edges_lists_every_node() -> None:
    assert sorted(graph.topological_order(build(3))) == [0, 1, 2]


def test_topological_order_leaves_out_nodes_on_a_cycle() -> None:
    order = graph.topological_order(build(3, (0, 1), (1, 2), (2, 1)))
    assert order == [0]


@pytest.mark.parametrize(
    ("connection", "label"),
    [
        (Connection.model_validate({"from": "a", "to": "b"}), "a -[main]-> b"),
        (Connection.model_validate({"from": "c", "port": "true", "to": "d"}), "c -[true]-> d"),
    ],
)
def test_connection_label_shows_the_port(connection: Connection, label: str) -> None:
    assert graph.connection_label(connection) == label
