"""Split strings into literal text and `{{ ... }}` expressions (SPEC §3); `\\{{` is a literal `{{`.

Used by `conv3n.expr.render` when it compiles a config. Pure: no I/O.
"""

from dataclasses import dataclass

from conv3n.expr import parse


@dataclass(frozen=True, slots=True)
class Template:
    """A string split into literal text and expressions.

    `whole` is set when the string is exactly one expression (surrounding whitespace allowed):
    it then yields the expression's native value.
    """

    parts: tuple[str | parse.Expression, ...]
    whole: parse.Expression | None

    @property
    def expressions(self) -> tuple[parse.Expression, ...]:
        """The expressions in order."""
        return tuple(p for p in self.parts if isinstance(p, parse.Expression))


def split_template(text: str) -> Template:
    """Split a string into literal text and compiled expressions; `\\{{` is a literal `{{`.

    Raises:
        parse.ParseError: an expression is invalid or a `{{` is never closed.
    """
    parts: list[str | parse.Expression] = []
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
            raise parse.ParseError(
                "'{{' is never closed by '}}'", text[start + 2 : start + 82].strip()
            )
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(parse.compile_expression(text[start + 2 : end]))
        i = end + 2
    if literal:
        parts.append("".join(literal))
    cleaned = tuple(p for p in parts if p != "")
    exprs = [p for p in cleaned if isinstance(p, parse.Expression)]
    whole = None
    if len(exprs) == 1 and all(isinstance(p, parse.Expression) or not p.strip() for p in cleaned):
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
