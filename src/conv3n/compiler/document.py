"""Parse workflow text (JSON or YAML) into a `Workflow`, reporting problems with their place.

Pure: takes text, returns models. YAML is read with a safe loader that refuses alias bombs
and keeps dates as strings, so every document is plain JSON data.
"""

import json
from typing import Any

import yaml
from pydantic import ValidationError

from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON, Problem, Workflow

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_ALIASES = 200


class _Loader(yaml.SafeLoader):
    """SafeLoader without timestamp resolution and with a cap on alias references."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} YAML aliases")
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_text(text: str, *, name: str = "workflow") -> JSON:
    """JSON or YAML text -> data.

    Raises:
        WorkflowInvalid: the text is too large or not valid JSON/YAML (with line and column).
    """
    if len(text) > MAX_DOCUMENT_BYTES:
        raise WorkflowInvalid([Problem((), f"{name} is larger than {MAX_DOCUMENT_BYTES:,} bytes")])
    stripped = text.lstrip()
    if stripped.startswith("{") or name.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise WorkflowInvalid([Problem((), f"not valid JSON ({where}): {exc.msg}")]) from None
        except RecursionError:
            raise WorkflowInvalid([Problem((), "JSON nests too deeply")]) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise WorkflowInvalid([Problem((), f"not valid YAML{where}: {exc.problem}")]) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise WorkflowInvalid([Problem((), f"not valid YAML: {exc}")]) from None


def pydantic_problems(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[Problem]:
    """One Problem per pydantic error, located under `prefix`."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if not _is_pydantic_tag(p))
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "required field is missing"
        problems.append(Problem((*prefix, *loc), message))
    return problems


def _is_pydantic_tag(part: str | int) -> bool:
    """Union/validator tags pydantic inserts into locations (`function-after[...]`, `str`)."""
    return isinstance(part, str) and ("[" in part or part in _TAGS)


_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "tuple"})


def load_workflow(data: JSON) -> Workflow:
    """Validate data as a Workflow document.

    Raises:
        WorkflowInvalid: every structural problem, each with its place.
    """
    try:
        return Workflow.model_validate(data)
    except ValidationError as exc:
        raise WorkflowInvalid(pydantic_problems(exc)) from None


def parse_workflow(text: str, *, name: str = "workflow") -> Workflow:
    """Text -> validated Workflow model (structure only; `compile_workflow` checks the rest)."""
    return load_workflow(parse_text(text, name=name))
