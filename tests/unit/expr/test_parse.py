"""conv3n.expr.parse: the syntax allow-list, $names, static information and the compile cache."""

import pytest

from conv3n import expr
from conv3n.expr import parse


def refusal(source: str) -> str:
    with pytest.raises(expr.ParseError) as caught:
        expr.compile_expression(source)
    return caught.value.message


# --- $names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(expr.DOLLAR_NAMES))
def test_every_dollar_name_compiles_and_is_recorded(name):
    compiled = expr.compile_expression(f"${name}")
    assert compiled.dollars == {name}


def test_dollar_names_are_the_ones_of_the_spec():
    assert set(expr.DOLLAR_NAMES) == {
        "input",
        "node",
        "vars",
        "secrets",
        "env",
        "execution",
        "now",
        "item",
        "index",
    }


def test_unknown_dollar_name_is_refused_with_the_known_names():
    message = refusal("$inputs.x")
    assert "unknown name $inputs" in message
    assert "$input" in message
    assert "$node" in message


def test_lone_dollar_is_refused():
    assert "'$' must start a name" in refusal("$ + 1")


def test_dollar_inside_a_string_literal_is_text():
    compiled = expr.compile_expression("'costs $5 or $input'")
    assert compiled.dollars == frozenset()
    assert expr.evaluate(compiled, expr.Scope()) == "costs $5 or $input"


def test_dollar_after_an_escaped_quote_inside_a_string_stays_text():
    compiled = expr.compile_expression(r"'it\'s $input'")
    assert expr.evaluate(compiled, expr.Scope()) == "it's $input"


def test_dollar_inside_a_triple_quoted_string_stays_text():
    compiled = expr.compile_expression('"""a "quoted" $input"""')
    assert expr.evaluate(compiled, expr.Scope()) == 'a "quoted" $input'


def test_dollars_lists_every_name_used():
    compiled = expr.compile_expression("$input.a + $vars.b if $item else $index")
    assert compiled.dollars == {"input", "vars", "item", "index"}


# --- node references ------------------------------------------------------------------------------


def test_node_refs_collects_attribute_and_constant_key_references():
    compiled = expr.compile_expression("$node.fetch.data.x + $node['parse'].data.y")
    assert compiled.node_refs == {"fetch", "parse"}


def test_node_refs_ignores_dynamic_keys_and_deeper_names():
    compiled = expr.compile_expression("$node[$vars.which].data.fetch")
    assert compiled.node_refs == frozenset()
    assert compiled.dollars == {"node", "vars"}


def test_node_refs_inside_comprehensions_and_lambdas_are_found():
    compiled = expr.compile_expression(
        "[x for x in $node.a.data] + sorted($node.b.data, key=lambda v: $node.c.data[v])"
    )
    assert compiled.node_refs == {"a", "b", "c"}


def test_node_refs_of_an_expression_without_nodes_is_empty():
    assert expr.compile_expression("$input.x").node_refs == frozenset()


# --- static information ---------------------------------------------------------------------------


def test_source_is_the_stripped_text():
    assert expr.compile_expression("  $input.x  ").source == "$input.x"


@pytest.mark.parametrize(
    "source",
    ["$input.a.b", "$input['a'][0]", "$node.a.data.x + 1", "1 - $input.x", "$input.x == 2"],
)
def test_plain_access_and_number_arithmetic_need_no_budget(source):
    assert not expr.compile_expression(source).needs_budget


@pytest.mark.parametrize(
    "source",
    [
        "len($input)",
        "$input.s.upper()",
        "[x for x in $input]",
        "$input.a + $input.b",
        "$input.s * 3",
        "[$input.a, $input.b]",
        "$input.s[1:]",
        "1 in $input.items",
        "sorted($input, key=lambda v: v)",
    ],
)
def test_calls_iteration_and_building_need_a_budget(source):
    assert expr.compile_expression(source).needs_budget


def test_constant_literals_need_no_budget():
    assert not expr.compile_expression("[1, 'a', {'b': [2, -3]}]").needs_budget


# --- caching --------------------------------------------------------------------------------------


def test_compiling_the_same_text_twice_returns_the_cached_expression():
    first = expr.compile_expression("$input.cache_probe_1 - 1")
    assert expr.compile_expression("$input.cache_probe_1 - 1") is first


def test_cache_is_keyed_by_the_exact_text():
    first = expr.compile_expression("$input.cache_probe_2")
    second = expr.compile_expression(" $input.cache_probe_2 ")
    assert second is not first
    assert second.source == first.source


def test_long_texts_are_not_cached(monkeypatch):
    monkeypatch.setattr(parse, "_CACHE", {})
    source = "'" + "a" * 2_100 + "'"
    expr.compile_expression(source)
    assert parse._CACHE == {}


def test_cache_is_emptied_when_full(monkeypatch):
    monkeypatch.setattr(parse, "_CACHE", {})
    monkeypatch.setattr(parse, "_CACHE_LIMIT", 3)
    for n in range(3):
        expr.compile_expression(f"{n} - 0")
    assert len(parse._CACHE) == 3
    expr.compile_expression("3 - 0")
    assert list(parse._CACHE) == ["3 - 0"]


def test_invalid_text_is_not_cached(monkeypatch):
    monkeypatch.setattr(parse, "_CACHE", {})
    with pytest.raises(expr.ParseError):
        expr.compile_expression("1 +")
    assert parse._CACHE == {}


