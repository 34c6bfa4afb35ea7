"""conv3n.expr.evaluator: names, access, operators and errors of evaluated expressions."""

from collections import ChainMap
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conv3n import expr
from conv3n.expr.budget import Budget

NOW = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)


def scope(**names) -> expr.Scope:
    defaults = {
        "input": {"user": {"name": "Ann", "tags": ["a", "b"]}, "items": [1, 2, 3], "n": 0},
        "node": {"fetch": {"data": {"x": 41, "rows": [{"id": 7}]}, "status": "succeeded"}},
        "vars": {"limit": 10},
        "secrets": {"TOKEN": "s3cret"},
        "env": {"REGION": "eu"},
        "execution": {"id": "ex1", "workflow_id": "wf1", "mode": "manual"},
        "now": NOW,
    }
    defaults.update(names)
    return expr.Scope(**defaults)


def ev(source: str, **names):
    return expr.evaluate(expr.compile_expression(source), scope(**names))


def error(source: str, **names) -> str:
    with pytest.raises(expr.EvalError) as caught:
        ev(source, **names)
    return str(caught.value)


# --- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("$input.user.name", "Ann"),
        ("$node.fetch.data.x", 41),
        ("$node.fetch.status", "succeeded"),
        ("$vars.limit", 10),
        ("$secrets.TOKEN", "s3cret"),
        ("$env.REGION", "eu"),
        ("$execution.workflow_id", "wf1"),
        ("$now.year", 2024),
    ],
)
def test_dollar_names_read_the_scope(source, expected):
    assert ev(source) == expected


def test_loop_names_read_item_and_index():
    assert ev("[$item, $index]", item={"v": 1}, index=3) == [{"v": 1}, 3]


def test_input_may_be_any_json_value():
    assert ev("$input", input=[1, 2]) == [1, 2]
    assert ev("$input + 1", input=4) == 5


def test_empty_scope_gives_null_for_every_name_and_empty_objects():
    empty = expr.Scope()
    values = [
        expr.evaluate(expr.compile_expression(f"${n}"), empty) for n in sorted(expr.DOLLAR_NAMES)
    ]
    assert values == [{}, {}, None, None, None, {}, None, {}, {}]


def test_node_views_may_be_any_mapping():
    views = ChainMap({"inner": {"data": 1}}, {"outer": {"data": 2}})
    assert ev("[$node.inner.data, $node['outer'].data]", node=views) == [1, 2]


def test_scope_child_replaces_only_the_given_names():
    parent = scope()
    child = parent.child(item=5, index=0)
    compiled = expr.compile_expression("[$item, $index, $vars.limit]")
    assert expr.evaluate(compiled, child) == [5, 0, 10]
    assert expr.evaluate(compiled, parent) == [None, None, 10]


# --- access: missing gives null -------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "$input.missing",
        "$input.missing.deeper.still",
        "$input['missing']",
        "$input.items[10]",
        "$input.items[-10]",
        "$input.user.name.first",
        "$input.n.anything",
        "$input.items.length",
        "$node.nope.data",
        "$secrets.NOPE",
        "$env.NOPE",
        "null.x",
        "null[0]",
        "null['k']",
        "$now.days",
        "(1).real",
        "'abc'.upper",
    ],
)
def test_missing_key_index_or_attribute_yields_null(source):
    assert ev(source) is None


def test_index_access_reads_lists_and_strings():
    assert ev("[$input.items[0], $input.items[-1], 'abc'[1]]") == [1, 3, "b"]


def test_key_access_reads_objects_with_any_key_text():
    assert ev("$input['odd key']", input={"odd key": 1}) == 1
    assert ev("$input['_id']", input={"_id": 2}) == 2


def test_attribute_access_reads_datetime_and_duration_fields():
    assert ev("[$now.month, $now.day, $now.hour, $now.minute]") == [5, 1, 10, 30]
    assert ev("(timedelta(days=2, seconds=5)).days") == 2


def test_slices_copy_parts_of_lists_and_strings():
    assert ev("[$input.items[1:], $input.items[:-1], $input.items[::-1], 'hello'[1:3]]") == [
        [2, 3],
        [1, 2],
        [3, 2, 1],
        "el",
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("$input.items['a']", "cannot index a list with a string"),
        ("$input.items[1.5]", "cannot index a list with a number"),
        ("'abc'[true]", "cannot index a string with a bool"),
        ("$input[[1]]", "cannot use a list as a key"),
        ("$input[{}]", "cannot use a object as a key"),
        ("$input[1:2]", "cannot slice an object"),
        ("(5)[0]", "cannot index a number"),
        ("$input.items[::0]", "slice step cannot be zero"),
        ("$input.items['a':]", "slice bounds must be whole numbers, not a string"),
    ],
)
def test_wrong_kind_of_index_is_an_error(source, message):
    assert message in error(source)


