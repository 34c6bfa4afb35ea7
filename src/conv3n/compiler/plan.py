"""`Plan`: a workflow compiled for the engine, and `compile_workflow`, which builds it.

Pure: no I/O, no clock. Every SPEC §1 validation rule runs here (see `checks`); the caller gets
a Plan or one WorkflowInvalid listing every problem with its place.
"""

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from conv3n import expr
from conv3n.compiler import checks, document, graph
from conv3n.errors import WorkflowInvalid
from conv3n.model import Node, Problem, RetryPolicy, Workflow
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
    problems: list[Problem] = []
    plan = _compile(
        workflow, registry, problems, prefix=(), outer_ids=frozenset(), in_loop=False, source=source
    )
    if problems or plan is None:
        raise WorkflowInvalid(problems)
    return plan


def _compile(
    workflow: Workflow,
    registry: BlockRegistry,
    problems: list[Problem],
    *,
    prefix: Path,
    outer_ids: frozenset[str],
    in_loop: bool,
    source: str | None,
) -> Plan | None:
    before = len(problems)
    specs = checks.resolve_types(workflow, registry, problems, prefix)
    by_id = checks.node_ids(workflow, problems, prefix)
    ports = {
        node.id: checks.node_ports(node, specs.get(i)) for i, node in enumerate(workflow.nodes)
    }
    edges = checks.connections(workflow, by_id, ports, specs, problems, prefix)
    adjacency = graph.build(len(workflow.nodes), edges)
    checks.acyclic(workflow, adjacency, problems, prefix)
    visible = outer_ids | set(by_id)
    compiled: dict[int, tuple[expr.Compiled, BaseModel | None, dict[str, Plan]]] = {}
    for index, node in enumerate(workflow.nodes):
        spec = specs.get(index)
        if spec is None:
            continue
        where = (*prefix, "nodes", index)
        config = checks.config(node, spec, problems, where, visible, in_loop)
        if config is None:
            continue
        subplans: dict[str, Plan] = {}
        for name in spec.subgraphs:
            body = _subgraph(node.config.get(name), where, name, problems)
            if body is None:
                continue
            subplan = _compile(
                body,
                registry,
                problems,
                prefix=(*where, "config", name),
                outer_ids=frozenset(visible),
                in_loop=True,
                source=source,
            )
            if subplan is not None:
                subplans[name] = subplan
        static = checks.static_model(spec, config)
        compiled[index] = (config, static, subplans)
    if len(problems) > before:
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


def _subgraph(value: Any, where: Path, name: str, problems: list[Problem]) -> Workflow | None:
    """A `{nodes, connections}` config field as a Workflow, or a problem."""
    if not isinstance(value, dict):
        problems.append(Problem((*where, "config", name), "must be {nodes, connections}"))
        return None
    try:
        return Workflow.model_validate({"version": 1, **value})
    except ValidationError as exc:
        problems.extend(document.pydantic_problems(exc, (*where, "config", name)))
        return None
