"""`Frontier`: readiness, activation by port and skip propagation, without an event loop."""

from collections.abc import Iterable

from conv3n.engine import Frontier

Edge = tuple[int, str, int]


def frontier(size: int, edges: Iterable[Edge]) -> Frontier:
    """A frontier for `size` nodes and edges (from, port, to), as the compiler would build it."""
    successors: list[dict[int, set[str]]] = [{} for _ in range(size)]
    predecessors: list[list[int]] = [[] for _ in range(size)]
    for source, port, target in edges:
        successors[source].setdefault(target, set()).add(port)
        if source not in predecessors[target]:
            predecessors[target].append(source)
    return Frontier.of(
        tuple({t: frozenset(p) for t, p in s.items()} for s in successors),
        (tuple(p) for p in predecessors),
    )


def test_nodes_without_predecessors_are_the_starts():
    f = frontier(4, [(0, "main", 2), (1, "main", 2), (2, "main", 3)])
    assert f.starts() == [0, 1]


def test_node_is_not_ready_until_every_predecessor_finished():
    f = frontier(3, [(0, "main", 2), (1, "main", 2)])
    assert f.finish(0, {"main"}) == ([], [])
    assert f.finish(1, {"main"}) == ([2], [])


def test_node_runs_when_only_one_of_its_predecessors_activated_it():
    f = frontier(3, [(0, "main", 2), (1, "main", 2)])
    assert f.finish(0, set()) == ([], [])
    assert f.finish(1, {"main"}) == ([2], [])


def test_activation_by_an_earlier_predecessor_is_remembered():
    f = frontier(3, [(0, "main", 2), (1, "main", 2)])
    f.finish(0, {"main"})
    assert f.finish(1, set()) == ([2], [])


def test_only_the_connected_port_activates_a_successor():
    f = frontier(3, [(0, "true", 1), (0, "false", 2)])
    ready, skipped = f.finish(0, {"true"})
    assert ready == [1]
    assert skipped == [2]


def test_successor_connected_by_two_ports_runs_when_either_is_taken():
    f = frontier(2, [(0, "a", 1), (0, "b", 1)])
    assert f.finish(0, {"b"}) == ([1], [])


def test_node_whose_predecessors_took_other_ports_is_skipped():
    f = frontier(3, [(0, "a", 2), (1, "b", 2)])
    f.finish(0, {"b"})
    assert f.finish(1, {"a"}) == ([], [2])


def test_skip_propagates_down_a_chain():
    f = frontier(5, [(0, "a", 1), (1, "main", 2), (2, "main", 3), (3, "main", 4)])
    ready, skipped = f.finish(0, {"b"})
    assert ready == []
    assert sorted(skipped) == [1, 2, 3, 4]


def test_skip_propagation_stops_at_a_node_activated_by_another_branch():
    # 0 -a-> 1 -> 3 <- 2 <- 0 (main): 1 is skipped, 3 still runs through 2.
    f = frontier(4, [(0, "a", 1), (0, "main", 2), (1, "main", 3), (2, "main", 3)])
    ready, skipped = f.finish(0, {"main"})
    assert ready == [2]
    assert skipped == [1]
    assert f.finish(2, {"main"}) == ([3], [])


def test_skip_propagation_makes_a_join_ready_when_its_last_predecessor_is_skipped():
    # 0 -> 2 and 1 -a-> 3 -> 2: once 0 finished, skipping 3 decides 2 (activated by 0).
    f = frontier(4, [(0, "main", 2), (1, "a", 3), (3, "main", 2)])
    f.finish(0, {"main"})
    ready, skipped = f.finish(1, {"b"})
    assert skipped == [3]
    assert ready == [2]


def test_failed_node_activates_nothing_so_its_successors_are_skipped():
    f = frontier(3, [(0, "main", 1), (1, "main", 2)])
    assert f.finish(0, ()) == ([], [1, 2])


def test_error_port_activates_only_the_error_branch():
    f = frontier(3, [(0, "main", 1), (0, "error", 2)])
    assert f.finish(0, {"error"}) == ([2], [1])


def test_diamond_is_decided_once():
    f = frontier(4, [(0, "main", 1), (0, "main", 2), (1, "main", 3), (2, "main", 3)])
    ready, _ = f.finish(0, {"main"})
    assert sorted(ready) == [1, 2]
    assert f.finish(1, {"main"}) == ([], [])
    assert f.finish(2, {"main"}) == ([3], [])
