"""conv3n.expr.render: native and text results, config trees, paths in errors, JSON values."""

import math
from collections import ChainMap
from datetime import UTC, date, datetime, timedelta

import pytest

from conv3n import expr

NOW = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
SCOPE = expr.Scope(
    input={"n": 3, "name": "Ann", "tags": ["a", "b"], "user": {"id": 7}, "ok": True, "none": None},
    now=NOW,
)


def render(value, scope: expr.Scope = SCOPE):
    return expr.compile_config(value).render(scope)


def one(template: str, scope: expr.Scope = SCOPE):
    return render({"v": template}, scope)["v"]


# --- native values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ $input.n }}", 3),
        ("{{ $input.n / 2 }}", 1.5),
        ("{{ $input.name }}", "Ann"),
        ("{{ $input.tags }}", ["a", "b"]),
        ("{{ $input.user }}", {"id": 7}),
        ("{{ $input.ok }}", True),
        ("{{ $input.none }}", None),
        ("{{ $input.missing }}", None),
        ("  {{ $input.n }}\n", 3),
        ("{{ (1, 2) }}", [1, 2]),
        ("{{ range(3) }}", [0, 1, 2]),
        ("{{ $now }}", "2024-05-01T10:30:00+00:00"),
        ("{{ $now.date() }}", "2024-05-01"),
        ("{{ timedelta(minutes=1) }}", 60.0),
        ("{{ {1: 'a', true: 'b', null: 'c'} }}", {"1": "b", "null": "c"}),
        ("{{ {'a': {'b': 1}} }}", {"a": {"b": 1}}),
        (
            "{{ {'when': $now, 'list': [(1, 2)]} }}",
            {"when": "2024-05-01T10:30:00+00:00", "list": [[1, 2]]},
        ),
    ],
)
def test_a_string_that_is_one_expression_yields_its_native_value(template, expected):
    assert one(template) == expected


def test_native_value_keeps_its_json_type_exactly():
    assert type(one("{{ 1 }}")) is int
    assert type(one("{{ 1.0 }}")) is float
    assert one("{{ true }}") is True


# --- text -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hello {{ $input.name }}!", "Hello Ann!"),
        ("n={{ $input.n }}", "n=3"),
        ("x={{ 1.5 }}", "x=1.5"),
        ("x={{ 10 / 4 }}", "x=2.5"),
        ("[{{ $input.missing }}]", "[]"),
        ("[{{ null }}]", "[]"),
        ("ok={{ $input.ok }}", "ok=true"),
        ("no={{ not $input.ok }}", "no=false"),
        ("tags={{ $input.tags }}", 'tags=["a","b"]'),
        ("user={{ $input.user }}", 'user={"id":7}'),
        ("s={{ {'a': 'é', 'b': [1, null]} }}", 's={"a":"é","b":[1,null]}'),
        ("at {{ $now }}", "at 2024-05-01T10:30:00+00:00"),
        ("on {{ $now.date() }}", "on 2024-05-01"),
        ("took {{ timedelta(seconds=90) }}", "took 90.0"),
        ("{{ 1 }}{{ 2 }}", "12"),
        ("{{ 'a' }} and {{ 'b' }}", "a and b"),
        ("{{ range(2) }}!", "[0,1]!"),
    ],
)
def test_text_around_expressions_renders_a_string(template, expected):
    assert one(template) == expected


def test_escaped_braces_render_literally():
    assert one(r"\{{ $input.n }} = {{ $input.n }}") == "{{ $input.n }} = 3"


def test_a_string_of_only_escaped_braces_is_static_text():
    compiled = expr.compile_config({"v": r"use \{{ $input }} here"})
    assert compiled.static
    assert compiled.value == {"v": "use {{ $input }} here"}


def test_closing_braces_inside_quotes_render():
    assert one("{{ '}}' }}") == "}}"
    assert one('a{{ "}}" }}b') == "a}}b"


# --- config trees ---------------------------------------------------------------------------------


def test_a_config_without_expressions_is_static_and_renders_as_itself():
    config = {"url": "https://x", "n": 1, "flags": [True, None], "nested": {"a": "b"}}
    compiled = expr.compile_config(config)
    assert compiled.static
    assert compiled.expressions == []
    assert compiled.render(SCOPE) == config


def test_only_the_strings_with_expressions_change():
    config = {
        "a": 1,
        "b": ["x", "{{ $input.n }}"],
        "c": {"d": "id-{{ $input.user.id }}", "e": None},
    }
    assert render(config) == {"a": 1, "b": ["x", 3], "c": {"d": "id-7", "e": None}}


