"""The documented functions and methods of the expression language, and the checked operators.

Compiled expressions call into this module only (and into their `conv3n.expr.budget.Budget`):
`call_function` for `name(...)`, `call_method` for `x.method(...)`, `get_attr`/`get_item` for
access (missing gives null), and the size-checked operators `add`, `mul`, `power`, `modulo`.
docs/expressions.md lists every name here; tests/unit/expr/test_docs.py keeps the two in step.
"""

import base64
import hashlib
import hmac
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sized
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from conv3n.expr import kinds, limits, patterns


class Charger(Protocol):
    """What the size-checked operators need from the evaluation's budget."""

    def charge(self, units: int) -> None:
        """Count `units` against the size budget; raises kinds.EvalError once it runs out."""


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
        return getattr(obj, name, None)
    return None


_TIME_FIELDS = frozenset(
    {"year", "month", "day", "hour", "minute", "second", "microsecond", "days", "seconds"}
)


def get_item(obj: Any, key: Any) -> Any:
    """`obj[key]`: missing keys and out-of-range indexes give null; slices work on lists/strings."""
    kind = type(obj)
    if kind is dict or isinstance(obj, Mapping):
        if isinstance(key, slice):
            raise kinds.EvalError(f"cannot slice an {kinds.type_name(obj)}")
        if isinstance(key, list | dict):
            raise kinds.EvalError(f"cannot use a {kinds.type_name(key)} as a key")
        return obj.get(key)
    if kind is list or kind is str or kind is tuple:
        if type(key) is int or type(key) is slice:
            try:
                return obj[key]
            except IndexError:
                return None
        names = kinds.type_name(obj), kinds.type_name(key)
        raise kinds.EvalError("cannot index a {} with a {}".format(*names))
    if obj is None:
        return None
    raise kinds.EvalError(f"cannot index a {kinds.type_name(obj)}")


def make_slice(lower: Any, upper: Any, step: Any) -> slice:
    """`x[a:b:c]`."""
    for part in (lower, upper, step):
        if part is not None and type(part) is not int:
            kind = kinds.type_name(part)
            raise kinds.EvalError(f"slice bounds must be whole numbers, not a {kind}")
    if step == 0:
        raise kinds.EvalError("slice step cannot be zero")
    return slice(lower, upper, step)


_LONG_STRING = f"string longer than {limits.MAX_STRING_CHARS:,} characters"


# --- size-checked operators ---------------------------------------------------------------------


def add(a: Any, b: Any) -> Any:
    """`a + b` with the per-value size limits applied to strings and lists."""
    kind = type(a)
    if kind is str and type(b) is str:
        if len(a) + len(b) > limits.MAX_STRING_CHARS:
            raise kinds.EvalError(_LONG_STRING)
    elif (kind is list or kind is tuple) and type(b) is kind and len(a) + len(b) > limits.MAX_ITEMS:
        raise kinds.EvalError(f"list longer than {limits.MAX_ITEMS:,} items")
    try:
        return a + b
    except TypeError:
        names = kinds.type_name(a), kinds.type_name(b)
        raise kinds.EvalError(
            "unsupported operand type(s) for +: {} and {}".format(*names)
        ) from None


