"""conv3n.expr.template: splitting strings into literal text and `{{ ... }}` expressions."""

import pytest

from conv3n import expr


def sources(template: expr.Template) -> list[str]:
    return [p if isinstance(p, str) else f"<{p.source}>" for p in template.parts]


def test_text_without_braces_is_one_literal_part():
    template = expr.split_template("plain text")
    assert template.parts == ("plain text",)
    assert template.whole is None
    assert template.expressions == ()


def test_single_expression_is_whole():
    template = expr.split_template("{{ $input.x }}")
    assert template.whole is not None
    assert template.whole.source == "$input.x"
    assert template.expressions == (template.whole,)


def test_whitespace_around_a_single_expression_keeps_it_whole():
    template = expr.split_template("  \n{{ $input.x }}\t ")
    assert template.whole is not None
    assert template.whole.source == "$input.x"


def test_text_around_an_expression_is_not_whole():
    template = expr.split_template("id: {{ $input.id }}!")
    assert template.whole is None
    assert sources(template) == ["id: ", "<$input.id>", "!"]


def test_two_expressions_are_not_whole_even_when_adjacent():
    template = expr.split_template("{{ 1 }}{{ 2 }}")
    assert template.whole is None
    assert sources(template) == ["<1>", "<2>"]


def test_expression_without_spaces_inside_braces():
    assert sources(expr.split_template("a{{1}}b")) == ["a", "<1>", "b"]


def test_escaped_braces_are_literal_text():
    template = expr.split_template(r"\{{ not an expression }}")
    assert template.parts == ("{{ not an expression }}",)
    assert template.whole is None


def test_escaped_and_real_expressions_mix():
    template = expr.split_template(r"\{{ x }} is {{ 1 + 1 }}")
    assert sources(template) == ["{{ x }} is ", "<1 + 1>"]


def test_closing_braces_inside_string_literals_do_not_end_the_expression():
    template = expr.split_template("{{ '}}' + \"}}\" }}")
    assert template.whole is not None
    assert template.whole.source == "'}}' + \"}}\""


def test_escaped_quote_inside_a_string_literal_is_skipped():
    template = expr.split_template(r"{{ 'it\'s }}' }}")
    assert template.whole is not None
    assert expr.evaluate(template.whole, expr.Scope()) == "it's }}"


def test_nested_object_braces_are_part_of_the_expression():
    template = expr.split_template("{{ {'a': {'b': 1}} }}")
    assert template.whole is not None
    assert expr.evaluate(template.whole, expr.Scope()) == {"a": {"b": 1}}


def test_nested_object_braces_without_spaces_close_correctly():
    template = expr.split_template("{{{'a': {'b': 1}}}}")
    assert template.whole is not None
    assert template.whole.source == "{'a': {'b': 1}}"


def test_a_lone_closing_brace_pair_in_text_is_literal():
    assert sources(expr.split_template("a }} b")) == ["a }} b"]


def test_unclosed_expression_is_refused():
    with pytest.raises(expr.ParseError) as caught:
        expr.split_template("hello {{ $input.name")
    assert "never closed" in caught.value.message
    assert caught.value.expression == "$input.name"


def test_unclosed_string_inside_an_expression_is_refused():
    with pytest.raises(expr.ParseError, match="never closed"):
        expr.split_template("{{ 'abc }}")


def test_empty_expression_is_refused():
    with pytest.raises(expr.ParseError, match="empty expression"):
        expr.split_template("a {{ }} b")


def test_invalid_expression_in_a_template_is_refused():
    with pytest.raises(expr.ParseError, match="syntax error"):
        expr.split_template("ok {{ 1 + }}")
