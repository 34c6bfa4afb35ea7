"""std/switch: the first matching case picks the port; `default` when none matches."""

import pytest

from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON
from conv3n.testing import run_block, run_workflow

CASES = [
    {"port": "small", "expression": "{{ $input.n < 10 }}"},
    {"port": "seven", "equals": 7},
    {"port": "named", "equals": "{{ $input.name }}"},
]


async def _route(config: dict[str, JSON], input_: JSON = None) -> str:
    result = await run_block("std/switch", config, input=input_)
    assert result.status == "success", result.error
    assert result.data is not None
    assert result.ports == [result.data["port"]]
    return str(result.data["port"])


async def test_equals_case_matches_the_value():
    cases = [{"port": "a", "equals": "x"}, {"port": "b", "equals": "y"}]
    assert await _route({"value": "{{ $input.kind }}", "cases": cases}, {"kind": "y"}) == "b"


async def test_expression_case_matches_when_true():
    assert await _route({"cases": CASES}, {"n": 3}) == "small"


async def test_first_matching_case_wins():
    # n = 7 matches `small` (an expression) and `seven` (equals); `small` comes first.
    assert await _route({"value": 7, "cases": CASES}, {"n": 7}) == "small"
    assert await _route({"value": 7, "cases": CASES}, {"n": 70}) == "seven"


async def test_no_match_takes_the_default_port():
    assert await _route({"value": 1, "cases": CASES}, {"n": 50, "name": "x"}) == "default"


async def test_default_port_can_be_renamed():
    config = {"value": 1, "cases": [{"port": "a", "equals": 2}], "default": "other"}
    assert await _route(config) == "other"


@pytest.mark.parametrize(
    ("value", "equals", "port"),
    [
        (1, True, "default"),
        (True, 1, "default"),
        (0, False, "default"),
        (None, False, "default"),
        ("1", 1, "default"),
        (1, 1.0, "hit"),
        (True, True, "hit"),
        (None, None, "hit"),
        ({"a": [1, True]}, {"a": [1, True]}, "hit"),
        ({"a": [1, True]}, {"a": [1, 1]}, "default"),
        ([1, 2], [2, 1], "default"),
    ],
)
async def test_equals_compares_as_json(value: JSON, equals: JSON, port: str):
    config = {"value": value, "cases": [{"port": "hit", "equals": equals}]}
    assert await _route(config) == port


def _routed(kind: str) -> dict[str, JSON]:
    cases = [{"port": "a", "equals": "a"}, {"port": "b", "equals": "b"}]
    return {
        "nodes": [
            {"id": "pick", "type": "std/switch", "config": {"value": kind, "cases": cases}},
            {"id": "on_a", "type": "std/transform", "config": {"template": "A"}},
            {"id": "on_b", "type": "std/transform", "config": {"template": "B"}},
            {"id": "other", "type": "std/transform", "config": {"template": "?"}},
        ],
        "connections": [
            {"from": "pick", "port": "a", "to": "on_a"},
            {"from": "pick", "port": "b", "to": "on_b"},
            {"from": "pick", "port": "default", "to": "other"},
        ],
    }


@pytest.mark.parametrize(("kind", "ran"), [("a", "on_a"), ("b", "on_b"), ("z", "other")])
async def test_only_the_chosen_ports_successors_run(kind: str, ran: str):
    record = await run_workflow(_routed(kind))
    assert record.status == "success", record.error
    ran_nodes = {n for n, node in record.nodes.items() if node.status == "success"}
    assert ran_nodes == {"pick", ran}
    assert {node.status for n, node in record.nodes.items() if n not in ran_nodes} == {"skipped"}


async def test_connecting_from_a_port_no_case_declares_names_the_connection():
    document = _routed("a")
    document["connections"].insert(1, {"from": "pick", "port": "c", "to": "other"})
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_workflow(document)
    [problem] = invalid.value.problems
    assert problem.where == "connections[1].port"
    assert "'c'" in problem.message


async def test_renamed_default_replaces_the_default_port():
    document = _routed("a")
    document["nodes"][0]["config"]["default"] = "fallback"
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_workflow(document)
    assert [p.where for p in invalid.value.problems] == ["connections[2].port"]


@pytest.mark.parametrize(
    ("case", "place"),
    [
        ({"port": "a", "equals": 1, "expression": True}, "nodes[0].config.cases[0]"),
        ({"port": "a"}, "nodes[0].config.cases[0]"),
        ({"port": "not a port", "equals": 1}, "nodes[0].config.cases[0].port"),
        ({"equals": 1}, "nodes[0].config.cases[0].port"),
    ],
)
async def test_malformed_case_is_a_workflow_error_naming_it(case: JSON, place: str):
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/switch", {"value": 1, "cases": [case]})
    assert [p.where for p in invalid.value.problems] == [place]