# --- what the language accepts --------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "1",
        "-2.5",
        "'text'",
        '"text"',
        "null",
        "None",
        "true and not false",
        "True or False",
        "[1, 2]",
        "(1, 2)",
        "{'a': 1}",
        "1 if $input else 2",
        "1 < 2 <= 3 != 4",
        "$input is null",
        "$input is not None",
        "'a' in 'abc'",
        "'a' not in 'abc'",
        "7 // 2 - 3 / 4 * 5 % 6 ** 2",
        "1 & 3 | 4 ^ 5",
        "+1",
        "[x for x in [1] if x]",
        "{k: v for k, v in [[1, 2]]}",
        "sum(x for x in [1])",
        "[[a, b] for (a, b) in [[1, 2]]]",
        "sorted([1], key=lambda v: -v)",
        "min([1], key=lambda v: v)",
        "max([1], key=lambda v: v, default=0)",
        "$input[1:2:1]",
        "$input[::2]",
        "'multi' +\n 'line'",
    ],
)
def test_accepted_syntax_compiles(source):
    assert expr.compile_expression(source).source == source.strip()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("1 +", "syntax error"),
        ("import os", "syntax error"),
        ("x = 1", "syntax error"),
        ("lambda: 1", "lambda is only allowed as key="),
        ("sorted([1], cmp=lambda a: a)", "lambda is only allowed as key="),
        ("len([1], key=lambda a: a)", "lambda is only allowed as key="),
        ("sorted([1], key=lambda *a: a)", "plain parameters only"),
        ("sorted([1], key=lambda a=1: a)", "plain parameters only"),
        ("sorted([1], key=lambda len: len)", "cannot be rebound"),
        ("[1 for len in [1]]", "cannot be rebound"),
        ("[1 for null in [1]]", "cannot be rebound"),
        ("[1 for _x in [1]]", "names starting with '_'"),
        ("[1 for x.y in [1]]", "may only bind plain names"),
        ("(x := 1)", "assignment (:=)"),
        ("f'{1}'", "an f-string"),
        ("{1, 2}", "a set literal"),
        ("{x for x in [1]}", "set comprehensions"),
        ("[*$input]", "* unpacking"),
        ("{**$input}", "** unpacking"),
        ("len(*$input)", "* arguments"),
        ("dict(**$input)", "** arguments"),
        ("b'bytes'", "bytes literals"),
        ("1j", "complex literals"),
        ("...", "ellipsis literals"),
        ("~1", "operator ~"),
        ("1 << 2", "operator <<"),
        ("1 >> 2", "operator >>"),
        ("$input @ $input", "operator @"),
        ("x", "unknown name 'x'"),
        ("len", "len is a function"),
        ("nope(1)", "unknown function nope()"),
        ("$input.nope()", "unknown method .nope()"),
        ("$input.items()()", "only functions and methods by name"),
        ("(lambda: 1)()", "only functions and methods by name"),
        ("[len][0](1)", "only functions and methods by name"),
        ("'abc'(1)", "only functions and methods by name"),
        ("1 if 1", "syntax error"),
        ("await $input", "await"),
        ("(yield)", "yield is not supported"),
        ("$input is 'a'", "'is' compares with null, true or false only"),
        ("1 is not 1", "'is' compares with null, true or false only"),
    ],
)
def test_refused_syntax_names_the_problem(source, message):
    assert message in refusal(source)


def test_parse_error_quotes_the_stripped_expression():
    with pytest.raises(expr.ParseError) as caught:
        expr.compile_expression("  1 +  ")
    assert caught.value.expression == "1 +"
    assert str(caught.value) == caught.value.message


def test_parse_error_is_a_value_error():
    assert issubclass(expr.ParseError, ValueError)


def test_too_long_expression_is_refused_and_quoted_short():
    with pytest.raises(expr.ParseError) as caught:
        expr.compile_expression("1" * 20_001)
    assert "longer than 20,000 characters" in caught.value.message
    assert len(caught.value.expression) < 100


def test_expression_at_the_length_limit_compiles():
    source = "'" + "a" * 19_998 + "'"
    assert expr.evaluate(expr.compile_expression(source), expr.Scope()) == "a" * 19_998


def test_comments_do_not_swallow_the_closing_of_the_expression():
    compiled = expr.compile_expression("1 # a comment")
    assert expr.evaluate(compiled, expr.Scope()) == 1


def test_constant_aliases_can_be_shadowed_nowhere_but_read_everywhere():
    compiled = expr.compile_expression("[null, None, true, True, false, False]")
    assert expr.evaluate(compiled, expr.Scope()) == [None, None, True, True, False, False]


def test_comprehension_variable_is_not_visible_outside_it():
    assert "unknown name 'x'" in refusal("[x for x in [1]] + [x]")


def test_later_generator_may_use_earlier_variables():
    compiled = expr.compile_expression("[y for x in [[1, 2]] for y in x]")
    assert expr.evaluate(compiled, expr.Scope()) == [1, 2]


def test_first_generator_cannot_use_its_own_variable():
    assert "unknown name 'x'" in refusal("[x for x in x]")


def test_lambda_parameter_is_visible_only_in_its_body():
    assert "unknown name 'v'" in refusal("sorted([1], key=lambda v: v) + [v]")
