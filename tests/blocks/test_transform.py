"""std/transform: templates, JMESPath and JSONPath over the default or an explicit input."""

import pytest

from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON
from conv3n.testing import run_block, run_workflow


def _chain(config: JSON) -> dict[str, JSON]:
    """`source` (data {"x": 1, "items": [...]}) -> `shape` (std/transform with `config`)."""
    source = {"template": {"x": 1, "items": [{"n": 1}, {"n": 2}]}}
    return {
        "nodes": [
            {"id": "source", "type": "std/transform", "config": source},
            {"id": "shape", "type": "std/transform", "config": config},
        ],
        "connections": [{"from": "source", "to": "shape"}],
    }


async def test_template_renders_native_values_and_text():
    template = {
        "n": "{{ $input.n * 2 }}",
        "greeting": "hi {{ $input.name }}",
        "list": [1, "{{ 2 }}"],
    }
    result = await run_block("std/transform", {"template": template}, input={"n": 4, "name": "Ada"})
    assert result.status == "success", result.error
    assert result.data == {"n": 8, "greeting": "hi Ada", "list": [1, 2]}


async def test_template_null_gives_null():
    result = await run_block("std/transform", {"template": None}, input={"a": 1})
    assert result.status == "success", result.error
    assert result.data is None


async def test_start_node_queries_the_execution_input_by_default():
    result = await run_block("std/transform", {"jmespath": "a[1]"}, input={"a": [10, 20]})
    assert result.data == 20


async def test_default_input_is_the_single_predecessors_data():
    record = await run_workflow(_chain({"jmespath": "items[].n"}), {"x": "not this"})
    assert record.status == "success", record.error
    assert record.output == [1, 2]


async def test_explicit_input_replaces_the_predecessors_data():
    record = await run_workflow(_chain({"input": {"x": 5}, "jmespath": "x"}))
    assert record.output == 5


async def test_explicit_input_may_be_an_expression():
    config = {"input": "{{ $input.payload }}", "jsonpath": "$.items[*].id"}
    record = await run_workflow(_chain(config), {"payload": {"items": [{"id": "a"}, {"id": "b"}]}})
    assert record.status == "success", record.error
    assert record.output == ["a", "b"]


async def test_explicit_null_input_is_queried_instead_of_the_predecessor():
    record = await run_workflow(_chain({"input": None, "jmespath": "@"}))
    assert record.status == "success", record.error
    assert record.output is None


async def test_jsonpath_returns_the_list_of_matches():
    document = {"store": {"book": [{"price": 8}, {"price": 12}, {"price": 5}]}}
    config = {"jsonpath": "$.store.book[?@.price < 10].price"}
    result = await run_block("std/transform", config, input=document)
    assert result.data == [8, 5]


async def test_jsonpath_without_a_match_is_an_empty_list():
    result = await run_block("std/transform", {"jsonpath": "$.missing"}, input={"a": 1})
    assert result.status == "success", result.error
    assert result.data == []


async def test_jmespath_without_a_match_is_null():
    result = await run_block("std/transform", {"jmespath": "missing.deeper"}, input={"a": 1})
    assert result.status == "success", result.error
    assert result.data is None


@pytest.mark.parametrize(
    ("config", "places"),
    [
        ({"jmespath": "a", "jsonpath": "$.a"}, ["jmespath", "jsonpath"]),
        ({"jmespath": "a", "template": 1}, ["jmespath", "template"]),
        ({"jsonpath": "$", "template": "{{ $input }}"}, ["jsonpath"]),
        ({"input": "{{ $input }}", "jmespath": "a", "jsonpath": "$"}, ["jmespath", "jsonpath"]),
    ],
)
async def test_two_queries_are_a_workflow_error_naming_each_static_one(
    config: dict[str, JSON], places: list[str]
):
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/transform", config)
    assert [p.where for p in invalid.value.problems] == [f"nodes[0].config.{p}" for p in places]
    assert all("only one of" in p.message for p in invalid.value.problems)


async def test_no_query_is_a_workflow_error_naming_the_config():
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/transform", {"input": 1})
    assert [p.where for p in invalid.value.problems] == ["nodes[0].config"]


@pytest.mark.parametrize("input_", [{"a": 1}, "{{ $input }}"])
async def test_invalid_jmespath_is_a_workflow_error_naming_config_jmespath(input_: JSON):
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/transform", {"input": input_, "jmespath": "a[?"})
    [problem] = invalid.value.problems
    assert problem.where == "nodes[0].config.jmespath"
    assert problem.message.startswith("invalid JMESPath")


@pytest.mark.parametrize("input_", [{"a": 1}, "{{ $input }}"])
async def test_invalid_jsonpath_is_a_workflow_error_naming_config_jsonpath(input_: JSON):
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/transform", {"input": input_, "jsonpath": "$.a[?"})
    [problem] = invalid.value.problems
    assert problem.where == "nodes[0].config.jsonpath"
    assert problem.message.startswith("invalid JSONPath")


async def test_jmespath_rendered_invalid_is_a_config_error_naming_config_jmespath():
    config = {"jmespath": "{{ $input.query }}"}
    result = await run_block(
        "std/transform", config, input={"query": "a[?"}, retry={"max_attempts": 3}
    )
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "config_invalid"
    assert [p["path"] for p in result.error.details["problems"]] == ["config.jmespath"]
    assert result.attempts == 1


async def test_jmespath_runtime_error_fails_the_node_without_retry():
    result = await run_block(
        "std/transform", {"jmespath": "abs(name)"}, input={"name": "x"}, retry={"max_attempts": 3}
    )
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "block_error"
    assert "abs(name)" in result.error.message
    assert result.attempts == 1


async def test_jmespath_zero_slice_step_is_a_block_error_not_a_crash():
    result = await run_block("std/transform", {"jmespath": "[::0]"}, input=[1, 2])
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "block_error"
    assert "[::0]" in result.error.message


async def test_template_expression_error_quotes_the_expression():
    result = await run_block("std/transform", {"template": {"a": "{{ $input.n + 1 }}"}}, input={})
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "expression_error"
    assert "$input.n + 1" in result.error.message
    assert "config.template.a" in result.error.message
