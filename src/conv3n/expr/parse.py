"""Parse `{{ ... }}` templates and turn each expression into checked, compiled Python.

An expression is Python expression syntax plus `$names`. It is parsed once, checked against an
allow-list of syntax, rewritten so that access, risky operators and iteration go through
`conv3n.expr.functions`, and compiled into a function of one scope object. Pure: no I/O.
"""

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conv3n.expr import functions, limits

DOLLAR_NAMES = frozenset(
    {"input", "node", "vars", "secrets", "env", "execution", "now", "item", "index"}
)
"""The `$names` of SPEC §3."""

_CONSTANT_ALIASES = {
    "null": None,
    "true": True,
    "false": False,
    "None": None,
    "True": True,
    "False": False,
}
_SCOPE = "_s"
_BUDGET = "_b"
_ALLOWED_BINOPS = (
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.BitAnd,
    ast.BitOr,
    ast.BitXor,
)
_CHECKED_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "add",
    ast.Mult: "mul",
    ast.Pow: "power",
    ast.Mod: "modulo",
}
_DOLLAR_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class ParseError(ValueError):
    """An expression or template is not valid; `.expression` quotes it."""

    def __init__(self, message: str, expression: str):
        super().__init__(message)
        self.message = message
        self.expression = expression


@dataclass(frozen=True, slots=True)
class Expression:
    """One parsed, checked and compiled expression.

    Attributes:
        source: the text between the braces, stripped.
        function: `function(scope, budget)` evaluates it.
        dollars: the `$names` it uses.
        node_refs: the ids named as `$node.ID` or `$node["ID"]`.
        needs_budget: whether it iterates (and so needs a step budget).
    """

    source: str
    function: Callable[[Any, Any], Any] = field(repr=False)
    dollars: frozenset[str]
    node_refs: frozenset[str]
    needs_budget: bool


def _replace_dollars(source: str) -> str:
    """`$node` -> `_s.node` outside string literals; unknown `$names` are refused."""
    out: list[str] = []
    i, n = 0, len(source)
    quote: str | None = None
    while i < n:
        ch = source[i]
        if quote:
            if ch == "\\":
                out.append(source[i : i + 2])
                i += 2
                continue
            if source.startswith(quote, i):
                out.append(quote)
                i += len(quote)
                quote = None
                continue
            out.append(ch)
            i += 1
        elif ch in "'\"":
            quote = source[i : i + 3] if source.startswith(ch * 3, i) else ch
            out.append(quote)
            i += len(quote)
        elif ch == "$":
            match = _DOLLAR_RE.match(source, i)
            if not match:
                raise ParseError("'$' must start a name such as $input", source)
            name = match.group(1)
            if name not in DOLLAR_NAMES:
                known = ", ".join(f"${d}" for d in sorted(DOLLAR_NAMES))
                raise ParseError(f"unknown name ${name} (known: {known})", source)
            out.append(f"{_SCOPE}.{name}")
            i = match.end()
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(
        func=ast.Attribute(value=ast.Name("_f", ast.Load()), attr=name, ctx=ast.Load()),
        args=list(args),
        keywords=[],
    )


