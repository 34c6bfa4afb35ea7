"""std/condition: an expression's truth picks the `true` or `false` port."""

import pytest

from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON
from conv3n.testing import run_block, run_workflow


@pytest.mark.parametrize(
    ("value", "port"),
    [
        (True, "true"),
        (False, "false"),
        (None, "false"),
        (0, "false"),
        (0.0, "false"),
        (1, "true"),
        (-1, "true"),
        ("", "false"),
        ("no", "true"),
        ("false", "true"),
        ([], "false"),
        ([0], "true"),
        ({}, "false"),
        ({"a": None}, "true"),
    ],
)
async def test_truthiness_picks_the_port(value: JSON, port: str):
    result = await run_block("std/condition", {"expression": "{{ $input.v }}"}, input={"v": value})
    assert result.status == "success", result.error
    assert result.data == {"result": port == "true"}
    assert result.ports == [port]


async def test_comparison_expression_picks_the_true_port():
    config = {"expression": "{{ len($input.orders) > 0 }}"}
    result = await run_block("std/condition", config, input={"orders": [1]})
    assert result.ports == ["true"]


def _branches(value: JSON) -> dict[str, JSON]:
    return {
        "nodes": [
            {"id": "check", "type": "std/condition", "config": {"expression": value}},
            {"id": "yes", "type": "std/transform", "config": {"template": "yes"}},
            {"id": "no", "type": "std/transform", "config": {"template": "no"}},
            {"id": "after_no", "type": "std/noop"},
        ],
        "connections": [
            {"from": "check", "port": "true", "to": "yes"},
            {"from": "check", "port": "false", "to": "no"},
            {"from": "no", "to": "after_no"},
        ],
    }


async def test_true_runs_the_true_branch_and_skips_the_false_branch():
    record = await run_workflow(_branches("{{ $input.ok }}"), {"ok": True})
    assert record.status == "success", record.error
    statuses = {node_id: node.status for node_id, node in record.nodes.items()}
    assert statuses == {
        "check": "success",
        "yes": "success",
        "no": "skipped",
        "after_no": "skipped",
    }
    assert record.output == "yes"


async def test_false_runs_the_false_branch_and_skips_the_true_branch():
    record = await run_workflow(_branches("{{ $input.ok }}"), {"ok": False})
    assert record.nodes["yes"].status == "skipped"
    assert record.nodes["after_no"].status == "success"
    assert record.output == "no"


async def test_expression_error_fails_the_node_quoting_it():
    config = {"expression": "{{ $input.n + 1 > 2 }}"}
    result = await run_block("std/condition", config, input={})
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "expression_error"
    assert "$input.n + 1 > 2" in result.error.message


async def test_connecting_from_an_unknown_port_names_the_connection():
    document = _branches(True)
    document["connections"].append({"from": "check", "port": "maybe", "to": "after_no"})
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_workflow(document)
    [problem] = invalid.value.problems
    assert problem.where == "connections[3].port"
    assert "maybe" in problem.message


async def test_missing_expression_is_a_workflow_error():
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/condition", {})
    assert [p.where for p in invalid.value.problems] == ["nodes[0].config.expression"]