# --- null where a value is needed -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("null + 1", "unsupported operand type(s) for +: null and number"),
        ("$input.missing + 1", "unsupported operand type(s) for +: null and number"),
        ("1 + $input.missing", "unsupported operand type(s) for +: number and null"),
        ("$input.missing + $input.other", "unsupported operand type(s) for +: null and null"),
        ("$input.missing * 2", "unsupported operand type(s) for *: null and number"),
        ("$input.missing - 1", "unsupported operand type(s) for -: null and number"),
        ("$input.missing < 1", "'<' not supported between instances of null and number"),
        ("len($input.missing)", "len() of null"),
        ("int($input.missing)", "int() of null"),
        ("float(null)", "float() of null"),
        ("$input.missing.upper()", "cannot call .upper() on null"),
        ("[x for x in $input.missing]", "cannot iterate over a null"),
    ],
)
def test_null_where_a_value_is_needed_is_an_error(source, message):
    assert message in error(source)


def test_type_names_in_errors_are_the_json_ones():
    message = error("'a' + 1")
    assert message == "unsupported operand type(s) for +: string and number"
    assert "str" not in error("[1] + 'a'").replace("string", "")


# --- operators ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("-7 % 3", 2),
        ("2 ** 10", 1024),
        ("2 ** -1", 0.5),
        ("2.5 * 2", 5.0),
        ("-$node.fetch.data.x", -41),
        ("+$node.fetch.data.x", 41),
        ("6 & 3", 2),
        ("6 | 3", 7),
        ("6 ^ 3", 5),
        ("'ab' + 'cd'", "abcd"),
        ("'ab' * 2", "abab"),
        ("2 * 'ab'", "abab"),
        ("[1] + [2]", [1, 2]),
        ("[0] * 3", [0, 0, 0]),
        ("[1] * -1", []),
        ("$now - timedelta(days=1)", NOW - timedelta(days=1)),
        ("$now + timedelta(hours=1) > $now", True),
        ("1 < 2 <= 2 != 3", True),
        ("1 == 1.0", True),
        ("'b' > 'a'", True),
        ("[1, 2] == [1, 2]", True),
        ("2 in $input.items", True),
        ("'name' in $input.user", True),
        ("'nn' in $input.user.name", True),
        ("5 not in $input.items", True),
        ("$input.missing is null", True),
        ("$input is not null", True),
        ("true and 'x'", "x"),
        ("0 or 'fallback'", "fallback"),
        ("null or $input.missing or 3", 3),
        ("not $input.items", False),
        ("'yes' if $input.items else 'no'", "yes"),
        ("'yes' if $input.n else 'no'", "no"),
    ],
)
def test_operators_follow_python(source, expected):
    assert ev(source) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("1 / 0", "division by zero"),
        ("1 % 0", "modulo by zero"),
        ("'%d' % 1", "'%' is not defined for strings"),
        ("'a' - 'b'", "unsupported operand type(s) for -: string and string"),
        ("'a' * 'b'", "can't multiply sequence by non-int of type string"),
        ("'a' * true", "cannot repeat a string by a bool"),
        ("[1] * 1.5", "can't multiply sequence by non-int of type number"),
        ("(-8) ** 0.5", "the result is not a real number"),
        ("2.0 ** 10000", "number too large"),
        ("'a' < 1", "'<' not supported between instances of string and number"),
        ("[1] + 'a'", "unsupported operand type(s) for +: list and string"),
        ("{} + {}", "unsupported operand type(s) for +: object and object"),
    ],
)
def test_operator_errors_are_eval_errors(source, message):
    assert message in error(source)


# --- literals and comprehensions ------------------------------------------------------------------


def test_object_and_list_literals_build_values():
    assert ev("{'name': $input.user.name, 'tags': [t.upper() for t in $input.user.tags]}") == {
        "name": "Ann",
        "tags": ["A", "B"],
    }


def test_tuples_are_lists_once_rendered():
    assert expr.to_json_value(ev("(1, (2, 3))")) == [1, [2, 3]]


def test_list_comprehension_with_filter():
    assert ev("[x * 10 for x in $input.items if x != 2]") == [10, 30]


def test_nested_comprehension_iterates_in_order():
    assert ev("[[x, y] for x in range(3) for y in range(x)]") == [[1, 0], [2, 0], [2, 1]]


