"""Turn one expression into checked, compiled Python.

An expression is Python expression syntax plus `$names`. It is parsed once, checked against an
allow-list of syntax, rewritten so that access, calls and risky operators go through
`conv3n.expr.functions` and iteration, calls and building through the evaluation's budget
(`conv3n.expr.budget`), and compiled into a function of (scope, budget). Pure: no I/O.
"""

import ast
import re
import unicodedata
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
_CHECKED_BINOPS: dict[type[ast.operator], str] = {ast.Pow: "power", ast.Mod: "modulo"}
_OPERATOR_SIGNS: dict[type[ast.operator], str] = {
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
}
_CONSTANT_TYPES = (str, int, float, bool, type(None))
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
        needs_budget: whether it iterates, calls or builds (and so needs a budget).
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
            out.append(f" {_SCOPE}.{name}")  # the space keeps `a$input` from reading `a_s`
            i = match.end()
        elif ch == "_" or ch.isalnum():
            # whole words, so that the internal names (_s, _f, _b) cannot be written by hand
            end = i + 1
            while end < n and (source[end] == "_" or source[end].isalnum()):
                end += 1
            word = source[i:end]
            if unicodedata.normalize("NFKC", word).startswith("_"):
                raise ParseError(f"names starting with '_' are not allowed: {word}", source)
            out.append(word)
            i += len(word)
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _call(name: str, *args: ast.expr, on: str = "_f") -> ast.Call:
    return ast.Call(
        func=ast.Attribute(value=ast.Name(on, ast.Load()), attr=name, ctx=ast.Load()),
        args=list(args),
        keywords=[],
    )


def _is_number(node: ast.expr) -> bool:
    """A number literal, such as `1`, `2.5` or `-3`."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float, bool)


def _is_constant(node: ast.expr) -> bool:
    """A literal made of constants only (its size is bounded by the source text)."""
    if isinstance(node, ast.List | ast.Tuple):
        return all(_is_constant(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_constant(k) for k in node.keys) and all(
            _is_constant(v) for v in node.values
        )
    return _is_number(node) or isinstance(node, ast.Constant)


def _kept_literal(node: ast.expr) -> ast.expr:
    """`_b.keep([...])` -> `[...]`, for a literal about to be kept as part of a larger value."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "keep"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == _BUDGET
        and isinstance(node.args[0], ast.List | ast.Tuple | ast.Dict)
    ):
        return node.args[0]
    return node


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

    def budget(self, method: str, *args: ast.expr) -> ast.Call:
        """`_b.method(*args)`: the expression now needs a budget."""
        self.needs_budget = True
        return _call(method, *args, on=_BUDGET)

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
        access = _call("get_item", value, key)
        if isinstance(node.slice, ast.Slice):
            access = self.budget("made", access)  # a slice copies
        return ast.copy_location(access, node)

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
            raise self.fail(f"operator {_OPERATOR_SIGNS.get(type(node.op), '?')} is not supported")
        left, right = self.visit(node.left), self.visit(node.right)
        op = type(node.op)
        if op is ast.Add and not (_is_number(left) or _is_number(right)):
            # strings and lists may grow: size-checked, and charged to the budget
            return ast.copy_location(self.budget("keep", _call("add", left, right)), node)
        if op is ast.Mult and not any(
            isinstance(n, ast.Constant) and type(n.value) is float for n in (left, right)
        ):
            self.needs_budget = True
            budget = ast.Name(_BUDGET, ast.Load())
            return ast.copy_location(_call("mul", left, right, budget), node)
        if op is ast.Pow or op is ast.Mod:
            return ast.copy_location(_call(_CHECKED_BINOPS[op], left, right), node)
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
            call = _call("call_function", ast.Constant(name), *args)
            call.keywords = keywords
            return ast.copy_location(self.budget("made", call), node)
        if isinstance(func, ast.Attribute):
            if isinstance(func.value, ast.Name) and func.value.id == _SCOPE:
                raise self.fail(f"${func.attr} is not a function")
            if func.attr.startswith("_"):
                raise self.fail(f"attributes starting with '_' are not allowed: .{func.attr}")
            if func.attr not in functions.METHOD_NAMES:
                raise self.fail(f"unknown method .{func.attr}()")
            receiver = self.visit(func.value)
            args = [receiver, ast.Constant(func.attr), *(self.visit(a) for a in node.args)]
            keywords = [self._keyword(kw, func.attr) for kw in node.keywords]
            call = _call("call_method", *args)
            call.keywords = keywords
            return ast.copy_location(self.budget("made", call), node)
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
        node.body = self.budget("key", _kept_literal(self.visit(node.body)))
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
        names: set[str] = set()
        for gen in node.generators:
            if gen.is_async:
                raise self.fail("async comprehensions are not supported")
            # each iterable sees the names bound by the generators before it
            self.bound.append(set(names))
            gen.iter = self.budget("iterate", self.visit(gen.iter))
            self.bound.pop()
            names |= self._targets(gen.target)
            self.bound.append(names)
            gen.ifs = [self.visit(cond) for cond in gen.ifs]
            self.bound.pop()
        self.bound.append(names)
        for attr in elements:  # each element is kept in the result (or passed on to a function)
            element = _kept_literal(self.visit(getattr(node, attr)))
            setattr(node, attr, self.budget("keep", element))
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

    # literals and comparisons

    def _literal(self, node: ast.List | ast.Tuple | ast.Dict) -> ast.AST:
        """A list/object literal holding values is kept at its full size: it may repeat a large
        value many times (`[$input.big, $input.big, ...]`)."""
        self.generic_visit(node)
        if isinstance(node, ast.Dict):
            node.values = [_kept_literal(v) for v in node.values]
        else:
            node.elts = [_kept_literal(e) for e in node.elts]
        return node if _is_constant(node) else self.budget("keep", node)

    def visit_List(self, node: ast.List) -> ast.AST:
        return self._literal(node)

    def visit_Tuple(self, node: ast.Tuple) -> ast.AST:
        return self._literal(node)

    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        return self._literal(node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        if any(isinstance(op, ast.Is | ast.IsNot) for op in node.ops):
            for side in (node.left, *node.comparators):
                if isinstance(side, ast.Constant) and not any(
                    side.value is singleton for singleton in (None, True, False)
                ):
                    raise self.fail("'is' compares with null, true or false only; use ==")
        self.generic_visit(node)
        if any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            return self.budget("made", node)  # a search through a long list: read the clock after
        return node

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
        if isinstance(node, ast.Constant) and type(node.value) not in _CONSTANT_TYPES:
            raise self.fail(f"{type(node.value).__name__} literals are not supported")
        return super().generic_visit(node)


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
_CACHE_LIMIT = 10_000
_CACHE_MAX_CHARS = 2_000  # longer texts are compiled once per config anyway


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
    if len(source) <= _CACHE_MAX_CHARS:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[source] = expression
    return expression
