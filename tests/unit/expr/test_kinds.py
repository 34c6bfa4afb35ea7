"""conv3n.expr.kinds: user-facing type names, value sizes and text forms."""

from collections import ChainMap
from datetime import UTC, date, datetime, timedelta

import pytest

from conv3n.expr import kinds


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        (True, "bool"),
        (1, "number"),
        (1.5, "number"),
        ("s", "string"),
        ([], "list"),
        ((), "list"),
        (range(1), "list"),
        ({}, "object"),
        (ChainMap(), "object"),
        (datetime(2024, 1, 1, tzinfo=UTC), "datetime"),
        (date(2024, 1, 1), "date"),
        (timedelta(1), "duration"),
        (b"x", "bytes"),
    ],
)
def test_type_name_is_the_json_name(value, name):
    assert kinds.type_name(value) == name


def test_measure_counts_characters_and_items():
    assert kinds.measure("abc", 100) == 3
    assert kinds.measure(5, 100) == 0
    assert kinds.measure(["ab", 1, [None]], 1_000) == 3 * 16 + 2 + 16
    assert kinds.measure({"key": "v"}, 1_000) == 16 + 3 + 1


def test_measure_counts_a_shared_part_every_time_it_appears():
    part = ["x" * 10]
    assert kinds.measure([part, part, part], 10_000) == 3 * 16 + 3 * (16 + 10)


def test_measure_stops_counting_past_the_limit():
    huge = [["x" * 1_000] * 1_000] * 1_000
    assert 1_000 < kinds.measure(huge, 1_000) < 2_000_000


def test_measure_counts_ranges_and_mappings_as_containers():
    assert kinds.measure(range(10), 1_000) == 160
    assert kinds.measure(ChainMap({"a": "bc"}), 1_000) == 16 + 1 + 2
    assert kinds.measure([range(2)], 1_000, item=1) == 3


def test_measure_of_a_value_it_does_not_know_is_zero():
    assert kinds.measure(object(), 10) == 0


def test_outline_counts_two_levels():
    assert kinds.outline([["ab"] * 3, "cd"]) == 2 * 16 + 3 * 16 + 2
    assert kinds.outline({"ab": "cd"}) == 16 + 2 + 2
    assert kinds.outline(3) == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x" * 10_000_001, "string longer than 10,000,000 characters"),
        ([0] * 1_000_001, "list longer than 1,000,000 items"),
        (dict.fromkeys(range(1_000_001)), "object longer than 1,000,000 items"),
    ],
    ids=["string", "list", "object"],
)
def test_check_length_refuses_values_past_the_limits(value, message):
    with pytest.raises(kinds.EvalError, match=message):
        kinds.check_length(value)


def test_check_length_accepts_values_at_the_limits():
    kinds.check_length("x" * 10_000_000)
    kinds.check_length([0] * 1_000_000)


def test_to_json_text_refuses_text_longer_than_the_limit_before_building_it():
    with pytest.raises(kinds.EvalError, match="JSON text longer than 10,000,000 characters"):
        kinds.to_json_text([["x" * 1_000] * 1_000] * 1_000)


def test_to_json_text_writes_durations_ranges_and_mappings():
    value = {"d": timedelta(seconds=1.5), "r": range(2), "m": ChainMap({"a": 1})}
    assert kinds.to_json_text(value) == '{"d":1.5,"r":[0,1],"m":{"a":1}}'


def test_to_json_text_refuses_values_json_cannot_hold():
    with pytest.raises(TypeError, match="a object is not JSON"):
        kinds.to_json_text([object()])
