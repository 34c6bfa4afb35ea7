"""Random DAGs against a reference evaluator of SPEC §2 (activation, skips, on_error, output).

Each node is a deterministic test block driven by its config (take port a/b/main, or fail), so
what must happen follows from the graph alone; a small pure evaluator below computes it and
the engine's record is compared with it node by node.
"""

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from conv3n.compiler import compile_workflow, load_workflow
from conv3n.engine import Engine, Frontier
from conv3n.errors import BlockError
from conv3n.model import JSON, ExecutionRecord, ExecutionStatus, NodeStatus
from conv3n.sdk import BlockRegistry, Context, Route, block

FINAL = {NodeStatus.SUCCESS, NodeStatus.ERROR, NodeStatus.SKIPPED, NodeStatus.CANCELLED}
RAN = {NodeStatus.SUCCESS, NodeStatus.ERROR}


class StepConfig(BaseModel):
    """What one random node does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: Literal["main", "a", "b"] = "main"
    fail: bool = False
    turns: int = 0


@block("step", ports=("main", "a", "b"))
async def step(ctx: Context, config: StepConfig) -> JSON | Route:
    """Yield `turns` times (to vary interleavings), then fail or send the node id to `port`."""
    for _ in range(config.turns):
        await asyncio.sleep(0)  # a bare loop turn, not a timed wait
    if config.fail:
        raise BlockError(f"{ctx.node_id} failed", retryable=False)
    if config.port == "main":
        return ctx.node_id
    return Route(config.port, ctx.node_id)


REGISTRY = BlockRegistry.of(step)


@dataclass(frozen=True)
class Spec:
    """One node of a generated graph."""

    port: str
    fail: bool
    on_error: str
    turns: int


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Spec, ...]
    edges: frozenset[tuple[int, str, int]]

    def document(self) -> dict[str, Any]:
        return {
            "version": 1,
            "nodes": [
                {
                    "id": f"n{i}",
                    "type": "test/step",
                    "config": {"port": n.port, "fail": n.fail, "turns": n.turns},
                    "on_error": n.on_error,
                }
                for i, n in enumerate(self.nodes)
            ],
            "connections": [
                {"from": f"n{i}", "port": port, "to": f"n{j}"} for i, port, j in sorted(self.edges)
            ],
        }


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    size = draw(st.integers(2, 25))
    nodes = []
    for _ in range(size):
        kind = draw(st.sampled_from(["ok", "route", "route", "fail"]))
        nodes.append(
            Spec(
                port=draw(st.sampled_from(["a", "b"])) if kind == "route" else "main",
                fail=kind == "fail",
                on_error=draw(st.sampled_from(["continue", "route", "continue", "route", "fail"])),
                turns=draw(st.integers(0, 2)),
            )
        )
    edges: set[tuple[int, str, int]] = set()
    for target in range(1, size):
        for _ in range(draw(st.integers(0, min(3, target)))):
            source = draw(st.integers(0, target - 1))
            ports = ["main", "a", "b"] + (["error"] if nodes[source].on_error == "route" else [])
            edges.add((source, draw(st.sampled_from(ports)), target))
    return Graph(tuple(nodes), frozenset(edges))


@dataclass(frozen=True)
class Expected:
    """The reference outcome of one node if the execution is not stopped."""

    status: NodeStatus
    ports: frozenset[str]
    data: JSON


def reference(graph: Graph) -> list[Expected]:
    """SPEC §2 evaluated in index order (a topological order: edges go from low to high)."""
    result: list[Expected] = []
    for j, spec in enumerate(graph.nodes):
        incoming = [(i, port) for i, port, target in graph.edges if target == j]
        runs = not incoming or any(port in result[i].ports for i, port in incoming)
        if not runs:
            result.append(Expected(NodeStatus.SKIPPED, frozenset(), None))
        elif spec.fail:
            ports = {"continue": {"main"}, "route": {"error"}, "fail": set()}[spec.on_error]
            result.append(Expected(NodeStatus.ERROR, frozenset(ports), None))
        else:
            result.append(Expected(NodeStatus.SUCCESS, frozenset({spec.port}), f"n{j}"))
    return result


def expected_output(graph: Graph, expected: list[Expected]) -> JSON:
    """SPEC §2: the single sink's data, else {sink id: data} over the sinks that ran."""
    sources = {i for i, _, _ in graph.edges}
    ran = [j for j in range(len(graph.nodes)) if j not in sources and expected[j].status in RAN]
    if len(ran) == 1:
        return expected[ran[0]].data
    return {f"n{j}": expected[j].data for j in ran}


