"""Render block configs: every `{{ }}` string in a JSON tree is replaced by its value.

`compile_config` walks a config once (at workflow compile time) and returns a `Compiled` value
whose `render(scope)` rebuilds only the parts that hold expressions. Called by the engine for
each attempt, and by the compiler for its static checks.
"""

import math
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from conv3n.expr import evaluator as evaluation
from conv3n.expr import functions, limits, parse
from conv3n.model import JSON, format_path

Path = tuple[str | int, ...]
Renderer = Callable[[evaluation.Scope], Any]


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
    """Make an expression's value JSON-safe (datetimes -> ISO 8601, durations -> seconds)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise functions.EvalError(f"{value} is not a JSON number")
        return value
    if kind is dict:
        if all(type(v) in _SCALARS for v in value.values()) and all(type(k) is str for k in value):
            return value
        return {_json_key(k): to_json_value(v) for k, v in value.items()}
    if kind is list:
        if all(type(v) in _SCALARS for v in value):
            return value
        return [to_json_value(v) for v in value]
    if kind is tuple or isinstance(value, range):
        return [to_json_value(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {_json_key(k): to_json_value(v) for k, v in value.items()}
    raise functions.EvalError(f"a {functions.type_name(value)} is not a JSON value")


_SCALARS = frozenset({str, int, bool, type(None)})


def _json_key(key: Any) -> str:
    if type(key) is str:
        return key
    if key is None or isinstance(key, int | float | bool):
        return functions.to_text(key)
    raise functions.EvalError(f"a {functions.type_name(key)} cannot be an object key")


def _template_renderer(template: parse.Template, path: Path) -> Renderer:
    whole = template.whole
    if whole is not None:
        function = whole

        def render_whole(scope: evaluation.Scope) -> Any:
            try:
                return to_json_value(evaluation.evaluate(function, scope))
            except functions.EvalError as exc:
                raise RenderError(str(exc), path, function.source) from None

        return render_whole

    parts = template.parts
    to_text = functions.to_text

    def render_text(scope: evaluation.Scope) -> str:
        out: list[str] = []
        for part in parts:
            if type(part) is str:
                out.append(part)
                continue
            try:
                out.append(to_text(evaluation.evaluate(part, scope)))  # type: ignore[arg-type]
            except (functions.EvalError, TypeError) as exc:
                raise RenderError(str(exc), path, part.source) from None  # type: ignore[union-attr]
        text = "".join(out)
        if len(text) > limits.MAX_STRING_CHARS:
            raise RenderError(
                "rendered string is too long",
                path,
                parts[0].source if isinstance(parts[0], parse.Expression) else "...",
            )
        return text

    return render_text


class Compiled:
    """A config tree with its expressions compiled.

    Attributes:
        static: True when nothing needs rendering; `value` is then the final config.
        value: the config with escapes resolved (static) or the original (dynamic).
        expressions: every (path, Expression) in the tree, for static checks.
    """

    __slots__ = ("_render", "expressions", "static", "value")

    def __init__(self, value: JSON, render: Renderer | None, expressions: list[tuple[Path, Any]]):
        self.value = value
        self._render = render
        self.static = render is None
        self.expressions: list[tuple[Path, parse.Expression]] = expressions

    def render(self, scope: evaluation.Scope) -> JSON:
        """The config with every expression replaced by its value.

        Raises:
            RenderError: an expression failed; it names the path and quotes the expression.
        """
        if self._render is None:
            return self.value
        return self._render(scope)


def compile_config(value: JSON, *, path: Path = (), skip: frozenset[str] = frozenset()) -> Compiled:
    """Compile every template in `value`; keys in `skip` (top level) are left untouched.

    Raises:
        ConfigParseErrors: every invalid template, each with its path.
    """
    expressions: list[tuple[Path, parse.Expression]] = []
    errors: list[tuple[Path, parse.ParseError]] = []
    static_value, render = _compile(value, path, skip, expressions, errors)
    if errors:
        raise ConfigParseErrors(errors)
    return Compiled(static_value, render, expressions)


class ConfigParseErrors(Exception):
    """Templates in a config that do not parse: a list of (path, ParseError)."""

    def __init__(self, errors: list[tuple[Path, parse.ParseError]]):
        super().__init__("; ".join(f"{format_path(p)}: {e.message}" for p, e in errors))
        self.errors = errors


def _compile(
    value: JSON,
    path: Path,
    skip: frozenset[str],
    expressions: list[tuple[Path, parse.Expression]],
    errors: list[tuple[Path, parse.ParseError]],
) -> tuple[JSON, Renderer | None]:
    """(static value, None) when nothing renders, else (original value, renderer)."""
    if type(value) is str:
        if "{{" not in value:
            return value, None
        try:
            template = parse.split_template(value)
        except parse.ParseError as exc:
            errors.append((path, exc))
            return value, None
        if not template.expressions:
            return "".join(p for p in template.parts if isinstance(p, str)), None
        expressions.extend((path, e) for e in template.expressions)
        return value, _template_renderer(template, path)
    if type(value) is dict:
        base: dict[str, JSON] = {}
        dynamic: list[tuple[str, Renderer]] = []
        for key, child in value.items():
            if key in skip:
                base[key] = child
                continue
            static, render = _compile(child, (*path, key), frozenset(), expressions, errors)
            base[key] = static
            if render is not None:
                dynamic.append((key, render))
        if not dynamic:
            return base, None

        def render_dict(scope: evaluation.Scope) -> dict[str, JSON]:
            out = dict(base)
            for key, render in dynamic:
                out[key] = render(scope)
            return out

        return value, render_dict
    if type(value) is list:
        items: list[JSON] = []
        renderers: list[tuple[int, Renderer]] = []
        for index, child in enumerate(value):
            static, render = _compile(child, (*path, index), frozenset(), expressions, errors)
            items.append(static)
            if render is not None:
                renderers.append((index, render))
        if not renderers:
            return items, None

        def render_list(scope: evaluation.Scope) -> list[JSON]:
            out = list(items)
            for index, render in renderers:
                out[index] = render(scope)
            return out

        return value, render_list
    return value, None


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
