"""`Plan`: a workflow compiled for the engine, and `compile_workflow`, which builds it.

Pure: no I/O, no clock. Every SPEC §1 validation rule runs here (see `checks`); the caller gets
a Plan or one WorkflowInvalid listing every problem with its place.
"""

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from conv3n import expr
from conv3n.compiler import checks, document, graph
from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON, Node, Problem, RetryPolicy, Workflow
from conv3n.sdk import BlockRegistry, BlockSpec

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True, eq=False)
class PlanNode:
    """One node, ready to run.

    Attributes:
        index: position in `Plan.nodes`.
        successors: {successor index: ports of this node that activate it}.
        predecessors: distinct predecessor indexes.
        config: the compiled config (renders its expressions per attempt).
        static_config: the validated config model when `config` holds no expressions.
        subplans: compiled sub-graphs by config field (std/loop's `body`).
    """

    index: int
    id: str
    node: Node
    spec: BlockSpec
    config: expr.Compiled
    static_config: BaseModel | None
    ports: tuple[str, ...]
    successors: dict[int, frozenset[str]]
    predecessors: tuple[int, ...]
    subplans: dict[str, "Plan"] = field(default_factory=dict)

    @property
    def retry(self) -> RetryPolicy | None:
        """The node's retry policy."""
        return self.node.retry

    @property
    def timeout_s(self) -> float | None:
        """Per-attempt timeout in seconds."""
        return self.node.timeout_ms / 1000 if self.node.timeout_ms else None


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    """A compiled workflow (or loop body): nodes by index, start and sink nodes.

    Attributes:
        source: where the workflow came from (a file path for relative sub-workflow refs).
    """

    workflow: Workflow
    nodes: tuple[PlanNode, ...]
    by_id: dict[str, int]
    starts: tuple[int, ...]
    sinks: tuple[int, ...]
    source: str | None = None

    @property
    def workflow_id(self) -> str | None:
        """The workflow's id, if it has one."""
        return self.workflow.id


def compile_workflow(
    workflow: Workflow, registry: BlockRegistry, *, source: str | None = None
) -> Plan:
    """Check a workflow against every SPEC §1 rule and compile it.

    Raises:
        WorkflowInvalid: every problem found, each with its place (`nodes[2].config.url`).
    """
    return _finish(workflow, [], registry, source)


def compile_document(data: JSON, registry: BlockRegistry, *, source: str | None = None) -> Plan:
    """Check workflow data (parsed JSON/YAML) against every SPEC §1 rule and compile it.

    Unlike `load_workflow` + `compile_workflow`, a structural problem (a malformed id, a field
    of the wrong type) does not hide the others: every problem is reported at once.

    Raises:
        WorkflowInvalid: every problem found, each with its place.
    """
    workflow, structural = document.check_structure(data)
    return _finish(workflow, structural, registry, source)


def _finish(
    workflow: Workflow | None,
    structural: list[Problem],
    registry: BlockRegistry,
    source: str | None,
) -> Plan:
    problems: list[Problem] = []
    plan = None
    if workflow is not None:
        plan = _compile(
            workflow,
            registry,
            _Findings(structural, problems),
            prefix=(),
            outer_ids=frozenset(),
            in_loop=False,
            source=source,
        )
    if structural or problems or plan is None:
        raise WorkflowInvalid(sort_problems([*structural, *_uncovered(problems, structural)]))
    return plan


@dataclass(frozen=True, slots=True)
class _Findings:
    """Problems found so far: `structural` (the document's shape) and `semantic` (the rest)."""

    structural: list[Problem]
    semantic: list[Problem]

    def __len__(self) -> int:
        return len(self.structural) + len(self.semantic)


def _uncovered(semantic: list[Problem], structural: list[Problem]) -> list[Problem]:
    """Semantic problems at places no structural problem covers.

    A broken document is checked on a salvaged copy; a problem found on a placeholder (the
    unknown type of a node whose `type` is malformed) would only repeat the structural one.
    """
    places = [p.path for p in structural]

    def covered(path: Path) -> bool:
        return any(path[: len(s)] == s or s[: len(path)] == path for s in places)

    return [p for p in semantic if not covered(p.path)]


_SECTIONS = {
    name: rank
    for rank, name in enumerate(
        ("version", "id", "name", "description", "settings", "triggers", "nodes", "connections")
    )
}


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """Problems in document order: by section, then node or connection index, at each level.

    `nodes[0].config.body.connections[1].to` sorts after `nodes[0].config.body.nodes[3].id`;
    problems at one place keep the order they were found in.
    """

    def key(problem: Problem) -> list[tuple[int, int]]:
        path = problem.path
        levels = []
        for position, part in enumerate(path):
            following = path[position + 1] if position + 1 < len(path) else None
            if isinstance(part, str) and part in _SECTIONS:
                if isinstance(following, int):
                    levels.append((_SECTIONS[part], following))
                elif position == 0:
                    levels.append((_SECTIONS[part], -1))
        return levels

    return sorted(problems, key=key)


def _compile(
    workflow: Workflow,
    registry: BlockRegistry,
    found: _Findings,
    *,
    prefix: Path,
    outer_ids: frozenset[str],
    in_loop: bool,
    source: str | None,
) -> Plan | None:
    before = len(found)
    problems = found.semantic
    specs = checks.resolve_types(workflow, registry, problems, prefix)
    by_id = checks.node_ids(workflow, problems, prefix)
    ports = {
        node.id: checks.node_ports(node, specs.get(i)) for i, node in enumerate(workflow.nodes)
    }
    edges = checks.connections(workflow, by_id, ports, specs, problems, prefix)
    adjacency = graph.build(len(workflow.nodes), edges)
    checks.acyclic(workflow, adjacency, problems, prefix)
    visible = outer_ids | frozenset(by_id)
    compiled: dict[int, tuple[expr.Compiled, BaseModel | None, dict[str, Plan]]] = {}
    for index, node in enumerate(workflow.nodes):
        spec = specs.get(index)
        if spec is None:
            continue
        where = (*prefix, "nodes", index)
        config = checks.config(node, spec, problems, where, visible, in_loop)
        subplans: dict[str, Plan] = {}
        for name in spec.subgraphs:
            body = _subgraph(node.config.get(name), (*where, "config", name), found)
            if body is None:
                continue
            subplan = _compile(
                body,
                registry,
                found,
                prefix=(*where, "config", name),
                outer_ids=visible,
                in_loop=True,
                source=source,
            )
            if subplan is not None:
                subplans[name] = subplan
        if config is not None:
            compiled[index] = (config, checks.static_model(spec, config), subplans)
    if len(found) > before:
        return None
    nodes = tuple(
        PlanNode(
            index=i,
            id=node.id,
            node=node,
            spec=specs[i],
            config=compiled[i][0],
            static_config=compiled[i][1],
            ports=ports[node.id],
            successors=adjacency.successors[i],
            predecessors=adjacency.predecessors[i],
            subplans=compiled[i][2],
        )
        for i, node in enumerate(workflow.nodes)
    )
    return Plan(
        workflow=workflow,
        nodes=nodes,
        by_id=by_id,
        starts=adjacency.starts,
        sinks=adjacency.sinks,
        source=source,
    )


def _subgraph(value: Any, where: Path, found: _Findings) -> Workflow | None:
    """A `{nodes, connections}` config field as a Workflow (salvaged if broken), or None."""
    if not isinstance(value, dict):
        found.structural.append(Problem(where, "must be an object with nodes and connections"))
        return None
    workflow, structural = document.check_structure({"version": 1, **value})
    found.structural.extend(Problem((*where, *p.path), p.message) for p in structural)
    return workflow
