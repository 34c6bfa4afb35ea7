"""conv3n.expr.functions: every documented function and method, with its edge cases."""

import re
from datetime import UTC, date, datetime

import pytest

from conv3n import expr
from conv3n.expr import functions

NOW = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)  # a Wednesday
PEOPLE = [{"name": "Bob", "age": 25}, {"name": "Ann", "age": 31}, {"name": "Cy", "age": 19}]


def ev(source: str, **names):
    names.setdefault("input", {"people": PEOPLE, "items": [3, 1, 2]})
    names.setdefault("now", NOW)
    return expr.evaluate(expr.compile_expression(source), expr.Scope(**names))


def error(source: str) -> str:
    with pytest.raises(expr.EvalError) as caught:
        ev(source)
    return str(caught.value)


FUNCTION_CASES = [
    ("len", "len([1, 2, 3])", 3),
    ("len", "len('abc')", 3),
    ("len", "len({'a': 1})", 1),
    ("str", "str(1)", "1"),
    ("str", "str(1.5)", "1.5"),
    ("str", "str(true)", "true"),
    ("str", "str(null)", ""),
    ("str", "str([1, 'a', null])", '[1,"a",null]'),
    ("str", "str({'a': {'b': 1}})", '{"a":{"b":1}}'),
    ("str", "str()", ""),
    ("str", "str($now)", "2024-05-01T10:30:00+00:00"),
    ("int", "int('42')", 42),
    ("int", "int(' -7 ')", -7),
    ("int", "int('ff', 16)", 255),
    ("int", "int(3.9)", 3),
    ("int", "int(true)", 1),
    ("float", "float('1.5')", 1.5),
    ("float", "float(2)", 2.0),
    (
        "bool",
        "[bool(0), bool(''), bool([]), bool('x'), bool([0])]",
        [False, False, False, True, True],
    ),
    ("round", "round(2.567, 2)", 2.57),
    ("round", "round(2.5)", 2),
    ("round", "round(3.14159, ndigits=1)", 3.1),
    ("abs", "abs(-3)", 3),
    ("abs", "abs(-2.5)", 2.5),
    ("min", "min($input.items)", 1),
    ("min", "min(4, 2, 9)", 2),
    ("min", "min([], default=0)", 0),
    ("min", "min($input.people, key=lambda p: p.age).name", "Cy"),
    ("max", "max($input.items)", 3),
    ("max", "max('b', 'a')", "b"),
    ("max", "max($input.people, key=lambda p: p.age).name", "Ann"),
    ("sum", "sum($input.items)", 6),
    ("sum", "sum([0.5, 1], 10)", 11.5),
    ("sum", "sum(p.age for p in $input.people)", 75),
    ("sorted", "sorted($input.items)", [1, 2, 3]),
    ("sorted", "sorted($input.items, reverse=true)", [3, 2, 1]),
    (
        "sorted",
        "[p.name for p in sorted($input.people, key=lambda p: p.name)]",
        ["Ann", "Bob", "Cy"],
    ),
    ("sorted", "sorted({'b': 1, 'a': 2})", ["a", "b"]),
    ("reversed", "reversed([1, 2, 3])", [3, 2, 1]),
    ("reversed", "reversed('ab')", ["b", "a"]),
    ("list", "list('ab')", ["a", "b"]),
    ("list", "list({'a': 1})", ["a"]),
    ("list", "list(range(3))", [0, 1, 2]),
    ("dict", "dict([['a', 1], ['b', 2]])", {"a": 1, "b": 2}),
    ("dict", "dict(a=1)", {"a": 1}),
    ("dict", "dict(zip(['x', 'y'], [1, 2]))", {"x": 1, "y": 2}),
    ("set", "set([2, 1, 2, 1])", [2, 1]),
    ("set", "set()", []),
    ("range", "list(range(3))", [0, 1, 2]),
    ("range", "list(range(1, 8, 3))", [1, 4, 7]),
    ("range", "list(range(3, 0, -1))", [3, 2, 1]),
    ("enumerate", "enumerate(['a', 'b'])", [[0, "a"], [1, "b"]]),
    ("enumerate", "enumerate(['a'], 1)", [[1, "a"]]),
    ("zip", "zip([1, 2, 3], ['a', 'b'])", [[1, "a"], [2, "b"]]),
    ("any", "any([0, '', 1])", True),
    ("any", "any(p.age > 30 for p in $input.people)", True),
    ("all", "all([1, 'x', [0]])", True),
    ("all", "all(p.age > 20 for p in $input.people)", False),
    ("keys", "keys({'a': 1, 'b': 2})", ["a", "b"]),
    ("values", "values({'a': 1, 'b': 2})", [1, 2]),
    ("items", "items({'a': 1})", [["a", 1]]),
    ("unique", "unique([1, 1, 'a', 'a', [1], [1], {'k': 1}, {'k': 1}])", [1, "a", [1], {"k": 1}]),
    ("unique", "unique([1, 1.0, true])", [1, 1.0, True]),
    (
        "type",
        "[type(null), type(true), type(1), type(1.5), type('a')]",
        ["null", "bool", "number", "number", "string"],
    ),
    (
        "type",
        "[type([]), type({}), type(range(2)), type((1,))]",
        ["list", "object", "list", "list"],
    ),
    (
        "type",
        "[type($now), type($now.date()), type(timedelta(days=1))]",
        ["datetime", "date", "duration"],
    ),
    ("coalesce", "coalesce(null, $input.missing, 0, 5)", 0),
    ("coalesce", "coalesce()", None),
    ("default", "default(null, 'x')", "x"),
    ("default", "default('', 'x')", "x"),
    ("default", "default(0, 'x')", 0),
    ("default", "default([], 'x')", []),
    ("json_parse", "json_parse('{\"a\": [1, null, true]}')", {"a": [1, None, True]}),
    ("json_parse", "json_parse('2')", 2),
    ("to_json", "to_json({'a': [1, null], 'b': 'é'})", '{"a":[1,null],"b":"é"}'),
    ("to_json", "to_json('x')", '"x"'),
    ("to_json", "to_json($now)", '"2024-05-01T10:30:00+00:00"'),
    ("to_json", "to_json(range(2))", "[0,1]"),
    (
        "parse_datetime",
        "parse_datetime('2024-05-01T10:00:00Z')",
        datetime(2024, 5, 1, 10, tzinfo=UTC),
    ),
    (
        "parse_datetime",
        "parse_datetime('2024-05-01T10:00:00')",
        datetime(2024, 5, 1, 10, tzinfo=UTC),
    ),
    (
        "parse_datetime",
        "parse_datetime('2024-05-01T12:00:00+02:00') == parse_datetime('2024-05-01T10:00:00Z')",
        True,
    ),
    ("from_timestamp", "from_timestamp(0)", datetime(1970, 1, 1, tzinfo=UTC)),
    ("from_timestamp", "from_timestamp(1714559400)", NOW),
    ("timedelta", "timedelta(hours=1).total_seconds()", 3600.0),
    ("timedelta", "timedelta(days=1, minutes=1, seconds=1, ms=500).total_seconds()", 86461.5),
    ("timedelta", "$now + timedelta(days=1) > $now", True),
    ("uuid4", "len(uuid4())", 36),
    ("uuid4", "uuid4() != uuid4()", True),
    ("base64_encode", "base64_encode('hi there')", "aGkgdGhlcmU="),
    ("base64_encode", "base64_encode(12)", "MTI="),
    ("base64_decode", "base64_decode('aGkgdGhlcmU=')", "hi there"),
    ("sha256", "sha256('abc')", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("sha256", "sha256({'a': 1}) == sha256('{\"a\":1}')", True),
    ("md5", "md5('abc')", "900150983cd24fb0d6963f7d28e17f72"),
    (
        "hmac_sha256",
        "hmac_sha256('key', 'The quick brown fox jumps over the lazy dog')",
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
    ),
    ("urlencode", "urlencode({'q': 'a b', 'n': 1, 'ok': true})", "q=a+b&n=1&ok=true"),
    ("urlencode", "urlencode('a b&c/d')", "a%20b%26c%2Fd"),
    ("match", r"match('order 123', r'\d+')", True),
    ("match", "match('abc', '^b')", False),
    ("match", "match('ABC', '(?i)abc')", True),
    ("findall", r"findall('a1b22c333', r'\d+')", ["1", "22", "333"]),
    ("findall", r"findall('a1 b2', r'([a-z])\d')", ["a", "b"]),
    ("findall", r"findall('k=v; x=y', r'(\w)=(\w)')", [["k", "v"], ["x", "y"]]),
    ("findall", "findall('abc', 'z')", []),
    ("floor", "floor(2.7)", 2),
    ("floor", "floor(-2.5)", -3),
    ("ceil", "ceil(2.1)", 3),
    ("sqrt", "sqrt(16)", 4.0),
]


@pytest.mark.parametrize(
    ("name", "source", "expected"), FUNCTION_CASES, ids=[c[1] for c in FUNCTION_CASES]
)
def test_function_returns_the_documented_value(name, source, expected):
    assert ev(source) == expected


def test_every_function_has_a_case():
    assert {c[0] for c in FUNCTION_CASES} == set(expr.FUNCTIONS)


def test_each_function_case_calls_its_function():
    for name, source, _ in FUNCTION_CASES:
        assert re.search(rf"\b{name}\(", source), (name, source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("len(null)", "len() of null"),
        ("len(5)", "object of type number has no len()"),
        ("int('x')", "invalid literal for int()"),
        ("int('9' * 5000)", "Exceeds the limit"),
        ("float('x')", "could not convert string to float"),
        ("min([])", "empty sequence"),
        ("sum(['a'], '')", "sum() adds numbers only"),
        ("sum([[1], [2]])", "unsupported operand type(s) for +: number and list"),
        ("sorted([1, 'a'])", "'<' not supported between instances of string and number"),
        ("sorted([1], key=5)", "number object is not callable"),
        ("range(1.5)", "range() takes whole numbers"),
        ("range(2_000_000)", "range of more than 1,000,000 items"),
        ("dict('ab')", "dictionary update sequence element"),
        ("list(5)", "number object is not iterable"),
        ("json_parse(5)", "json_parse() takes a string, not a number"),
        ("json_parse('{')", "Expecting property name"),
        ("parse_datetime('nope')", "Invalid isoformat string"),
        ("parse_datetime(5)", "parse_datetime() takes a string, not a number"),
        ("from_timestamp(1e20)", "out of range"),
        ("timedelta(days=1e10)", "too large"),
        ("base64_decode('a')", "Invalid base64-encoded string"),
        ("match(5, 'a')", "match() searches a string, not a number"),
        ("match('a', 5)", "a regular expression must be a string, not a number"),
        ("match('a', '(')", "invalid regular expression"),
        ("findall(null, 'a')", "findall() searches a string, not a null"),
        ("sqrt(-1)", "math domain error"),
        ("floor(float('inf'))", "cannot convert float infinity to integer"),
        ("round('a')", "round() takes a number, not a string"),
    ],
)
def test_function_misuse_is_an_eval_error(source, message):
    assert message in error(source)


