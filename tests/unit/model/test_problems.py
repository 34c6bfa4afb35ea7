"""model/problems.py: where a problem is, as users read it."""

import pytest

from conv3n.model import Problem, format_path


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("version",), "version"),
        (("nodes", 2, "config", "url"), "nodes[2].config.url"),
        (("connections", 4, "to"), "connections[4].to"),
        (("nodes", 0, "config", "body", "nodes", 1, "id"), "nodes[0].config.body.nodes[1].id"),
        (("nodes", 0, "config", "matrix", 1, 2), "nodes[0].config.matrix[1][2]"),
        ((0,), "[0]"),
    ],
)
def test_format_path_renders_keys_with_dots_and_indexes_in_brackets(
    path: tuple[str | int, ...], text: str
) -> None:
    assert format_path(path) == text


def test_problem_at_the_root_is_shown_as_the_document() -> None:
    problem = Problem((), "not valid YAML")
    assert problem.where == "(document)"
    assert str(problem) == "(document): not valid YAML"


def test_problem_renders_place_then_message() -> None:
    problem = Problem(("nodes", 2, "config", "url"), "required field is missing")
    assert str(problem) == "nodes[2].config.url: required field is missing"
    assert problem.to_json() == {
        "path": "nodes[2].config.url",
        "message": "required field is missing",
    }


def test_problems_are_values() -> None:
    assert Problem(("a",), "m") == Problem(("a",), "m")
    assert len({Problem(("a",), "m"), Problem(("a",), "m")}) == 1
    with pytest.raises(AttributeError):
        Problem(("a",), "m").message = "other"  # type: ignore[misc]