class _Rewriter(ast.NodeTransformer):
    """Checks every node against the allow-list and rewrites access and risky operators."""

    def __init__(self, source: str):
        self.source = source
        self.dollars: set[str] = set()
        self.node_refs: set[str] = set()
        self.needs_budget = False
        self.bound: list[set[str]] = []

    def fail(self, message: str) -> ParseError:
        return ParseError(message, self.source)

    # names

    def _is_bound(self, name: str) -> bool:
        return any(name in scope for scope in self.bound)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        name = node.id
        if name.startswith("_"):
            raise self.fail(f"names starting with '_' are not allowed: {name}")
        if self._is_bound(name):
            return node
        if name in _CONSTANT_ALIASES:
            return ast.copy_location(ast.Constant(_CONSTANT_ALIASES[name]), node)
        if name in functions.FUNCTIONS:
            raise self.fail(f"{name} is a function: call it as {name}(...)")
        raise self.fail(f"unknown name {name!r} (data is reached through $input, $node, ...)")

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if node.attr.startswith("_"):
            raise self.fail(f"attributes starting with '_' are not allowed: .{node.attr}")
        if isinstance(node.value, ast.Name) and node.value.id == _SCOPE:
            if node.attr not in DOLLAR_NAMES:
                raise self.fail(f"unknown name {_SCOPE}.{node.attr}")
            self.dollars.add(node.attr)
            return node
        self._note_node_ref(node.value, node.attr)
        value = self.visit(node.value)
        return ast.copy_location(_call("get_attr", value, ast.Constant(node.attr)), node)

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            if node.slice.value.startswith("__"):
                raise self.fail(f"keys starting with '__' are not allowed: {node.slice.value!r}")
            self._note_node_ref(node.value, node.slice.value)
        value = self.visit(node.value)
        key = self.visit(node.slice)
        return ast.copy_location(_call("get_item", value, key), node)

    def visit_Slice(self, node: ast.Slice) -> ast.AST:
        parts = [
            self.visit(p) if p is not None else ast.Constant(None)
            for p in (node.lower, node.upper, node.step)
        ]
        return _call("make_slice", *parts)

    def _note_node_ref(self, value: ast.expr, name: str) -> None:
        if (
            isinstance(value, ast.Attribute)
            and value.attr == "node"
            and isinstance(value.value, ast.Name)
            and value.value.id == _SCOPE
        ):
            self.node_refs.add(name)

    # operators

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        if not isinstance(node.op, _ALLOWED_BINOPS):
            raise self.fail(f"operator {type(node.op).__name__} is not supported")
        left, right = self.visit(node.left), self.visit(node.right)
        checked = _CHECKED_BINOPS.get(type(node.op))
        if checked:
            return ast.copy_location(_call(checked, left, right), node)
        node.left, node.right = left, right
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        if isinstance(node.op, ast.Invert):
            raise self.fail("operator ~ is not supported")
        return self.generic_visit(node)

    # calls

    def visit_Call(self, node: ast.Call) -> ast.AST:
        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail("** arguments are not supported")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail("* arguments are not supported")
        func = node.func
        if isinstance(func, ast.Name):
            name = func.id
            if name not in functions.FUNCTIONS or self._is_bound(name):
                raise self.fail(f"unknown function {name}()")
            args = [self.visit(a) for a in node.args]
            keywords = [self._keyword(kw, name) for kw in node.keywords]
            target = ast.Subscript(
                value=ast.Attribute(ast.Name("_f", ast.Load()), "FUNCTIONS", ast.Load()),
                slice=ast.Constant(name),
                ctx=ast.Load(),
            )
            return ast.copy_location(ast.Call(target, args, keywords), node)
        if isinstance(func, ast.Attribute):
            if func.attr not in functions.METHOD_NAMES:
                raise self.fail(f"unknown method .{func.attr}()")
            receiver = self.visit(func.value)
            args = [receiver, ast.Constant(func.attr), *(self.visit(a) for a in node.args)]
            keywords = [self._keyword(kw, func.attr) for kw in node.keywords]
            call = _call("call_method", *args)
            call.keywords = keywords
            return ast.copy_location(call, node)
        raise self.fail("only functions and methods by name can be called")

    def _keyword(self, kw: ast.keyword, function: str) -> ast.keyword:
        if isinstance(kw.value, ast.Lambda):
            if kw.arg != "key" or function not in functions.HIGHER_ORDER:
                raise self.fail("a lambda is only allowed as key= of sorted(), min() or max()")
            kw.value = self._lambda(kw.value)
            return kw
        kw.value = self.visit(kw.value)
        return kw

    def _lambda(self, node: ast.Lambda) -> ast.Lambda:
        args = node.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.defaults or args.posonlyargs:
            raise self.fail("a lambda takes plain parameters only")
        names = {self._binding_name(a.arg) for a in args.args}
        self.bound.append(names)
        node.body = self.visit(node.body)
        self.bound.pop()
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        raise self.fail("a lambda is only allowed as key= of sorted(), min() or max()")

    def _binding_name(self, name: str) -> str:
        if name.startswith("_"):
            raise self.fail(f"names starting with '_' are not allowed: {name}")
        if name in functions.FUNCTIONS or name in _CONSTANT_ALIASES:
            raise self.fail(f"{name!r} is a built-in name and cannot be rebound")
        return name

    # comprehensions

    def _comprehension(
        self,
        node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp,
        elements: list[str],
    ) -> ast.AST:
        self.needs_budget = True
        names: set[str] = set()
        for gen in node.generators:
            if gen.is_async:
                raise self.fail("async comprehensions are not supported")
            # each iterable sees the names bound by the generators before it
            self.bound.append(set(names))
            gen.iter = _budgeted(self.visit(gen.iter))
            self.bound.pop()
            names |= self._targets(gen.target)
            self.bound.append(names)
            gen.ifs = [self.visit(cond) for cond in gen.ifs]
            self.bound.pop()
        self.bound.append(names)
        for attr in elements:
            setattr(node, attr, self.visit(getattr(node, attr)))
        self.bound.pop()
        return node

    def _targets(self, target: ast.expr) -> set[str]:
        if isinstance(target, ast.Name):
            return {self._binding_name(target.id)}
        if isinstance(target, ast.Tuple | ast.List):
            names: set[str] = set()
            for elt in target.elts:
                names |= self._targets(elt)
            return names
        raise self.fail("a comprehension may only bind plain names")

    def visit_ListComp(self, node: ast.ListComp) -> ast.AST:
        return self._comprehension(node, ["elt"])

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> ast.AST:
        return self._comprehension(node, ["elt"])

    def visit_DictComp(self, node: ast.DictComp) -> ast.AST:
        return self._comprehension(node, ["key", "value"])

    def visit_SetComp(self, node: ast.SetComp) -> ast.AST:
        raise self.fail("set comprehensions are not supported; use unique([...])")

    # everything else

    _PLAIN = (
        ast.Expression,
        ast.Constant,
        ast.BoolOp,
        ast.Compare,
        ast.IfExp,
        ast.List,
        ast.Tuple,
        ast.Dict,
        ast.Load,
        ast.And,
        ast.Or,
        ast.Not,
        ast.USub,
        ast.UAdd,
        ast.Eq,
        ast.NotEq,
        ast.Lt,
        ast.LtE,
        ast.Gt,
        ast.GtE,
        ast.In,
        ast.NotIn,
        ast.Is,
        ast.IsNot,
        ast.keyword,
    )

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if not isinstance(node, (*self._PLAIN, ast.UnaryOp)):
            raise self.fail(f"{_describe(node)} is not supported in expressions")
        if isinstance(node, ast.Dict) and any(k is None for k in node.keys):
            raise self.fail("** unpacking is not supported")
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
            raise self.fail("bytes literals are not supported")
        return super().generic_visit(node)


