"""One function per SPEC §1 validation rule; each appends Problems with their exact place.

Pure. `plan.compile_workflow` calls them in order and raises once with everything found.
"""

from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from conv3n import expr
from conv3n.compiler import graph
from conv3n.compiler.document import pydantic_problems
from conv3n.errors import BlockTypeNotFound
from conv3n.model import Node, Problem, Workflow
from conv3n.sdk import ERROR_PORT, BlockRegistry, BlockSpec

Path = tuple[str | int, ...]
LOOP_NAMES = frozenset({"item", "index"})
MAX_CYCLE_SHOWN = 12


def resolve_types(
    workflow: Workflow, registry: BlockRegistry, problems: list[Problem], prefix: Path
) -> dict[int, BlockSpec]:
    """Block specs by node index; unknown types are problems at `nodes[i].type`."""
    specs: dict[int, BlockSpec] = {}
    for index, node in enumerate(workflow.nodes):
        try:
            specs[index] = registry.get(node.type)
        except BlockTypeNotFound:
            problems.append(
                Problem((*prefix, "nodes", index, "type"), f"unknown block type {node.type!r}")
            )
    return specs


def node_ids(workflow: Workflow, problems: list[Problem], prefix: Path) -> dict[str, int]:
    """Index by node id; a duplicate is a problem at the second `nodes[i].id`."""
    by_id: dict[str, int] = {}
    for index, node in enumerate(workflow.nodes):
        if node.id in by_id:
            problems.append(
                Problem(
                    (*prefix, "nodes", index, "id"),
                    f"duplicate node id {node.id!r} (also nodes[{by_id[node.id]}])",
                )
            )
        else:
            by_id[node.id] = index
    return by_id


def node_ports(node: Node, spec: BlockSpec | None) -> tuple[str, ...]:
    """The output ports a node offers: its block's, plus `error` under `on_error: route`."""
    ports = spec.ports_for(node.config) if spec else ()
    if node.on_error == "route" and ERROR_PORT not in ports:
        ports = (*ports, ERROR_PORT)
    return ports


def connections(
    workflow: Workflow,
    by_id: dict[str, int],
    ports: dict[str, tuple[str, ...]],
    specs: dict[int, BlockSpec],
    problems: list[Problem],
    prefix: Path,
) -> list[tuple[int, str, int]]:
    """Valid edges; missing nodes, unknown ports, self-loops and duplicates are problems."""
    edges: list[tuple[int, str, int]] = []
    seen: set[tuple[str, str, str]] = set()
    for index, conn in enumerate(workflow.connections):
        where = (*prefix, "connections", index)
        ok = True
        if conn.source not in by_id:
            problems.append(Problem((*where, "from"), f"no node has id {conn.source!r}"))
            ok = False
        if conn.to not in by_id:
            problems.append(Problem((*where, "to"), f"no node has id {conn.to!r}"))
            ok = False
        if not ok:
            continue
        source_index = by_id[conn.source]
        offered = ports[conn.source]
        if source_index in specs and conn.port not in offered:
            hint = ", ".join(offered) or "none"
            if conn.port == ERROR_PORT:
                hint += "; the error port needs `on_error: route` on the node"
            problems.append(
                Problem(
                    (*where, "port"),
                    f"node {conn.source!r} has no output port {conn.port!r} (ports: {hint})",
                )
            )
            continue
        if conn.source == conn.to:
            problems.append(Problem(where, f"node {conn.source!r} is connected to itself"))
            continue
        key = (conn.source, conn.port, conn.to)
        if key in seen:
            problems.append(Problem(where, f"duplicate connection {graph.connection_label(conn)}"))
            continue
        seen.add(key)
        edges.append((source_index, conn.port, by_id[conn.to]))
    return edges


