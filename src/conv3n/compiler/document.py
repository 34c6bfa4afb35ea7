"""Parse workflow text (JSON or YAML) into a `Workflow`, reporting problems with their place.

Pure: takes text, returns models. YAML is read with a safe loader that refuses alias bombs,
duplicate keys and keeps dates as strings, so every document is plain JSON data.
"""

import json
import re
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON, Connection, Node, Problem, Workflow

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_ALIAS_EXPANSION = 100_000
"""Values that YAML aliases may add on top of the document's own (billion laughs guard)."""
MAX_DEPTH = 128
"""Deepest nesting of lists and objects a document may have."""

_PLACEHOLDER = "\x00"
"""Stands in for an id that is missing or not a string while salvaging a broken document."""


def _loader_base() -> type:
    """libyaml's parser (fast) under PyYAML's Python composer, else the pure-Python SafeLoader.

    Not CSafeLoader: its composer recurses in C and a document nested 100,000 deep crashes
    the process (segmentation fault); the Python composer stops with a RecursionError.
    """
    try:
        from yaml._yaml import CParser
    except ImportError:
        return yaml.SafeLoader

    class Base(Composer, CParser, SafeConstructor, Resolver):
        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            Composer.__init__(self)

    return Base


class _Loader(_loader_base()):  # type: ignore[misc]
    """A safe loader without timestamp resolution, with duplicate-key and alias-expansion checks."""

    def construct_document(self, node: yaml.Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                what = (
                    f"key {key_node.value!r}"
                    if isinstance(key_node, yaml.ScalarNode)
                    else "a list or mapping key"
                )
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"{what} is not a string (quote it: JSON keys are strings)",
                    key_node.start_mark,
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping

    def construct_not_json(self, node: yaml.Node) -> Any:
        raise yaml.constructor.ConstructorError(
            None, None, f"tag {node.tag} is not allowed: a workflow is JSON data", node.start_mark
        )


_MERGE_TAG = "tag:yaml.org,2002:merge"
_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in Resolver.yaml_implicit_resolvers.items()
}
for _tag in ("binary", "timestamp", "set", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _Loader.construct_not_json)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse alias bombs (billion laughs) and recursive aliases.

    A document may not expand, through aliases, to more than MAX_ALIAS_EXPANSION values beyond
    the ones it holds. Sizes are memoized per composed node: one pass over the unique nodes.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] - len(sizes) > MAX_ALIAS_EXPANSION:
                raise yaml.YAMLError(
                    f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION:,} extra values"
                )
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise yaml.YAMLError("a YAML alias refers to a value that contains it")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_text(text: str, *, name: str = "workflow") -> JSON:
    """JSON or YAML text -> data.

    Raises:
        WorkflowInvalid: the text is too large or not valid JSON/YAML (with line and column).
    """
    if len(text) > MAX_DOCUMENT_BYTES:
        raise WorkflowInvalid([Problem((), f"{name} is larger than {MAX_DOCUMENT_BYTES:,} bytes")])
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("{") or name.endswith(".json"):
        return _parse_json(stripped)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        if "nesting depth" in str(exc.problem):
            # PyYAML >= 6.0.4 bounds nesting itself; older versions hit RecursionError below
            raise WorkflowInvalid([Problem((), "YAML nests too deeply")]) from None
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise WorkflowInvalid([Problem((), f"not valid YAML{where}: {exc.problem}")]) from None
    except RecursionError:
        raise WorkflowInvalid([Problem((), "YAML nests too deeply")]) from None
    except yaml.YAMLError as exc:
        raise WorkflowInvalid([Problem((), f"not valid YAML: {exc}")]) from None