def test_rendering_does_not_change_the_config_and_can_be_repeated():
    config = {"b": ["{{ $input.n }}"], "c": {"d": "{{ $input.name }}"}}
    compiled = expr.compile_config(config)
    first = compiled.render(SCOPE)
    second = compiled.render(expr.Scope(input={"n": 4, "name": "Bo"}))
    assert first == {"b": [3], "c": {"d": "Ann"}}
    assert second == {"b": [4], "c": {"d": "Bo"}}
    assert config == {"b": ["{{ $input.n }}"], "c": {"d": "{{ $input.name }}"}}


def test_expressions_are_listed_with_their_paths():
    compiled = expr.compile_config({"a": "{{ 1 }}", "b": [{"c": "x {{ 2 }} {{ 3 }}"}]})
    assert [(path, e.source) for path, e in compiled.expressions] == [
        (("a",), "1"),
        (("b", 0, "c"), "2"),
        (("b", 0, "c"), "3"),
    ]


def test_skipped_top_level_keys_are_left_raw():
    compiled = expr.compile_config(
        {"raw": "{{ not valid (", "nested": {"raw": "{{ 1 }}"}}, skip=frozenset({"raw"})
    )
    assert compiled.render(SCOPE) == {"raw": "{{ not valid (", "nested": {"raw": 1}}


def test_skipped_dotted_paths_leave_that_field_of_every_list_item_raw():
    config = {
        "statements": [
            {"query": "{{ 1 }}", "params": {"a": "{{ 2 }}"}},
            {"query": "{{ not valid (", "params": {}},
        ],
        "query": "{{ 3 }}",
    }
    compiled = expr.compile_config(config, skip=frozenset({"statements.*.query"}))
    assert compiled.render(SCOPE) == {
        "statements": [
            {"query": "{{ 1 }}", "params": {"a": 2}},
            {"query": "{{ not valid (", "params": {}},
        ],
        "query": 3,
    }
    assert [path for path, _ in compiled.expressions] == [
        ("statements", 0, "params", "a"),
        ("query",),
    ]


def test_a_template_holding_a_skipped_path_is_left_raw():
    skip = frozenset({"statements.*.query"})
    whole = expr.compile_config({"statements": "{{ $input.tags }}"}, skip=skip)
    item = expr.compile_config({"statements": ["{{ $input.user }}"]}, skip=skip)

    assert whole.render(SCOPE) == {"statements": "{{ $input.tags }}"}
    assert item.render(SCOPE) == {"statements": ["{{ $input.user }}"]}
    assert whole.expressions == item.expressions == []


def test_iter_strings_yields_every_string_with_its_path():
    value = {"a": "x", "b": [1, "y", {"c": "z"}]}
    assert list(expr.iter_strings(value)) == [(("a",), "x"), (("b", 1), "y"), (("b", 2, "c"), "z")]


def test_render_value_compiles_and_renders_in_one_call():
    assert expr.render_value(["{{ $input.n }}", "n"], SCOPE) == [3, "n"]


# --- errors ---------------------------------------------------------------------------------------


def test_render_error_names_the_path_and_quotes_the_expression():
    with pytest.raises(expr.RenderError) as caught:
        render({"body": {"items": ["ok", "total: {{ $input.none + 1 }}"]}})
    error = caught.value
    assert error.path == ("body", "items", 1)
    assert error.expression == "$input.none + 1"
    assert "null and number" in error.message
    assert str(error) == (
        "body.items[1]: unsupported operand type(s) for +: null and number in {{ $input.none + 1 }}"
    )


def test_render_error_of_a_bare_value_says_value():
    with pytest.raises(expr.RenderError) as caught:
        render("{{ 1 / 0 }}")
    assert str(caught.value) == "(value): division by zero in {{ 1 / 0 }}"


def test_render_error_uses_the_given_path_prefix():
    compiled = expr.compile_config({"x": "{{ 1 / 0 }}"}, path=("nodes", 2, "config"))
    with pytest.raises(expr.RenderError) as caught:
        compiled.render(SCOPE)
    assert str(caught.value).startswith("nodes[2].config.x: division by zero")


def test_a_value_that_is_not_json_fails_the_render():
    with pytest.raises(expr.RenderError, match="nan is not a JSON number"):
        one("{{ float('nan') }}")
    with pytest.raises(expr.RenderError, match="inf is not a JSON number"):
        one("{{ [1e308 * 10] }}")


def test_an_error_in_a_text_part_quotes_that_part():
    with pytest.raises(expr.RenderError) as caught:
        one("{{ 1 }} and {{ len(null) }}")
    assert caught.value.expression == "len(null)"


