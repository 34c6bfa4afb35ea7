"""Render block configs: every `{{ }}` string in a JSON tree is replaced by its value.

`compile_config` walks a config once (at workflow compile time) and returns a `Compiled` value
whose `render(scope)` rebuilds only the parts that hold expressions. Called by the engine for
each attempt, and by the compiler for its static checks.
"""

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from conv3n.expr import evaluator as evaluation
from conv3n.expr import kinds, limits, parse, template
from conv3n.expr.budget import Budget
from conv3n.model import JSON, format_path

Path = tuple[str | int, ...]
Renderer = Callable[[evaluation.Scope, Budget | None], Any]


class RenderError(Exception):
    """An expression in a config failed; `.path` is where, `.expression` quotes it."""

    def __init__(self, message: str, path: Path, expression: str):
        super().__init__(message)
        self.message = message
        self.path = path
        self.expression = expression

    def __str__(self) -> str:
        where = format_path(self.path) or "(value)"
        return f"{where}: {self.message} in {{{{ {self.expression} }}}}"


def to_json_value(value: Any) -> JSON:
    """Make an expression's value JSON-safe (datetimes -> ISO 8601, durations -> seconds).

    Raises:
        EvalError: the value is not JSON (a NaN, a huge number) or nests too deeply.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        if value.bit_length() > _MAX_JSON_INT_BITS:
            raise kinds.EvalError("number too large for JSON")
        return value
    try:
        return _to_json(value)
    except RecursionError:
        raise kinds.EvalError("value nests too deeply") from None


_MAX_JSON_INT_BITS = 14_200  # Python turns at most 4,300 digits into text


def _to_json(value: Any) -> JSON:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return to_json_value(value)
    if kind is float:
        if not math.isfinite(value):
            raise kinds.EvalError(f"{value} is not a JSON number")
        return value
    if kind is dict:
        if _flat(value.values()) and all(type(k) is str for k in value):
            return value
        return {_json_key(k): _to_json(v) for k, v in value.items()}
    if kind is list:
        if _flat(value):
            return value
        return [_to_json(v) for v in value]
    if kind is tuple or isinstance(value, range):
        return [_to_json(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {_json_key(k): _to_json(v) for k, v in value.items()}
    raise kinds.EvalError(f"a {kinds.type_name(value)} is not a JSON value")


_SCALARS = frozenset({str, bool, type(None)})


def _flat(values: Iterable[Any]) -> bool:
    """Only JSON scalars (the common case, returned as is without a copy)."""
    for value in values:
        kind = type(value)
        if kind is int:
            if value.bit_length() > _MAX_JSON_INT_BITS:
                return False
        elif kind not in _SCALARS:
            return False
    return True


def _json_key(key: Any) -> str:
    if type(key) is str:
        return key
    if key is None or isinstance(key, int | float | bool):
        return kinds.to_json_text(key)  # as json.dumps writes keys: null, true, 1, 2.5
    raise kinds.EvalError(f"a {kinds.type_name(key)} cannot be an object key")


def _template_renderer(parsed: template.Template, path: Path) -> Renderer:
    whole = parsed.whole
    if whole is not None:
        function = whole

        def render_whole(scope: evaluation.Scope, budget: Budget | None) -> Any:
            try:
                return to_json_value(evaluation.evaluate(function, scope, budget))
            except kinds.EvalError as exc:
                raise RenderError(str(exc), path, function.source) from None

        return render_whole

    parts = parsed.parts
    to_text = kinds.to_text

    def render_text(scope: evaluation.Scope, budget: Budget | None) -> str:
        out: list[str] = []
        size = 0
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            try:
                text = to_text(evaluation.evaluate(part, scope, budget))
            except kinds.EvalError as exc:
                raise RenderError(str(exc), path, part.source) from None
            except (ValueError, TypeError) as exc:  # a huge number, a value JSON cannot hold
                raise RenderError(str(exc), path, part.source) from None
            except RecursionError:
                raise RenderError("value nests too deeply", path, part.source) from None
            size += len(text)
            if size > limits.MAX_STRING_CHARS:
                message = f"rendered text longer than {limits.MAX_STRING_CHARS:,} characters"
                raise RenderError(message, path, part.source)
            if budget is not None:
                try:
                    budget.charge(len(text))
                except kinds.EvalError as exc:
                    raise RenderError(str(exc), path, part.source) from None
            out.append(text)
        return "".join(out)

    return render_text


class Compiled:
    """A config tree with its expressions compiled.

    Attributes:
        static: True when nothing needs rendering; `value` is then the final config.
        value: the config with escapes resolved (static) or the original (dynamic).
        expressions: every (path, Expression) in the tree, for static checks.
    """

    __slots__ = ("_needs_budget", "_render", "expressions", "static", "value")

    def __init__(
        self,
        value: JSON,
        render: Renderer | None,
        expressions: list[tuple[Path, Any]],
        *,
        has_text: bool = True,
    ):
        self.value = value
        self._render = render
        self.static = render is None
        self.expressions: list[tuple[Path, parse.Expression]] = expressions
        # one budget per render, made only when something can spend it (it costs a clock read)
        self._needs_budget = has_text or any(e.needs_budget for _, e in expressions)

    def render(self, scope: evaluation.Scope) -> JSON:
        """The config with every expression replaced by its value.

        Raises:
            RenderError: an expression failed; it names the path and quotes the expression.
        """
        if self._render is None:
            return self.value
        return self._render(scope, Budget() if self._needs_budget else None)


def compile_config(value: JSON, *, path: Path = (), skip: frozenset[str] = frozenset()) -> Compiled:
    """Compile every template in `value`; the fields in `skip` are left untouched.

    A `skip` entry is a top-level key or a dotted path in which `*` matches every list item
    (`statements.*.query`). A template on the way to a skipped path (`statements: "{{ x }}"`)
    is left untouched too: rendering it could fill the skipped field in.

    Raises:
        ConfigParseErrors: every invalid template, each with its path.
    """
    expressions: list[tuple[Path, parse.Expression]] = []
    errors: list[tuple[Path, parse.ParseError]] = []
    texts: list[Path] = []
    static_value, render = _compile(value, path, skip, expressions, errors, texts)
    if errors:
        raise ConfigParseErrors(errors)
    return Compiled(static_value, render, expressions, has_text=bool(texts))


class ConfigParseErrors(Exception):
    """Templates in a config that do not parse: a list of (path, ParseError)."""

    def __init__(self, errors: list[tuple[Path, parse.ParseError]]):
        super().__init__(
            "; ".join(
                f"{format_path(p) or '(value)'}: {e.message} in {{{{ {e.expression} }}}}"
                for p, e in errors
            )
        )
        self.errors = errors


def _compile(
    value: JSON,
    path: Path,
    skip: frozenset[str],
    expressions: list[tuple[Path, parse.Expression]],
    errors: list[tuple[Path, parse.ParseError]],
    texts: list[Path],
) -> tuple[JSON, Renderer | None]:
    """(static value, None) when nothing renders, else (original value, renderer)."""
    if type(value) is str:
        if skip or "{{" not in value:
            # `skip` holds paths below this string: rendering it could fill them in.
            return value, None
        try:
            parsed = template.split_template(value)
        except parse.ParseError as exc:
            errors.append((path, exc))
            return value, None
        if not parsed.expressions:
            return "".join(p for p in parsed.parts if isinstance(p, str)), None
        expressions.extend((path, e) for e in parsed.expressions)
        if parsed.whole is None:
            texts.append(path)
        return value, _template_renderer(parsed, path)
    if type(value) is dict:
        base: dict[str, JSON] = {}
        dynamic: list[tuple[str, Renderer]] = []
        for key, child in value.items():
            if key in skip:
                base[key] = child
                continue
            static, render = _compile(
                child, (*path, key), _below(skip, key), expressions, errors, texts
            )
            base[key] = static
            if render is not None:
                dynamic.append((key, render))
        if not dynamic:
            return base, None

        def render_dict(scope: evaluation.Scope, budget: Budget | None) -> dict[str, JSON]:
            out = dict(base)
            for key, render in dynamic:
                out[key] = render(scope, budget)
            return out

        return value, render_dict
    if type(value) is list:
        items: list[JSON] = []
        renderers: list[tuple[int, Renderer]] = []
        inner = _below(skip, "*")
        for index, child in enumerate(value):
            if "*" in skip:
                items.append(child)
                continue
            static, render = _compile(child, (*path, index), inner, expressions, errors, texts)
            items.append(static)
            if render is not None:
                renderers.append((index, render))
        if not renderers:
            return items, None

        def render_list(scope: evaluation.Scope, budget: Budget | None) -> list[JSON]:
            out = list(items)
            for index, render in renderers:
                out[index] = render(scope, budget)
            return out

        return value, render_list
    return value, None


def _below(skip: frozenset[str], key: str) -> frozenset[str]:
    """The `skip` paths inside `key` (`a.b` under `a` is `b`)."""
    if not skip:
        return skip
    return frozenset(
        rest for head, dot, rest in (entry.partition(".") for entry in skip) if dot and head == key
    )


def iter_strings(value: JSON, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every string in a JSON tree with its path (for checks that look at raw templates)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from iter_strings(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from iter_strings(child, (*path, index))


def render_value(value: JSON, scope: evaluation.Scope) -> JSON:
    """Compile and render in one go (for one-off values such as loop `items`)."""
    return compile_config(value).render(scope)