def acyclic(
    workflow: Workflow, adjacency: graph.Graph, problems: list[Problem], prefix: Path
) -> None:
    """A cycle is a problem at the connection that closes it (loops are std/loop)."""
    cycle = graph.find_cycle(adjacency)
    if cycle is None:
        return
    ids = [workflow.nodes[i].id for i in cycle]
    closing = (ids[-2], ids[-1])
    shown = ids if len(ids) <= MAX_CYCLE_SHOWN else [*ids[:5], "...", *ids[-5:]]
    size = f" ({len(ids) - 1} nodes)" if len(ids) > MAX_CYCLE_SHOWN else ""
    where: Path = (*prefix, "connections")
    for index, conn in enumerate(workflow.connections):
        if (conn.source, conn.to) == closing:
            where = (*prefix, "connections", index)
            break
    problems.append(
        Problem(
            where,
            f"connections form a cycle{size}: {' -> '.join(shown)} (repeat work with std/loop)",
        )
    )


def config(
    node: Node,
    spec: BlockSpec,
    problems: list[Problem],
    where: Path,
    visible_ids: frozenset[str],
    in_loop: bool,
) -> expr.Compiled | None:
    """Compile a node's config, checking expressions and every expression-free field.

    A template that does not parse does not hide the config's other problems: the other
    expressions are still checked for references, and the fields without `{{` against the
    block's schema.
    """
    base = (*where, "config")
    compiled: expr.Compiled | None = None
    try:
        compiled = expr.compile_config(node.config, skip=spec.raw_fields)
        expressions = list(compiled.expressions)
        dynamic = [path for path, _ in expressions]
        value: Any = compiled.value
    except expr.ConfigParseErrors as exc:
        for path, error in exc.errors:
            problems.append(
                Problem((*base, *path), f"{error.message} in {{{{ {error.expression} }}}}")
            )
        expressions = list(_parsable_expressions(node.config, spec.raw_fields))
        dynamic = [
            path
            for key, child in node.config.items()
            if key not in spec.raw_fields
            for path, text in expr.iter_strings(child, (key,))
            if "{{" in text
        ]
        value = node.config
    ok = compiled is not None
    for path, expression in expressions:
        for ref in sorted(expression.node_refs - visible_ids):
            problems.append(Problem((*base, *path), f"$node.{ref} names no node of this workflow"))
            ok = False
        if not in_loop and expression.dollars & LOOP_NAMES:
            used = sorted(expression.dollars & LOOP_NAMES)
            names = " and ".join(f"${n}" for n in used)
            verb = "exists" if len(used) == 1 else "exist"
            problems.append(Problem((*base, *path), f"{names} {verb} only inside a std/loop body"))
            ok = False
    try:
        spec.config_model.model_validate(value)
    except ValidationError as exc:
        for problem in pydantic_problems(exc, base):
            if not _under_expression(problem.path[len(base) :], dynamic):
                problems.append(problem)
                ok = False
    return compiled if ok else None


def _parsable_expressions(
    config: dict[str, Any], skip: frozenset[str]
) -> Iterator[tuple[Path, expr.Expression]]:
    """The expressions of every template that parses (when some other template does not)."""
    for key, child in config.items():
        if key in skip:
            continue
        for path, text in expr.iter_strings(child, (key,)):
            if "{{" not in text:
                continue
            try:
                template = expr.split_template(text)
            except expr.ParseError:
                continue
            for expression in template.expressions:
                yield path, expression


def _under_expression(loc: Sequence[str | int], dynamic: list[Path]) -> bool:
    """True if a validation error at `loc` may vanish once expressions are rendered."""
    loc = tuple(loc)
    for path in dynamic:
        n = min(len(path), len(loc))
        if path[:n] == loc[:n]:
            return True
    return False


def static_model(spec: BlockSpec, compiled: expr.Compiled) -> BaseModel | None:
    """The validated config when nothing in it needs rendering (validated once, reused)."""
    if not compiled.static:
        return None
    value: Any = compiled.value
    return spec.config_model.model_validate(value)