def mul(a: Any, b: Any, budget: Charger) -> Any:
    """`a * b`: repetition and big-integer products are checked (and charged) before they are
    built."""
    if type(a) is int and type(b) is int:
        if a.bit_length() + b.bit_length() > limits.MAX_INT_BITS:
            raise kinds.EvalError(f"number larger than {limits.MAX_INT_BITS:,} bits")
        return a * b
    seq, count = (a, b) if isinstance(b, int) else (b, a)
    if isinstance(seq, str | list | tuple) and isinstance(count, int):
        if type(count) is bool:
            raise kinds.EvalError(f"cannot repeat a {kinds.type_name(seq)} by a bool")
        if count > 0 and seq:
            if isinstance(seq, str):
                if len(seq) * count > limits.MAX_STRING_CHARS:
                    raise kinds.EvalError(_LONG_STRING)
                budget.charge(len(seq) * count)
            else:
                if len(seq) * count > limits.MAX_ITEMS:
                    raise kinds.EvalError(f"list longer than {limits.MAX_ITEMS:,} items")
                budget.charge(kinds.measure(seq, limits.MAX_BUILT // count + 1) * count)
    return a * b


def power(a: Any, b: Any) -> Any:
    """`a ** b` refusing integers past the size bound."""
    big = type(a) is int and type(b) is int and b > 0 and abs(a) > 1
    if big and (a.bit_length() - 1) * b > limits.MAX_INT_BITS:
        raise kinds.EvalError(f"number larger than {limits.MAX_INT_BITS:,} bits")
    try:
        result = a**b
    except OverflowError:
        raise kinds.EvalError("number too large") from None
    if type(result) is complex:
        raise kinds.EvalError("the result is not a real number")
    return result


def modulo(a: Any, b: Any) -> Any:
    """`a % b` for numbers only (printf-style string formatting is not part of the language)."""
    if isinstance(a, str):
        raise kinds.EvalError("'%' is not defined for strings; build strings with + or str()")
    return a % b


# --- functions ------------------------------------------------------------------------------------


def _str(value: Any = "") -> str:
    return kinds.to_text(value)


def _int(value: Any, base: int = 10) -> int:
    if isinstance(value, str):
        return int(value.strip(), base)
    if value is None:
        raise kinds.EvalError("int() of null")
    return int(value)


def _float(value: Any) -> float:
    if value is None:
        raise kinds.EvalError("float() of null")
    return float(value)


def _range(*args: int) -> range:
    if any(type(a) is not int for a in args):
        raise kinds.EvalError("range() takes whole numbers")
    result = range(*args)
    if len(result) > limits.MAX_ITEMS:
        raise kinds.EvalError(f"range of more than {limits.MAX_ITEMS:,} items")
    return result


def _sum(values: Iterable[Any], start: int | float = 0) -> Any:
    if type(start) not in (int, float):
        raise kinds.EvalError("sum() adds numbers only")
    return sum(values, start)


def _len(value: Any) -> int:
    if value is None:
        raise kinds.EvalError("len() of null")
    return len(value)


def _coalesce(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _default(value: Any, fallback: Any) -> Any:
    return fallback if value is None or value == "" else value


def _json_parse(text: str) -> Any:
    if not isinstance(text, str):
        raise kinds.EvalError(f"json_parse() takes a string, not a {kinds.type_name(text)}")
    return json.loads(text)


def _parse_datetime(text: str) -> datetime:
    if not isinstance(text, str):
        raise kinds.EvalError(f"parse_datetime() takes a string, not a {kinds.type_name(text)}")
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _timedelta(
    days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0, ms: float = 0
) -> timedelta:
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds, milliseconds=ms)


def _from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _b64encode(value: str) -> str:
    return base64.b64encode(kinds.to_text(value).encode()).decode()


def _b64decode(value: str) -> str:
    return base64.b64decode(value, validate=False).decode("utf-8", errors="replace")


def _sha256(value: Any) -> str:
    return hashlib.sha256(kinds.to_text(value).encode()).hexdigest()


def _md5(value: Any) -> str:
    return hashlib.md5(kinds.to_text(value).encode(), usedforsecurity=False).hexdigest()


def _hmac_sha256(key: Any, message: Any) -> str:
    secret, text = kinds.to_text(key).encode(), kinds.to_text(message).encode()
    return hmac.new(secret, text, hashlib.sha256).hexdigest()


def _urlencode(value: Any) -> str:
    if isinstance(value, Mapping):
        return urlencode({k: kinds.to_text(v) for k, v in value.items()})
    return quote(kinds.to_text(value), safe="")


def _keys(value: Mapping[str, Any]) -> list[str]:
    return list(value.keys())


def _values(value: Mapping[str, Any]) -> list[Any]:
    return list(value.values())


def _items(value: Mapping[str, Any]) -> list[list[Any]]:
    return [[k, v] for k, v in value.items()]


def _round(value: float, ndigits: int | None = None) -> float | int:
    if type(value) not in (int, float, bool):
        raise kinds.EvalError(f"round() takes a number, not a {kinds.type_name(value)}")
    return round(value, ndigits) if ndigits is not None else round(value)


def _type(value: Any) -> str:
    return kinds.type_name(value)


def _zip(*lists: Iterable[Any]) -> list[list[Any]]:
    sizes = [len(x) for x in lists if isinstance(x, Sized)]
    if sizes and min(sizes) * len(lists) > 2 * limits.MAX_ITEMS:
        raise kinds.EvalError(f"zip() would build more than {2 * limits.MAX_ITEMS:,} items")
    return [list(p) for p in zip(*lists, strict=False)]


def _unique(values: Iterable[Any]) -> list[Any]:
    seen: list[Any] = []
    keys: set[Any] = set()
    for value in values:
        kind = type(value)
        # keyed by type too: 1, 1.0 and true stay three values, as they are in JSON
        scalar = kind in kinds.SCALAR_TYPES or kind is str
        key = (kind, value) if scalar else kinds.to_json_text(value)
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
    "zip": _zip,
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
    "to_json": kinds.to_json_text,
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
    "match": patterns.match,
    "findall": patterns.findall,
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
        raise kinds.EvalError(_LONG_STRING)


def _join(sep: str, parts: Iterable[Any]) -> str:
    items = [p if type(p) is str else kinds.to_text(p) for p in parts]
    total = sum(map(len, items)) + len(sep) * max(len(items) - 1, 0)
    if total > limits.MAX_STRING_CHARS:
        raise kinds.EvalError(_LONG_STRING)
    return sep.join(items)


def _replace(text: str, old: str, new: str, count: int = -1) -> str:
    if len(new) > len(old):
        hits = text.count(old) if count < 0 else min(count, text.count(old))
        if len(text) + hits * (len(new) - len(old)) > limits.MAX_STRING_CHARS:
            raise kinds.EvalError(_LONG_STRING)
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


def _split(name: str) -> Callable[..., list[str]]:
    def split(text: str, sep: str | None = None, maxsplit: int = -1) -> list[str]:
        # at most MAX_ITEMS + 1 parts are ever built: one more than allowed means refused
        bound = limits.MAX_ITEMS if maxsplit < 0 else min(maxsplit, limits.MAX_ITEMS)
        parts: list[str] = getattr(text, name)(sep, bound)
        kinds.check_length(parts)
        return parts

    return split


_LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def _splitlines(text: str, keepends: bool = False) -> list[str]:
    if len(text) > limits.MAX_ITEMS and sum(map(text.count, _LINE_BREAKS)) >= limits.MAX_ITEMS:
        raise kinds.EvalError(f"list longer than {limits.MAX_ITEMS:,} items")
    return text.splitlines(keepends)


_STR_METHODS |= {
    "split": _split("split"),
    "rsplit": _split("rsplit"),
    "splitlines": _splitlines,
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

_DATE_METHODS: dict[str, Callable[..., Any]] = {
    "isoformat": lambda d, *args: d.isoformat(*args),
    "strftime": lambda d, fmt: d.strftime(fmt[:200]),
    "weekday": lambda d: d.weekday(),
}

METHODS: dict[str, dict[str, Callable[..., Any]]] = {
    "string": _STR_METHODS,
    "object": _DICT_METHODS,
    "list": _LIST_METHODS,
    "datetime": _DATE_METHODS | {"timestamp": lambda d: d.timestamp(), "date": lambda d: d.date()},
    "date": _DATE_METHODS,
    "duration": {"total_seconds": lambda d: d.total_seconds()},
}
"""Every method an expression may call, by the user-facing type of the receiver."""

METHOD_NAMES = frozenset(name for table in METHODS.values() for name in table)


def call_method(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """`obj.name(...)` for the methods in `METHODS`; anything else is refused."""
    kind = kinds.type_name(obj)
    method = METHODS.get(kind, {}).get(name)
    if method is None:
        if obj is None:
            raise kinds.EvalError(f"cannot call .{name}() on null")
        raise kinds.EvalError(f"a {kind} has no method .{name}()")
    try:
        return method(obj, *args, **kwargs)
    except TypeError as exc:
        raise _wrong_arguments(exc, f".{name}()", method=True) from None


def call_function(name: str, *args: Any, **kwargs: Any) -> Any:
    """`name(...)` for the functions in `FUNCTIONS` (the parser only lets their names through)."""
    try:
        return FUNCTIONS[name](*args, **kwargs)
    except TypeError as exc:
        raise _wrong_arguments(exc, f"{name}()") from None


_ARITY = re.compile(
    r"\(\) (takes|missing|got)|expected (at most |at least )?\d+ argument|keyword argument"
)
_CALLEE = re.compile(r"^[\w.<>]+(\(\))? ")


def _wrong_arguments(exc: TypeError, call: str, *, method: bool = False) -> Exception:
    """A TypeError about the arguments of a call, named after the call the user wrote (not the
    Python function behind it); other TypeErrors are returned as they are."""
    message = str(exc)
    if not _ARITY.search(message):
        return exc
    detail = _CALLEE.sub("", message)
    if method and "takes" in detail:  # the receiver is counted as an argument: leave counts out
        return kinds.EvalError(f"wrong number of arguments for {call}")
    return kinds.EvalError(f"wrong arguments for {call}: {detail}")
