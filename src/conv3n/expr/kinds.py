"""What expression values are to users: their type names, their size and their text forms.

Shared by the operators and functions (`conv3n.expr.functions`), the evaluation budget
(`conv3n.expr.budget`) and rendering (`conv3n.expr.render`). Pure: no I/O.
"""

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from conv3n.expr import limits


class EvalError(Exception):
    """An expression did something the language refuses (caught and quoted by the evaluator)."""


# --- names of types, as users know them from JSON --------------------------------------------

_TYPE_NAMES = {
    type(None): "null",
    bool: "bool",
    int: "number",
    float: "number",
    str: "string",
    list: "list",
    tuple: "list",
    range: "list",
    dict: "object",
    datetime: "datetime",
    date: "date",
    timedelta: "duration",
}


def type_name(value: Any) -> str:
    """The user-facing name of a value's type (`null`, `number`, `string`, `object`, ...)."""
    return _TYPE_NAMES.get(type(value)) or (
        "object" if isinstance(value, Mapping) else type(value).__name__
    )


# --- sizes --------------------------------------------------------------------------------------

SCALAR_TYPES = frozenset({int, float, bool, type(None), datetime, date, timedelta})


def measure(value: Any, limit: int, item: int = limits.ITEM_SIZE) -> int:
    """Size of `value` with shared parts counted every time: characters of its strings (keys
    included) plus `item` per list item or object entry. Counting stops once past `limit`."""
    if type(value) is str:
        return len(value)
    if not _is_container(value):
        return 0
    total = 0
    stack = [value]
    while stack and total <= limit:
        node = stack.pop()
        total += item * len(node)
        if type(node) is range:
            continue
        children = [*node.keys(), *node.values()] if isinstance(node, Mapping) else node
        for child in children:
            if type(child) is str:
                total += len(child)
            elif _is_container(child):
                stack.append(child)
    return total


def _is_container(value: Any) -> bool:
    kind = type(value)
    if kind is list or kind is dict or kind is tuple:
        return True
    return kind not in SCALAR_TYPES and isinstance(value, Mapping | range)


def outline(value: Any) -> int:
    """`measure` of a fresh result counting two levels only (its items and theirs)."""
    kind = type(value)
    if kind is str:
        return len(value)
    if kind is not list and kind is not tuple and kind is not dict:
        return 0
    children: Iterable[Any] = value.values() if kind is dict else value
    total = limits.ITEM_SIZE * len(value)
    if kind is dict:
        total += sum(len(k) for k in value if type(k) is str)
    for child in children:
        kind = type(child)
        if kind is str:
            total += len(child)
        elif kind is list or kind is tuple or kind is dict:
            total += limits.ITEM_SIZE * len(child)
    return total


def check_length(value: Any) -> None:
    """Refuse a string or list past the per-value limits."""
    kind = type(value)
    if kind is str and len(value) > limits.MAX_STRING_CHARS:
        raise EvalError(f"string longer than {limits.MAX_STRING_CHARS:,} characters")
    if (kind is list or kind is tuple or kind is dict) and len(value) > limits.MAX_ITEMS:
        raise EvalError(f"{type_name(value)} longer than {limits.MAX_ITEMS:,} items")


# --- text ---------------------------------------------------------------------------------------


def to_json_text(value: Any) -> str:
    """JSON text of a value (datetimes as ISO 8601), compact and key-ordered as given.

    Raises:
        EvalError: the text would be longer than `limits.MAX_STRING_CHARS`.
    """
    if type(value) is not str and type(value) not in SCALAR_TYPES:
        limit = limits.MAX_STRING_CHARS
        if measure(value, limit, item=2) > limit:
            raise EvalError(f"JSON text longer than {limit:,} characters")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, range):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"a {type_name(value)} is not JSON")


def to_text(value: Any) -> str:
    """How a value reads inside text: null is empty, bools and containers are JSON."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int or type(value) is float:
        return repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return to_json_text(value)