def test_regular_expression_pattern_length_is_bounded():
    assert "longer than 1,000 characters" in error("match('a', 'a' * 1001)")


# --- methods --------------------------------------------------------------------------------------

METHOD_CASES = [
    ("string", "upper", "'aB'.upper()", "AB"),
    ("string", "lower", "'aB'.lower()", "ab"),
    ("string", "strip", "'  a '.strip()", "a"),
    ("string", "strip", "'xax'.strip('x')", "a"),
    ("string", "lstrip", "'  a '.lstrip()", "a "),
    ("string", "rstrip", "'  a '.rstrip()", "  a"),
    ("string", "split", "'a,b,,c'.split(',')", ["a", "b", "", "c"]),
    ("string", "split", "' a  b '.split()", ["a", "b"]),
    ("string", "split", "'a,b,c'.split(',', maxsplit=1)", ["a", "b,c"]),
    ("string", "rsplit", "'a-b-c'.rsplit('-', 1)", ["a-b", "c"]),
    ("string", "splitlines", "'a\\nb\\r\\nc'.splitlines()", ["a", "b", "c"]),
    ("string", "startswith", "'hello'.startswith('he')", True),
    ("string", "startswith", "'hello'.startswith(('x', 'h'))", True),
    ("string", "endswith", "'hello'.endswith('lo')", True),
    ("string", "find", "'hello'.find('l')", 2),
    ("string", "find", "'hello'.find('z')", -1),
    ("string", "rfind", "'hello'.rfind('l')", 3),
    ("string", "count", "'banana'.count('a')", 3),
    ("string", "title", "'hello world'.title()", "Hello World"),
    ("string", "capitalize", "'hello World'.capitalize()", "Hello world"),
    ("string", "casefold", "'Straße'.casefold()", "strasse"),
    ("string", "isdigit", "['123'.isdigit(), '12a'.isdigit()]", [True, False]),
    ("string", "isalpha", "['abc'.isalpha(), 'ab1'.isalpha()]", [True, False]),
    ("string", "isalnum", "['ab1'.isalnum(), 'a b'.isalnum()]", [True, False]),
    ("string", "isspace", "[' \\t'.isspace(), ' a'.isspace()]", [True, False]),
    ("string", "isupper", "['AB'.isupper(), 'Ab'.isupper()]", [True, False]),
    ("string", "islower", "['ab'.islower(), 'Ab'.islower()]", [True, False]),
    ("string", "removeprefix", "'v1.2'.removeprefix('v')", "1.2"),
    ("string", "removesuffix", "'file.txt'.removesuffix('.txt')", "file"),
    ("string", "partition", "'k=v=w'.partition('=')", ["k", "=", "v=w"]),
    ("string", "rpartition", "'k=v=w'.rpartition('=')", ["k=v", "=", "w"]),
    ("string", "swapcase", "'aB'.swapcase()", "Ab"),
    ("string", "join", "', '.join(['a', 'b'])", "a, b"),
    ("string", "join", "'-'.join([1, null, true, 'x'])", "1--true-x"),
    ("string", "join", "''.join(c.upper() for c in 'ab')", "AB"),
    ("string", "replace", "'a-b-c'.replace('-', '+')", "a+b+c"),
    ("string", "replace", "'a-b-c'.replace('-', '', 1)", "ab-c"),
    ("string", "zfill", "'42'.zfill(5)", "00042"),
    ("string", "ljust", "'ab'.ljust(4, '.')", "ab.."),
    ("string", "rjust", "'ab'.rjust(4)", "  ab"),
    ("string", "center", "'ab'.center(6, '*')", "**ab**"),
    ("object", "get", "{'a': 1}.get('a')", 1),
    ("object", "get", "{'a': 1}.get('b')", None),
    ("object", "get", "{'a': 1}.get('b', 0)", 0),
    ("object", "get", "$input.get('items')", [3, 1, 2]),
    ("object", "keys", "{'a': 1, 'b': 2}.keys()", ["a", "b"]),
    ("object", "values", "{'a': 1, 'b': 2}.values()", [1, 2]),
    ("object", "items", "{'a': 1}.items()", [["a", 1]]),
    ("list", "index", "['a', 'b'].index('b')", 1),
    ("list", "count", "[1, 2, 1].count(1)", 2),
    ("datetime", "isoformat", "$now.isoformat()", "2024-05-01T10:30:00+00:00"),
    ("datetime", "isoformat", "$now.isoformat(' ', 'minutes')", "2024-05-01 10:30+00:00"),
    ("datetime", "strftime", "$now.strftime('%Y/%m/%d %H:%M')", "2024/05/01 10:30"),
    ("datetime", "timestamp", "$now.timestamp()", 1714559400.0),
    ("datetime", "weekday", "$now.weekday()", 2),
    ("datetime", "date", "$now.date()", date(2024, 5, 1)),
    ("date", "isoformat", "$now.date().isoformat()", "2024-05-01"),
    ("date", "strftime", "$now.date().strftime('%d.%m.%Y')", "01.05.2024"),
    ("date", "weekday", "$now.date().weekday()", 2),
    ("duration", "total_seconds", "timedelta(minutes=2).total_seconds()", 120.0),
    ("duration", "total_seconds", "($now - parse_datetime('2024-05-01')).total_seconds()", 37800.0),
]


