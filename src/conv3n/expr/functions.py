"""The documented functions and methods of the expression language, and the checked operators.

Compiled expressions call into this module only: `FUNCTIONS` by name, `call_method` for
`x.method(...)`, `get_attr`/`get_item` for access (missing gives null), and the size-checked
operators `add`, `mul`, `power`. docs/expressions.md lists every name here; a test keeps the two
in step.
"""

import base64
import hashlib
import hmac
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

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


# --- access: a missing key or attribute gives null -------------------------------------------


def get_attr(obj: Any, name: str) -> Any:
    """`obj.name`: a key of an object, a field of a datetime, else null."""
    if type(obj) is dict:
        return obj.get(name)
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    if isinstance(obj, datetime | date | timedelta) and name in _TIME_FIELDS:
        return getattr(obj, name)
    return None


_TIME_FIELDS = frozenset(
    {"year", "month", "day", "hour", "minute", "second", "microsecond", "days", "seconds"}
)


def get_item(obj: Any, key: Any) -> Any:
    """`obj[key]`: missing keys and out-of-range indexes give null; slices work on lists/strings."""
    kind = type(obj)
    if kind is dict or isinstance(obj, Mapping):
        if isinstance(key, list | dict):
            raise EvalError(f"cannot use a {type_name(key)} as a key")
        return obj.get(key)
    if kind is list or kind is str or kind is tuple:
        if type(key) is int or type(key) is slice:
            try:
                return obj[key]
            except IndexError:
                return None
        if type(key) is bool:
            raise EvalError("cannot index a list with a bool")
        raise EvalError(f"cannot index a {type_name(obj)} with a {type_name(key)}")
    if obj is None:
        return None
    raise EvalError(f"cannot index a {type_name(obj)}")


def make_slice(lower: Any, upper: Any, step: Any) -> slice:
    """`x[a:b:c]`."""
    if step == 0:
        raise EvalError("slice step cannot be zero")
    return slice(lower, upper, step)


# --- size-checked operators ---------------------------------------------------------------------


def _weight(value: Any, budget: int) -> int:
    """Items in a nested list/dict structure, counting stops once past `budget`."""
    total = 0
    stack = [value]
    while stack and total <= budget:
        item = stack.pop()
        if type(item) is list or type(item) is tuple:
            total += len(item)
            stack.extend(x for x in item if type(x) is list or type(x) is dict)
        elif type(item) is dict:
            total += len(item)
            stack.extend(x for x in item.values() if type(x) is list or type(x) is dict)
    return total


def _check_size(value: Any) -> Any:
    if type(value) is str and len(value) > limits.MAX_STRING_CHARS:
        raise EvalError(f"string longer than {limits.MAX_STRING_CHARS:,} characters")
    if type(value) is list and len(value) > limits.MAX_ITEMS:
        raise EvalError(f"list longer than {limits.MAX_ITEMS:,} items")
    if type(value) is int and value.bit_length() > limits.MAX_INT_BITS:
        raise EvalError(f"number larger than {limits.MAX_INT_BITS:,} bits")
    return value


def add(a: Any, b: Any) -> Any:
    """`a + b` with the size bounds applied to strings and lists."""
    result = a + b
    if type(result) is str or type(result) is list:
        return _check_size(result)
    return result


def mul(a: Any, b: Any) -> Any:
    """`a * b`: repetition and big-integer products are checked before they are built."""
    if type(a) is int and type(b) is int:
        if a.bit_length() + b.bit_length() > limits.MAX_INT_BITS:
            raise EvalError(f"number larger than {limits.MAX_INT_BITS:,} bits")
        return a * b
    seq, count = (a, b) if isinstance(b, int) else (b, a)
    if isinstance(seq, str | list | tuple) and isinstance(count, int):
        if type(count) is bool:
            raise EvalError(f"cannot repeat a {type_name(seq)} by a bool")
        if count > 0:
            if isinstance(seq, str):
                if len(seq) * count > limits.MAX_STRING_CHARS:
                    raise EvalError(f"string longer than {limits.MAX_STRING_CHARS:,} characters")
            elif (_weight(seq, limits.MAX_ITEMS) or 1) * count > limits.MAX_ITEMS:
                raise EvalError(f"list longer than {limits.MAX_ITEMS:,} items")
    return a * b


def power(a: Any, b: Any) -> Any:
    """`a ** b` refusing integers past the size bound."""
    big = type(a) is int and type(b) is int and b > 0 and abs(a) > 1
    if big and (a.bit_length() - 1) * b > limits.MAX_INT_BITS:
        raise EvalError(f"number larger than {limits.MAX_INT_BITS:,} bits")
    result = a**b
    if type(result) is complex:
        raise EvalError("the result is not a real number")
    return result


def modulo(a: Any, b: Any) -> Any:
    """`a % b` for numbers only (printf-style string formatting is not part of the language)."""
    if isinstance(a, str):
        raise EvalError("'%' is not defined for strings; build strings with + or str()")
    return a % b


