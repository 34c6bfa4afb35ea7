"""std/loop: the body runs once per item with `$item` and `$index`; outputs in item order."""

import itertools
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON
from conv3n.sdk import BlockSpec, Context, block
from conv3n.testing import run_workflow


def _loop(items: JSON, body_nodes: list[dict[str, Any]], **config: JSON) -> dict[str, Any]:
    """A workflow of one loop node `each` whose body is a chain of `body_nodes`."""
    connections = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(body_nodes)]
    body = {"nodes": body_nodes, "connections": connections}
    return {
        "nodes": [
            {"id": "each", "type": "std/loop", "config": {"items": items, "body": body, **config}}
        ]
    }


def _template(node_id: str, template: JSON) -> dict[str, Any]:
    return {"id": node_id, "type": "std/transform", "config": {"template": template}}


class TraceConfig(BaseModel):
    """Configuration of the test block test/trace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: JSON = None


def _tracer(finished: list[JSON]) -> BlockSpec:
    """test/trace: records `value` in `finished` as it finishes; returns value and its key."""

    @block("trace")
    async def trace(ctx: Context, config: TraceConfig) -> JSON:
        """Record the value."""
        finished.append(config.value)
        return {"value": config.value, "key": ctx.idempotency_key}

    return trace


async def test_item_and_index_are_visible_in_the_body():
    record = await run_workflow(
        _loop(["a", "b", "c"], [_template("pair", "{{ [$index, $item] }}")])
    )
    assert record.status == "success", record.error
    assert record.output == [[0, "a"], [1, "b"], [2, "c"]]


@pytest.mark.looptime
@pytest.mark.parametrize(("concurrency", "finishing"), [(1, [0, 1, 2, 3, 4]), (5, [4, 3, 2, 1, 0])])
async def test_outputs_keep_item_order_whatever_the_finishing_order(
    concurrency: int, finishing: list[int]
):
    finished: list[JSON] = []
    body = [
        {"id": "wait", "type": "std/delay", "config": {"ms": "{{ (5 - $index) * 1000 }}"}},
        {"id": "done", "type": "test/trace", "config": {"value": "{{ $index }}"}},
    ]
    document = _loop([10, 11, 12, 13, 14], body, concurrency=concurrency)
    record = await run_workflow(document, blocks=(_tracer(finished),))
    assert record.status == "success", record.error
    assert finished == finishing
    assert [out["value"] for out in record.output] == [0, 1, 2, 3, 4]


async def test_body_sees_outer_nodes_and_earlier_body_nodes():
    document = {
        "nodes": [
            _template("base", 100),
            {
                "id": "each",
                "type": "std/loop",
                "config": {
                    "items": [1, 2],
                    "body": {
                        "nodes": [
                            _template("double", "{{ $item * 2 }}"),
                            _template("total", "{{ $node.double.data + $node.base.data }}"),
                        ],
                        "connections": [{"from": "double", "to": "total"}],
                    },
                },
            },
        ],
        "connections": [{"from": "base", "to": "each"}],
    }
    record = await run_workflow(document)
    assert record.status == "success", record.error
    assert record.output == [102, 104]


async def test_items_may_come_from_a_predecessors_data():
    document = {
        "nodes": [
            _template("fetch", {"orders": [{"id": 1}, {"id": 2}]}),
            {
                "id": "each",
                "type": "std/loop",
                "config": {
                    "items": "{{ $node.fetch.data.orders }}",
                    "body": {"nodes": [_template("id", "{{ $item.id }}")]},
                },
            },
        ],
        "connections": [{"from": "fetch", "to": "each"}],
    }
    record = await run_workflow(document)
    assert record.output == [1, 2]


async def test_body_with_several_sinks_gives_an_object_per_item():
    body = {"nodes": [_template("a", "{{ $item }}"), _template("b", "{{ -$item }}")]}
    document = {
        "nodes": [{"id": "each", "type": "std/loop", "config": {"items": [1, 2], "body": body}}]
    }
    record = await run_workflow(document)
    assert record.output == [{"a": 1, "b": -1}, {"a": 2, "b": -2}]


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_body_failure_names_the_item_index(concurrency: int):
    body = [_template("ratio", "{{ 10 / $item }}")]
    record = await run_workflow(_loop([5, 2, 0, 1], body, concurrency=concurrency))
    assert record.status == "error"
    error = record.nodes["each"].error
    assert error is not None
    assert error.message.startswith("item 2: node 'ratio' failed")
    assert error.details["index"] == 2
    assert error.details["error"]["node"] == "ratio"


async def test_body_failure_continuing_keeps_null_for_that_item():
    body = [{**_template("ratio", "{{ 10 / $item }}"), "on_error": "continue"}]
    record = await run_workflow(_loop([5, 0], body))
    assert record.status == "success", record.error
    assert record.output == [2.0, None]


async def test_nested_loop_bodies_see_their_own_item_and_index():
    inner = {
        "id": "inner",
        "type": "std/loop",
        "config": {
            "items": "{{ $node.row.data }}",
            "body": {"nodes": [_template("cell", "{{ [$index, $item * 10] }}")]},
        },
    }
    body = {
        "nodes": [_template("row", "{{ $item }}"), inner],
        "connections": [{"from": "row", "to": "inner"}],
    }
    document = {
        "nodes": [
            {"id": "outer", "type": "std/loop", "config": {"items": [[1, 2], [3]], "body": body}}
        ]
    }
    record = await run_workflow(document)
    assert record.status == "success", record.error
    assert record.output == [[[0, 10], [1, 20]], [[0, 30]]]


async def test_object_items_iterate_key_value_pairs():
    record = await run_workflow(
        _loop({"a": 1, "b": 2}, [_template("kv", "{{ $item[0] * $item[1] }}")])
    )
    assert record.status == "success", record.error
    assert record.output == ["a", "bb"]


async def test_null_items_run_nothing():
    record = await run_workflow(_loop("{{ $input.missing }}", [_template("x", 1)]), {})
    assert record.status == "success", record.error
    assert record.output == []


async def test_items_that_are_not_a_list_fail_the_node():
    record = await run_workflow(_loop("{{ 5 }}", [_template("x", 1)]))
    assert record.status == "error"
    assert record.error is not None
    assert "must be a list" in record.error.message


@pytest.mark.parametrize("concurrency", [1, 50])
async def test_ten_thousand_items_keep_their_order(concurrency: int):
    document = _loop(
        "{{ list(range(10000)) }}",
        [_template("double", "{{ $item * 2 }}")],
        concurrency=concurrency,
    )
    record = await run_workflow(document)
    assert record.status == "success", record.error
    assert record.output == [i * 2 for i in range(10000)]


async def test_body_nodes_get_an_idempotency_key_per_item():
    finished: list[JSON] = []
    record = await run_workflow(
        _loop(["x", "y"], [{"id": "call", "type": "test/trace"}]), blocks=(_tracer(finished),)
    )
    assert record.status == "success", record.error
    keys = [out["key"] for out in record.output]
    assert keys == [f"{record.execution_id}:call:0", f"{record.execution_id}:call:1"]


async def test_body_errors_are_workflow_errors_naming_the_body_node():
    document = _loop([1], [{"id": "bad", "type": "std/nope"}])
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_workflow(document)
    assert [p.where for p in invalid.value.problems] == ["nodes[0].config.body.nodes[0].type"]


async def test_item_outside_a_loop_body_is_a_workflow_error():
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_workflow({"nodes": [_template("x", "{{ $item }}")]})
    assert [p.where for p in invalid.value.problems] == ["nodes[0].config.template"]


@pytest.mark.parametrize(("concurrency", "place"), [(0, "concurrency"), (1001, "concurrency")])
async def test_concurrency_out_of_range_is_a_workflow_error(concurrency: int, place: str):
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_workflow(_loop([1], [_template("x", 1)], concurrency=concurrency))
    assert [p.where for p in invalid.value.problems] == [f"nodes[0].config.{place}"]
