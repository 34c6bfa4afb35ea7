"""docs/expressions.md stays true: every example renders as shown, every name is documented.

Examples are the lines of ```expr blocks, `TEMPLATE   =>   EXPECTED_JSON`, rendered against the
```json scope block; ```expr-error blocks hold `TEMPLATE   =>   "part of the error message"`.
"""

import json
import re
from pathlib import Path

import pytest

from conv3n import expr
from conv3n.expr import limits

DOC = Path(__file__).resolve().parents[3] / "docs" / "expressions.md"
SEPARATOR = "   =>   "
FENCE = re.compile(r"^```([\w-]+(?: [\w-]+)?)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def blocks(kind: str) -> list[str]:
    return [body for info, body in FENCE.findall(DOC.read_text()) if info == kind]


def examples(kind: str) -> list[tuple[str, str]]:
    found = []
    for body in blocks(kind):
        for line in body.splitlines():
            if line.strip():
                template, _, expected = line.partition(SEPARATOR)
                assert expected, f"no {SEPARATOR.strip()!r} in example line {line!r}"
                found.append((template, expected))
    return found


def scope() -> expr.Scope:
    (text,) = blocks("json scope")
    data = json.loads(text)
    assert set(data) == {"input", "node", "vars"}
    return expr.Scope(input=data["input"], node=data["node"], vars=data["vars"])


@pytest.mark.parametrize(("template", "expected"), examples("expr"), ids=lambda v: v[:60])
def test_documented_example_renders_as_shown(template, expected):
    rendered = expr.compile_config({"value": template}).render(scope())["value"]
    assert rendered == json.loads(expected)
    assert type(rendered) is type(json.loads(expected))


@pytest.mark.parametrize(("template", "expected"), examples("expr-error"), ids=lambda v: v[:60])
def test_documented_error_is_raised_as_shown(template, expected):
    with pytest.raises((expr.ConfigParseErrors, expr.RenderError)) as caught:
        expr.compile_config({"value": template}).render(scope())
    assert json.loads(expected) in str(caught.value)


def test_the_doc_has_examples_of_both_kinds():
    assert len(examples("expr")) >= 50
    assert len(examples("expr-error")) >= 10


def test_examples_keep_leading_spaces_that_matter():
    assert ("  {{ $vars.limit }}", "2") in examples("expr")


def documented_names() -> set[str]:
    return set(re.findall(r"`(\w+)\(", DOC.read_text()))


@pytest.mark.parametrize("name", sorted(expr.FUNCTIONS))
def test_every_function_is_documented(name):
    assert name in documented_names()


@pytest.mark.parametrize(
    ("kind", "name"),
    sorted((kind, name) for kind, table in expr.METHODS.items() for name in table),
)
def test_every_method_is_documented_for_its_type(kind, name):
    rows = re.findall(r"^\| ([\w, ]+) \| (.*?) \|", DOC.read_text(), re.MULTILINE)
    assert any(
        kind in [k.strip() for k in kinds.split(",")] and f"`{name}(" in methods
        for kinds, methods in rows
    ), f"{kind}.{name}() is missing from the methods table"


@pytest.mark.parametrize(
    "text",
    [
        f"{limits.MAX_SOURCE_CHARS:,} characters",
        f"{limits.MAX_STRING_CHARS:,} characters",
        f"{limits.MAX_ITEMS:,} items",
        f"{limits.MAX_INT_BITS:,} bits",
        f"| {limits.MAX_STEPS:,} |",
        f"{limits.MAX_SECONDS} s",
        f"{limits.MAX_BUILT:,} units",
        f"entry {limits.ITEM_SIZE}",
        f"| a regular expression | {limits.MAX_PATTERN_CHARS:,} characters",
        f"{limits.MAX_REGEX_SECONDS} s for one search",
    ],
)
def test_every_limit_is_documented_with_its_value(text):
    assert text in DOC.read_text()


@pytest.mark.parametrize("name", sorted(expr.DOLLAR_NAMES))
def test_every_dollar_name_is_documented(name):
    assert f"`${name}" in DOC.read_text()