def _parse_json(text: str) -> JSON:
    try:
        return json.loads(text, object_pairs_hook=_json_object, parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise WorkflowInvalid([Problem((), f"not valid JSON ({where}): {exc.msg}")]) from None
    except RecursionError:
        raise WorkflowInvalid([Problem((), "JSON nests too deeply")]) from None
    except ValueError as exc:
        raise WorkflowInvalid([Problem((), f"not valid JSON: {exc}")]) from None


_PATTERN_HINTS = {
    "id": "must start with a letter or _ and hold only letters, digits and _",
    "type": "must be namespace/name in lowercase, e.g. std/http_request",
}
_WORKFLOW_ID_HINT = "must be a slug: lowercase letters, digits, - and _, not starting with - or _"


def pydantic_problems(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[Problem]:
    """One Problem per pydantic error, located under `prefix`, in words a user can act on."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if not _is_pydantic_tag(p))
        problems.append(Problem((*prefix, *loc), _message(error, loc)))
    return problems


def _message(error: Any, loc: tuple[str | int, ...]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    message = re.sub(r"^(Value error|Assertion failed), ", "", str(error["msg"]))
    if kind == "string_pattern_mismatch" and loc:
        if loc == ("id",):
            message = _WORKFLOW_ID_HINT
        elif loc[-1] in _PATTERN_HINTS:
            message = _PATTERN_HINTS[str(loc[-1])]
    value = error.get("input")
    if isinstance(value, str | int | float | bool) and not isinstance(value, dict):
        shown = repr(value)
        if len(shown) <= 60:
            message += f" (got {shown})"
    return message


def _is_pydantic_tag(part: str | int) -> bool:
    """Union/validator tags pydantic inserts into locations (`function-after[...]`, `str`)."""
    return isinstance(part, str) and ("[" in part or part in _TAGS)


_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "tuple"})


def too_deep(data: JSON, limit: int = MAX_DEPTH) -> tuple[str | int, ...] | None:
    """The place of the first value nested deeper than `limit`, or None. Iterative."""
    stack: list[tuple[JSON, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > limit:
            return path
        if isinstance(value, dict):
            stack.extend((child, (*path, str(key))) for key, child in value.items())
        elif isinstance(value, list):
            stack.extend((child, (*path, index)) for index, child in enumerate(value))
    return None


def check_structure(data: JSON) -> tuple[Workflow | None, list[Problem]]:
    """Validate data as a Workflow document, without stopping at the first broken part.

    Returns:
        The Workflow and no problems; or, when the structure is wrong, every structural
        problem plus a best-effort Workflow (None if nothing can be salvaged) so that the
        graph and block checks can still run and report everything at once.
    """
    deep = too_deep(data)
    if deep is not None:
        shown = deep[:6]
        return None, [Problem(shown, f"nests deeper than {MAX_DEPTH} levels")]
    try:
        return Workflow.model_validate(data), []
    except ValidationError as exc:
        return _salvage(data), pydantic_problems(exc)


def load_workflow(data: JSON) -> Workflow:
    """Validate data as a Workflow document.

    Raises:
        WorkflowInvalid: every structural problem, each with its place.
    """
    workflow, problems = check_structure(data)
    if problems or workflow is None:
        raise WorkflowInvalid(problems)
    return workflow


def parse_workflow(text: str, *, name: str = "workflow") -> Workflow:
    """Text -> validated Workflow model (structure only; `compile_workflow` checks the rest)."""
    return load_workflow(parse_text(text, name=name))


def _salvage(data: JSON) -> Workflow | None:
    """What can be read of a structurally broken document; broken parts become placeholders.

    Paths stay those of the original document; problems found on placeholders are dropped by
    the caller because a structural problem already covers their place.
    """
    if not isinstance(data, dict) or not isinstance(data.get("nodes", []), list):
        return None
    raw_connections = data.get("connections", [])
    nodes = [_salvage_node(raw, index) for index, raw in enumerate(data.get("nodes", []))]
    connections = (
        [_salvage_connection(raw) for raw in raw_connections]
        if isinstance(raw_connections, list)
        else []
    )
    return Workflow.model_construct(version=1, nodes=nodes, connections=connections)


def _salvage_node(raw: JSON, index: int) -> Node:
    if not isinstance(raw, dict):
        raw = {}
    on_error = raw.get("on_error")
    return Node.model_construct(
        id=raw["id"] if isinstance(raw.get("id"), str) else f"{_PLACEHOLDER}{index}",
        type=raw["type"] if isinstance(raw.get("type"), str) else "",
        config=raw["config"] if isinstance(raw.get("config"), dict) else {},
        on_error=on_error if on_error in ("fail", "continue", "route") else "fail",
    )


def _salvage_connection(raw: JSON) -> Connection:
    if not isinstance(raw, dict):
        raw = {}

    def text(key: str, default: str) -> str:
        value = raw.get(key)
        return value if isinstance(value, str) and value else default

    return Connection.model_construct(
        source=text("from", _PLACEHOLDER), port=text("port", "main"), to=text("to", _PLACEHOLDER)
    )