@pytest.mark.parametrize(
    ("kind", "name", "source", "expected"), METHOD_CASES, ids=[c[2] for c in METHOD_CASES]
)
def test_method_returns_the_documented_value(kind, name, source, expected):
    assert ev(source) == expected


def test_every_method_has_a_case():
    documented = {(kind, name) for kind, table in expr.METHODS.items() for name in table}
    assert {(c[0], c[1]) for c in METHOD_CASES} == documented


def test_each_method_case_calls_its_method():
    for _, name, source, _ in METHOD_CASES:
        assert f".{name}(" in source, (name, source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("null.upper()", "cannot call .upper() on null"),
        ("[1].upper()", "a list has no method .upper()"),
        ("'a'.get('x')", "a string has no method .get()"),
        ("(5).count(1)", "a number has no method .count()"),
        ("$now.total_seconds()", "a datetime has no method .total_seconds()"),
        ("[1, 2].index(5)", "5 is not in list"),
        ("'ab'.ljust(4, 'xy')", "The fill character must be exactly one character long"),
        ("'a'.split(1)", "must be str or None, not int"),
        ("$now.strftime(5)", "number object is not subscriptable"),
    ],
)
def test_method_misuse_is_an_eval_error(source, message):
    assert message in error(source)


def test_method_names_cover_every_table():
    assert frozenset(n for table in expr.METHODS.values() for n in table) == functions.METHOD_NAMES


def test_methods_are_looked_up_by_the_receiver_type_not_by_name():
    assert ev("['a', 'a'].count('a') + 'aa'.count('a')") == 4


def test_strftime_format_is_cut_at_200_characters():
    assert len(ev("$now.strftime('%Y' * 150)")) == 400