async def run(graph: Graph) -> ExecutionRecord:
    plan = compile_workflow(load_workflow(graph.document()), REGISTRY)
    async with Engine() as engine:
        return await engine.execute(plan, None)


def activated(graph: Graph, record: ExecutionRecord, target: int) -> bool:
    """Whether some finished predecessor took a port connected to `target`."""
    for source, port, to in graph.edges:
        if to != target:
            continue
        pred = record.nodes[f"n{source}"]
        if pred.status in RAN and port in (pred.ports or ()):
            return True
    return False


PROFILE = settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROFILE
@given(graphs())
async def test_random_dag_follows_the_reference_semantics(graph: Graph):
    record = await run(graph)
    expected = reference(graph)
    ids = [f"n{j}" for j in range(len(graph.nodes))]
    assert set(record.nodes) == set(ids)

    for node_id in ids:
        assert record.nodes[node_id].status in FINAL, node_id

    fails = [
        j
        for j, (spec, exp) in enumerate(zip(graph.nodes, expected, strict=True))
        if exp.status is NodeStatus.ERROR and spec.on_error == "fail"
    ]
    assert (record.status is ExecutionStatus.ERROR) == bool(fails)
    assert record.status in (ExecutionStatus.SUCCESS, ExecutionStatus.ERROR)

    for j, node_id in enumerate(ids):
        node = record.nodes[node_id]
        if node.status is NodeStatus.SKIPPED:
            assert node.attempts == 0, node_id
        if node.status is NodeStatus.CANCELLED:
            # Only a stopped execution leaves nodes unfinished.
            assert record.status is ExecutionStatus.ERROR, node_id
            continue
        # Whatever did finish agrees with the reference, even in a stopped execution.
        assert node.status is expected[j].status, node_id
        assert frozenset(node.ports or ()) == expected[j].ports, node_id
        if node.status in RAN:
            assert node.attempts == 1, node_id
            assert node.data == expected[j].data, node_id
        ran = node.status in RAN
        starts = not any(to == j for _, _, to in graph.edges)
        assert ran == (starts or activated(graph, record, j)), node_id

    if record.status is ExecutionStatus.SUCCESS:
        assert record.error is None
        assert record.output == expected_output(graph, expected)
    else:
        assert record.error is not None
        assert record.error.node is not None
        failed = int(record.error.node[1:])
        assert failed in fails
        assert record.nodes[record.error.node].status is NodeStatus.ERROR
        assert record.output is None


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_frontier_decides_like_the_reference(graph: Graph):
    """The pure Frontier, fed in index order, runs and skips exactly what the reference does."""
    size = len(graph.nodes)
    successors: list[dict[int, set[str]]] = [{} for _ in range(size)]
    predecessors: list[set[int]] = [set() for _ in range(size)]
    for source, port, target in graph.edges:
        successors[source].setdefault(target, set()).add(port)
        predecessors[target].add(source)
    frontier = Frontier.of(
        tuple({t: frozenset(p) for t, p in s.items()} for s in successors),
        (tuple(sorted(p)) for p in predecessors),
    )
    expected = reference(graph)
    ready = set(frontier.starts())
    skipped: set[int] = set()
    for j in range(size):
        # Every node is decided before its turn comes, since its predecessors come first.
        assert (j in ready) != (j in skipped), j
        ports = expected[j].ports if j in ready else frozenset()
        if j in ready:
            more_ready, more_skipped = frontier.finish(j, ports)
            ready.update(more_ready)
            skipped.update(more_skipped)
        assert (j in skipped) == (expected[j].status is NodeStatus.SKIPPED), j
