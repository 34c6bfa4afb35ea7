"""std/noop passes its input on; std/fail fails the node with a message and details."""

import pytest

from conv3n.errors import WorkflowInvalid
from conv3n.testing import run_block, run_workflow


async def test_noop_start_node_passes_the_execution_input():
    result = await run_block("std/noop", input={"a": [1, 2]})
    assert result.status == "success", result.error
    assert result.data == {"a": [1, 2]}


async def test_noop_passes_its_predecessors_data():
    record = await run_workflow(
        {
            "nodes": [
                {"id": "make", "type": "std/transform", "config": {"template": {"made": True}}},
                {"id": "pass", "type": "std/noop"},
            ],
            "connections": [{"from": "make", "to": "pass"}],
        },
        {"not": "this"},
    )
    assert record.nodes["pass"].data == {"made": True}


async def test_noop_rejects_config():
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/noop", {"x": 1})
    assert [p.where for p in invalid.value.problems] == ["nodes[0].config.x"]


async def test_fail_fails_with_the_rendered_message_and_details():
    config = {"message": "order {{ $input.id }} is bad", "details": {"id": "{{ $input.id }}"}}
    result = await run_block("std/fail", config, input={"id": 7}, retry={"max_attempts": 3})
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "block_error"
    assert result.error.message == "order 7 is bad"
    assert result.error.details == {"id": 7}
    assert result.error.node == "node"
    assert result.attempts == 1


async def test_fail_has_a_default_message():
    result = await run_block("std/fail")
    assert result.error is not None
    assert result.error.message == "failed by std/fail"


async def test_fail_stops_the_execution_with_its_error():
    record = await run_workflow(
        {
            "nodes": [
                {"id": "stop", "type": "std/fail", "config": {"message": "stop here"}},
                {"id": "after", "type": "std/noop"},
            ],
            "connections": [{"from": "stop", "to": "after"}],
        }
    )
    assert record.status == "error"
    assert record.error is not None
    assert (record.error.node, record.error.message) == ("stop", "stop here")
    assert record.nodes["after"].status != "success"


async def test_fail_routed_to_the_error_port_is_seen_downstream():
    record = await run_workflow(
        {
            "nodes": [
                {
                    "id": "stop",
                    "type": "std/fail",
                    "config": {"message": "no"},
                    "on_error": "route",
                },
                {
                    "id": "handle",
                    "type": "std/transform",
                    "config": {"template": "handled: {{ $node.stop.error.message }}"},
                },
            ],
            "connections": [{"from": "stop", "port": "error", "to": "handle"}],
        }
    )
    assert record.status == "success", record.error
    assert record.output == "handled: no"