def _budgeted(iterable: ast.expr) -> ast.expr:
    return ast.Call(
        func=ast.Attribute(ast.Name(_BUDGET, ast.Load()), "iterate", ast.Load()),
        args=[iterable],
        keywords=[],
    )


def _describe(node: ast.AST) -> str:
    names = {
        "JoinedStr": "an f-string",
        "NamedExpr": "assignment (:=)",
        "Await": "await",
        "Yield": "yield",
        "Starred": "* unpacking",
        "Set": "a set literal",
    }
    kind = type(node).__name__
    return names.get(kind, f"syntax {kind}")


_CACHE: dict[str, Expression] = {}
_CACHE_LIMIT = 50_000


def compile_expression(source: str) -> Expression:
    """Parse, check and compile one expression (cached by its text).

    Raises:
        ParseError: the text is not a valid expression of the language.
    """
    cached = _CACHE.get(source)
    if cached is not None:
        return cached
    text = source.strip()
    if not text:
        raise ParseError("empty expression", source)
    if len(text) > limits.MAX_SOURCE_CHARS:
        raise ParseError(
            f"expression longer than {limits.MAX_SOURCE_CHARS:,} characters", text[:80] + "..."
        )
    python = _replace_dollars(text)
    try:
        tree = ast.parse(f"({python}\n)", mode="eval")
    except SyntaxError as exc:
        raise ParseError(f"syntax error: {exc.msg}", text) from None
    except (ValueError, RecursionError, MemoryError):
        raise ParseError("expression is too deeply nested", text) from None
    rewriter = _Rewriter(text)
    try:
        body = rewriter.visit(tree.body)
    except RecursionError:
        raise ParseError("expression is too deeply nested", text) from None
    lam = ast.Expression(
        ast.Lambda(
            args=ast.arguments(
                posonlyargs=[],
                args=[ast.arg(_SCOPE), ast.arg(_BUDGET)],
                kwonlyargs=[],
                kw_defaults=[],
                defaults=[],
            ),
            body=body,
        )
    )
    ast.fix_missing_locations(lam)
    try:
        code = compile(lam, "<expression>", "eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ParseError(f"cannot compile: {exc}", text) from None
    function = eval(code, {"__builtins__": {}, "_f": functions})  # noqa: S307 - checked AST
    expression = Expression(
        source=text,
        function=function,
        dollars=frozenset(rewriter.dollars),
        node_refs=frozenset(rewriter.node_refs),
        needs_budget=rewriter.needs_budget,
    )
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[source] = expression
    return expression


# --- templates ---


@dataclass(frozen=True, slots=True)
class Template:
    """A string split into literal text and expressions.

    `whole` is set when the string is exactly one expression (surrounding whitespace allowed):
    it then yields the expression's native value.
    """

    parts: tuple[str | Expression, ...]
    whole: Expression | None

    @property
    def expressions(self) -> tuple[Expression, ...]:
        """The expressions in order."""
        return tuple(p for p in self.parts if isinstance(p, Expression))


def has_expression(text: str) -> bool:
    """Cheap pre-check: might this string hold `{{` at all (escaped or not)?"""
    return "{{" in text


def split_template(text: str) -> Template:
    """Split a string into literal text and compiled expressions; `\\{{` is a literal `{{`.

    Raises:
        ParseError: an expression is invalid or a `{{` is never closed.
    """
    parts: list[str | Expression] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        start = text.find("{{", i)
        if start < 0:
            literal.append(text[i:])
            break
        if start > 0 and text[start - 1] == "\\":
            literal.append(text[i : start - 1] + "{{")
            i = start + 2
            continue
        literal.append(text[i:start])
        end = _find_close(text, start + 2)
        if end < 0:
            raise ParseError("'{{' is never closed by '}}'", text[start : start + 80])
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(compile_expression(text[start + 2 : end]))
        i = end + 2
    if literal:
        parts.append("".join(literal))
    cleaned = tuple(p for p in parts if p != "")
    exprs = [p for p in cleaned if isinstance(p, Expression)]
    whole = None
    if len(exprs) == 1 and all(isinstance(p, Expression) or not p.strip() for p in cleaned):
        whole = exprs[0]
    return Template(parts=cleaned, whole=whole)


def _find_close(text: str, i: int) -> int:
    """Index of the `}}` closing an expression starting at i, skipping strings and nested braces."""
    depth = 0
    quote: str | None = None
    n = len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return i if text.startswith("}}", i) else -1
            depth -= 1
        i += 1
    return -1