# --- comprehension budget -------------------------------------------------------------------------


class Budget:
    """Counts iteration steps and wall time of one evaluation; raises once either runs out."""

    __slots__ = ("deadline", "steps")

    def __init__(self) -> None:
        self.steps = limits.MAX_STEPS
        self.deadline = time.monotonic() + limits.MAX_SECONDS

    def iterate(self, iterable: Any) -> Iterator[Any]:
        """Iterate `iterable` (dicts give their keys), charging one step per item."""
        if not isinstance(iterable, Iterable) or isinstance(iterable, bytes):
            raise EvalError(f"cannot iterate over a {type_name(iterable)}")
        monotonic = time.monotonic
        for item in iterable:
            self.steps -= 1
            if self.steps < 0:
                raise EvalError(f"more than {limits.MAX_STEPS:,} iteration steps")
            if not self.steps & 63 and monotonic() > self.deadline:
                raise EvalError(f"evaluation took longer than {limits.MAX_SECONDS} s")
            yield item


# --- functions ------------------------------------------------------------------------------------


def to_json_text(value: Any) -> str:
    """JSON text of a value (datetimes as ISO 8601), compact and key-ordered as given."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
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


def _str(value: Any = "") -> str:
    return to_text(value)


def _int(value: Any, base: int = 10) -> int:
    if isinstance(value, str):
        return int(value.strip(), base)
    if value is None:
        raise EvalError("int() of null")
    return int(value)


def _float(value: Any) -> float:
    if value is None:
        raise EvalError("float() of null")
    return float(value)


def _range(*args: int) -> range:
    if any(type(a) is not int for a in args):
        raise EvalError("range() takes whole numbers")
    result = range(*args)
    if len(result) > limits.MAX_ITEMS:
        raise EvalError(f"range of more than {limits.MAX_ITEMS:,} items")
    return result


def _sum(values: Iterable[Any], start: int | float = 0) -> Any:
    if type(start) not in (int, float):
        raise EvalError("sum() adds numbers only")
    return sum(values, start)


def _len(value: Any) -> int:
    if value is None:
        raise EvalError("len() of null")
    return len(value)


def _coalesce(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _default(value: Any, fallback: Any) -> Any:
    return fallback if value is None or value == "" else value


def _json_parse(text: str) -> Any:
    if not isinstance(text, str | bytes):
        raise EvalError(f"json_parse() takes a string, not a {type_name(text)}")
    return json.loads(text)


def _parse_datetime(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _timedelta(
    days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0, ms: float = 0
) -> timedelta:
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds, milliseconds=ms)


def _from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _b64encode(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


def _b64decode(value: str) -> str:
    return base64.b64decode(value, validate=False).decode("utf-8", errors="replace")


def _sha256(value: str) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()


def _md5(value: str) -> str:
    return hashlib.md5(str(value).encode(), usedforsecurity=False).hexdigest()


def _hmac_sha256(key: str, message: str) -> str:
    return hmac.new(str(key).encode(), str(message).encode(), hashlib.sha256).hexdigest()


def _urlencode(value: Any) -> str:
    if isinstance(value, Mapping):
        return urlencode({k: to_text(v) for k, v in value.items()})
    return quote(to_text(value), safe="")


def _keys(value: Mapping[str, Any]) -> list[str]:
    return list(value.keys())


def _values(value: Mapping[str, Any]) -> list[Any]:
    return list(value.values())


def _items(value: Mapping[str, Any]) -> list[list[Any]]:
    return [[k, v] for k, v in value.items()]


def _round(value: float, digits: int | None = None) -> float | int:
    return round(value, digits) if digits is not None else round(value)


def _type(value: Any) -> str:
    return type_name(value)


def _regex(pattern: str) -> re.Pattern[str]:
    if len(pattern) > 1000:
        raise EvalError("regular expression longer than 1,000 characters")
    return re.compile(pattern)


def _match(text: str, pattern: str) -> bool:
    return _regex(pattern).search(text[: limits.MAX_STRING_CHARS]) is not None


def _findall(text: str, pattern: str) -> list[Any]:
    return _regex(pattern).findall(text)


def _unique(values: Iterable[Any]) -> list[Any]:
    seen: list[Any] = []
    keys: set[str] = set()
    for value in values:
        key = to_json_text(value)
        if key not in keys:
            keys.add(key)
            seen.append(value)
    return seen


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _len,
    "str": _str,
    "int": _int,
    "float": _float,
    "bool": bool,
    "round": _round,
    "abs": abs,
    "min": min,
    "max": max,
    "sum": _sum,
    "sorted": sorted,
    "reversed": lambda values: list(reversed(values)),
    "list": list,
    "dict": dict,
    "set": lambda values=(): _unique(values),
    "range": _range,
    "enumerate": lambda values, start=0: [list(p) for p in enumerate(values, start)],
    "zip": lambda *lists: [list(p) for p in zip(*lists, strict=False)],
    "any": any,
    "all": all,
    "keys": _keys,
    "values": _values,
    "items": _items,
    "unique": _unique,
    "type": _type,
    "coalesce": _coalesce,
    "default": _default,
    "json_parse": _json_parse,
    "to_json": to_json_text,
    "parse_datetime": _parse_datetime,
    "from_timestamp": _from_timestamp,
    "timedelta": _timedelta,
    "uuid4": lambda: str(uuid.uuid4()),
    "base64_encode": _b64encode,
    "base64_decode": _b64decode,
    "sha256": _sha256,
    "md5": _md5,
    "hmac_sha256": _hmac_sha256,
    "urlencode": _urlencode,
    "match": _match,
    "findall": _findall,
    "floor": math.floor,
    "ceil": math.ceil,
    "sqrt": math.sqrt,
}
"""Every function an expression may call, by name."""

HIGHER_ORDER = frozenset({"sorted", "min", "max"})
"""Functions whose `key=` may be a lambda."""


# --- methods --------------------------------------------------------------------------------------


def _pad_check(width: Any) -> None:
    if isinstance(width, int) and width > limits.MAX_STRING_CHARS:
        raise EvalError(f"string longer than {limits.MAX_STRING_CHARS:,} characters")


def _join(sep: str, parts: Iterable[Any]) -> str:
    items = [p if type(p) is str else to_text(p) for p in parts]
    total = sum(map(len, items)) + len(sep) * max(len(items) - 1, 0)
    if total > limits.MAX_STRING_CHARS:
        raise EvalError(f"string longer than {limits.MAX_STRING_CHARS:,} characters")
    return sep.join(items)


def _replace(text: str, old: str, new: str, count: int = -1) -> str:
    if len(new) > len(old):
        hits = text.count(old) if count < 0 else min(count, text.count(old))
        if len(text) + hits * (len(new) - len(old)) > limits.MAX_STRING_CHARS:
            raise EvalError(f"string longer than {limits.MAX_STRING_CHARS:,} characters")
    return text.replace(old, new, count)


def _padded(name: str) -> Callable[..., str]:
    def pad(text: str, width: int, *fill: str) -> str:
        _pad_check(width)
        result: str = getattr(text, name)(width, *fill)
        return result

    return pad


def _zfill(text: str, width: int) -> str:
    _pad_check(width)
    return text.zfill(width)


_STR_METHODS: dict[str, Callable[..., Any]] = {
    name: getattr(str, name)
    for name in (
        "upper",
        "lower",
        "strip",
        "lstrip",
        "rstrip",
        "split",
        "rsplit",
        "splitlines",
        "startswith",
        "endswith",
        "find",
        "rfind",
        "count",
        "title",
        "capitalize",
        "casefold",
        "isdigit",
        "isalpha",
        "isalnum",
        "isspace",
        "isupper",
        "islower",
        "removeprefix",
        "removesuffix",
        "partition",
        "rpartition",
        "swapcase",
    )
}
_STR_METHODS |= {
    "join": _join,
    "replace": _replace,
    "zfill": _zfill,
    "ljust": _padded("ljust"),
    "rjust": _padded("rjust"),
    "center": _padded("center"),
    "partition": lambda s, sep: list(s.partition(sep)),
    "rpartition": lambda s, sep: list(s.rpartition(sep)),
}

_DICT_METHODS: dict[str, Callable[..., Any]] = {
    "get": lambda d, key, default=None: d.get(key, default),
    "keys": _keys,
    "values": _values,
    "items": _items,
}

_LIST_METHODS: dict[str, Callable[..., Any]] = {
    "index": lambda seq, value: seq.index(value),
    "count": lambda seq, value: seq.count(value),
}

_DATETIME_METHODS: dict[str, Callable[..., Any]] = {
    "isoformat": lambda d, *args: d.isoformat(*args),
    "strftime": lambda d, fmt: d.strftime(fmt[:200]),
    "timestamp": lambda d: d.timestamp(),
    "weekday": lambda d: d.weekday(),
    "date": lambda d: d.date(),
    "total_seconds": lambda d: d.total_seconds(),
}

METHODS: dict[str, dict[str, Callable[..., Any]]] = {
    "string": _STR_METHODS,
    "object": _DICT_METHODS,
    "list": _LIST_METHODS,
    "datetime": _DATETIME_METHODS,
    "date": {k: _DATETIME_METHODS[k] for k in ("isoformat", "strftime", "weekday")},
    "duration": {"total_seconds": _DATETIME_METHODS["total_seconds"]},
}
"""Every method an expression may call, by the user-facing type of the receiver."""

METHOD_NAMES = frozenset(name for table in METHODS.values() for name in table)


def call_method(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """`obj.name(...)` for the methods in `METHODS`; anything else is refused."""
    kind = type_name(obj)
    method = METHODS.get(kind, {}).get(name)
    if method is None:
        if obj is None:
            raise EvalError(f"cannot call .{name}() on null")
        raise EvalError(f"a {kind} has no method .{name}()")
    return method(obj, *args, **kwargs)
