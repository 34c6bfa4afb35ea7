"""std/set: values stored in `$vars` for every later node."""

import pytest

from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON
from conv3n.testing import run_block, run_workflow


async def test_returns_the_rendered_values():
    config = {"values": {"total": "{{ $input.a + $input.b }}", "label": "sum {{ $input.a }}"}}
    result = await run_block("std/set", config, input={"a": 2, "b": 3})
    assert result.status == "success", result.error
    assert result.data == {"total": 5, "label": "sum 2"}


def _chain(*configs: dict[str, JSON]) -> dict[str, JSON]:
    nodes = [{"id": f"n{i}", **config} for i, config in enumerate(configs)]
    connections = [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(len(nodes) - 1)]
    return {"nodes": nodes, "connections": connections}


async def test_later_nodes_see_the_values_in_vars():
    record = await run_workflow(
        _chain(
            {"type": "std/set", "config": {"values": {"user": {"name": "Ada"}, "n": 2}}},
            {"type": "std/noop"},
            {"type": "std/transform", "config": {"template": "{{ $vars.user.name * $vars.n }}"}},
        )
    )
    assert record.status == "success", record.error
    assert record.output == "AdaAda"


async def test_a_later_set_overrides_and_keeps_other_names():
    record = await run_workflow(
        _chain(
            {"type": "std/set", "config": {"values": {"a": 1, "b": 1}}},
            {"type": "std/set", "config": {"values": {"b": "{{ $vars.b + 1 }}"}}},
            {"type": "std/transform", "config": {"template": "{{ [$vars.a, $vars.b] }}"}},
        )
    )
    assert record.output == [1, 2]


async def test_an_unset_name_is_null():
    record = await run_workflow(
        _chain({"type": "std/transform", "config": {"template": "{{ $vars.nothing }}"}})
    )
    assert record.status == "success", record.error
    assert record.output is None


async def test_vars_set_inside_a_loop_body_are_seen_after_the_loop():
    body = {
        "nodes": [{"id": "keep", "type": "std/set", "config": {"values": {"last": "{{ $item }}"}}}]
    }
    record = await run_workflow(
        _chain(
            {"type": "std/loop", "config": {"items": [1, 2, 3], "body": body}},
            {"type": "std/transform", "config": {"template": "{{ $vars.last }}"}},
        )
    )
    assert record.status == "success", record.error
    assert record.output == 3


@pytest.mark.parametrize(
    ("config", "place"),
    [({}, "nodes[0].config.values"), ({"values": [1]}, "nodes[0].config.values")],
)
async def test_values_must_be_an_object(config: JSON, place: str):
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/set", config)
    assert [p.where for p in invalid.value.problems] == [place]