def test_dict_comprehension_builds_an_object():
    assert ev("{k: v + 1 for k, v in items({'a': 1, 'b': 2})}") == {"a": 2, "b": 3}


def test_comprehension_over_an_object_gives_its_keys():
    assert ev("[k for k in $input.user]") == ["name", "tags"]


def test_generator_expression_feeds_a_function():
    assert ev("sum(r.id for r in $node.fetch.data.rows)") == 7


def test_comprehension_over_a_string_gives_characters():
    assert ev("[c for c in 'ab']") == ["a", "b"]


def test_comprehension_over_a_number_is_an_error():
    assert "cannot iterate over a number" in error("[x for x in 5]")


def test_lambda_key_sees_outer_comprehension_variables():
    assert ev("[sorted([3, 1, 2], key=lambda v: v * s) for s in [1, -1]]") == [
        [1, 2, 3],
        [3, 2, 1],
    ]


# --- errors --------------------------------------------------------------------------------------


def test_python_errors_become_eval_errors_without_a_chained_cause():
    with pytest.raises(expr.EvalError) as caught:
        ev("int('x')")
    assert caught.value.__cause__ is None
    assert "invalid literal for int()" in str(caught.value)


def test_long_error_messages_are_cut_short():
    message = error("$input.items.index($input.big)", input={"items": [], "big": "x" * 100_000})
    assert len(message) < 400
    assert message.endswith("...")


def test_deep_recursion_in_data_is_an_eval_error():
    assert "nests too deeply" in error("to_json($input)", input=_deep(5_000))


def _deep(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


# --- budgets --------------------------------------------------------------------------------------


def test_a_given_budget_is_spent_by_the_evaluation():
    budget = Budget()
    compiled = expr.compile_expression("[x for x in range(10)]")
    expr.evaluate(compiled, expr.Scope(), budget)
    assert budget.steps == 2_000_000 - 10


def test_a_shared_budget_runs_out_across_evaluations():
    budget = Budget()
    compiled = expr.compile_expression("len('x' * 9_000_000)")
    for _ in range(11):
        expr.evaluate(compiled, expr.Scope(), budget)
    with pytest.raises(expr.EvalError, match="values built are too large"):
        expr.evaluate(compiled, expr.Scope(), budget)


def test_each_evaluation_without_a_budget_gets_a_fresh_one():
    compiled = expr.compile_expression("len('x' * 9_000_000)")
    for _ in range(20):
        assert expr.evaluate(compiled, expr.Scope()) == 9_000_000


# --- any expression evaluates or fails cleanly ----------------------------------------------------

_ATOMS = st.sampled_from(
    [
        "1",
        "0",
        "-2.5",
        "'ab'",
        "''",
        "null",
        "true",
        "[1, 'a']",
        "{'k': 1}",
        "$input",
        "$input.items",
        "$input.user.name",
        "$input.missing",
        "$now",
        "range(3)",
        "timedelta(hours=1)",
    ]
)
_BINARY = st.sampled_from(
    ["+", "-", "*", "/", "//", "%", "**", "==", "<", "in", "and", "or", "&", "|", "^"]
)


def _expressions() -> st.SearchStrategy[str]:
    def extend(children):
        return st.one_of(
            st.tuples(children, _BINARY, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            children.map(lambda c: f"(not {c})"),
            children.map(lambda c: f"(-{c})"),
            children.map(lambda c: f"({c})[0]"),
            children.map(lambda c: f"({c}).key"),
            children.map(lambda c: f"({c})[1:]"),
            st.tuples(children, st.sampled_from(sorted(expr.FUNCTIONS))).map(
                lambda t: f"{t[1]}({t[0]})"
            ),
            st.tuples(children, st.sampled_from(["upper", "get", "index", "split", "keys"])).map(
                lambda t: f"({t[0]}).{t[1]}()"
            ),
            children.map(lambda c: f"[x for x in {c}]"),
            st.tuples(children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[0]})"),
        )

    return st.recursive(_ATOMS, extend, max_leaves=8)


@pytest.mark.timeout(60)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_expressions())
def test_any_generated_expression_evaluates_or_raises_an_eval_error(source):
    compiled = expr.compile_expression(source)
    problem: expr.EvalError | None = None
    try:
        expr.to_json_value(expr.evaluate(compiled, scope()))
    except expr.EvalError as exc:
        problem = exc
    assert problem is None or str(problem)


@pytest.mark.timeout(60)
@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_any_text_compiles_or_raises_a_parse_error(source):
    problem: Exception | None = None
    try:
        expr.evaluate(expr.compile_expression(source), scope())
    except (expr.ParseError, expr.EvalError) as exc:
        problem = exc
    assert problem is None or str(problem)