def test_every_invalid_template_is_reported_at_once():
    with pytest.raises(expr.ConfigParseErrors) as caught:
        expr.compile_config({"a": "{{ 1 + }}", "b": ["ok", "{{ $nope }}"], "c": "{{ unclosed"})
    errors = caught.value.errors
    assert [path for path, _ in errors] == [("a",), ("b", 1), ("c",)]
    text = str(caught.value)
    assert "a: syntax error" in text
    assert "in {{ 1 + }}" in text
    assert "b[1]: unknown name $nope" in text
    assert "c: '{{' is never closed by '}}' in {{ unclosed }}" in text


# --- to_json_value --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        (3, 3),
        (1.5, 1.5),
        ("s", "s"),
        ((1, (2,)), [1, [2]]),
        (range(2), [0, 1]),
        ([NOW], ["2024-05-01T10:30:00+00:00"]),
        (date(2024, 1, 2), "2024-01-02"),
        (timedelta(hours=1), 3600.0),
        (ChainMap({"a": 1}, {"b": 2}), {"a": 1, "b": 2}),
        (
            {1: "one", 2.5: "x", None: "n", False: "f"},
            {"1": "one", "2.5": "x", "null": "n", "false": "f"},
        ),
        ({"a": [1, {"b": (2,)}]}, {"a": [1, {"b": [2]}]}),
    ],
)
def test_to_json_value_makes_values_json_safe(value, expected):
    assert expr.to_json_value(value) == expected


def test_to_json_value_returns_plain_json_unchanged():
    value = {"a": [1, "x", None], "b": {"c": True}}
    assert expr.to_json_value(value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (math.nan, "nan is not a JSON number"),
        ([math.inf], "inf is not a JSON number"),
        ({1, 2}, "a set is not a JSON value"),
        ({(1, 2): "x"}, "a list cannot be an object key"),
        (2**20_000, "number too large for JSON"),
        ([2**20_000], "number too large for JSON"),
        (object(), "a object is not a JSON value"),
    ],
    ids=["nan", "inf", "set", "tuple-key", "big-int", "big-int-in-list", "object"],
)
def test_to_json_value_refuses_what_json_cannot_hold(value, message):
    with pytest.raises(expr.EvalError, match=message):
        expr.to_json_value(value)


def test_to_json_value_refuses_data_nested_too_deeply():
    value: list[object] = []
    for _ in range(5_000):
        value = [value]
    with pytest.raises(expr.EvalError, match="nests too deeply"):
        expr.to_json_value(value)


def test_text_of_data_nested_too_deeply_is_a_render_error():
    value: list[object] = []
    for _ in range(5_000):
        value = [value]
    with pytest.raises(expr.RenderError, match="nests too deeply"):
        one("x {{ $input }}", expr.Scope(input=value))


def test_to_text_and_to_json_text_are_the_text_forms():
    assert expr.to_text(None) == ""
    assert expr.to_text(False) == "false"
    assert expr.to_text(2.0) == "2.0"
    assert expr.to_text({"a": [1]}) == '{"a":[1]}'
    assert expr.to_json_text("x") == '"x"'
    assert expr.to_json_text(None) == "null"


# --- one budget per render ------------------------------------------------------------------------


def test_the_expressions_of_one_render_share_one_budget():
    config = ["{{ len('x' * 9_000_000) }}"] * 12
    with pytest.raises(expr.RenderError) as caught:
        render(config)
    assert caught.value.path == (11,)
    assert "values built are too large" in caught.value.message


def test_each_render_gets_a_fresh_budget():
    compiled = expr.compile_config(["{{ len('x' * 9_000_000) }}"] * 11)
    assert compiled.render(SCOPE) == [9_000_000] * 11
    assert compiled.render(SCOPE) == [9_000_000] * 11


def test_text_copied_into_rendered_strings_counts_against_the_budget():
    big = expr.Scope(input={"s": "x" * 9_000_000})
    compiled = expr.compile_config(["<{{ $input.s }}>"] * 12)
    with pytest.raises(expr.RenderError, match="values built are too large"):
        compiled.render(big)


def test_a_rendered_string_longer_than_the_limit_is_refused():
    big = expr.Scope(input={"s": "x" * 6_000_000})
    with pytest.raises(expr.RenderError, match="rendered text longer than 10,000,000"):
        one("{{ $input.s }}{{ $input.s }}", big)


def test_a_large_value_passes_through_by_reference():
    data = {"rows": list(range(200_000)), "body": "x" * 9_000_000}
    result = one("{{ $input }}", expr.Scope(input=data))
    assert result == data
    assert result["rows"] is data["rows"]
    assert result["body"] is data["body"]
