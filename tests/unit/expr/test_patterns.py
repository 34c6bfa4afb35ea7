"""conv3n.expr.patterns: regular expressions bounded before they are compiled."""

import pytest

from conv3n import expr
from conv3n.expr import patterns


@pytest.mark.parametrize(
    ("pattern", "size"),
    [
        ("abc", 3),
        (r"\d{3}-\d{4}", 8),
        ("(ab){3}c", 7),
        ("x{1000000}", 1_000_000),
        ("x{500,1000}", 500),
        ("x{0,1000000}", 1),
        ("x{,5}", 5),
        ("[a-z]{5}", 5),
        ("[]{}]{10}", 10),
        (r"\{1000\}", 6),
        ("((a{10}){10}){10}", 1_000),
    ],
)
def test_expanded_size_multiplies_minimum_repeat_counts(pattern, size):
    assert patterns.expanded_size(pattern) == size


def test_compiled_patterns_are_reused():
    first = patterns.compile_pattern("[a-c]+q")
    assert patterns.compile_pattern("[a-c]+q") is first


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (5, "a regular expression must be a string, not a number"),
        ("a" * 1_001, "regular expression longer than 1,000 characters"),
        ("a{1001}", "regular expression repeats too much"),
        ("(", "invalid regular expression"),
        ("a**", "invalid regular expression: multiple repeat"),
    ],
)
def test_bad_patterns_are_refused(pattern, message):
    with pytest.raises(expr.EvalError, match=message):
        patterns.compile_pattern(pattern)


def test_a_pattern_at_the_expanded_limit_is_allowed():
    assert patterns.match("b" + "a" * 1_000, "a{1000}")


def test_findall_gives_whole_matches_single_groups_or_lists_of_groups():
    assert patterns.findall("a1 b2", r"[a-z]\d") == ["a1", "b2"]
    assert patterns.findall("a1 b", r"[a-z](\d)?") == ["1", ""]
    assert patterns.findall("a1 b", r"([a-z])(\d)?") == [["a", "1"], ["b", ""]]
