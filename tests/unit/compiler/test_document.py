"""Reading workflow text: JSON/YAML errors with line and column, and hostile documents."""

import json
from typing import Any

import pytest

from conv3n.compiler import check_structure, compile_document, parse_text, parse_workflow
from conv3n.compiler.document import MAX_DEPTH, MAX_DOCUMENT_BYTES
from conv3n.errors import WorkflowInvalid
from conv3n.model import Problem
from conv3n.sdk import BlockRegistry

REGISTRY = BlockRegistry.discover()


def parse_problem(text: str, name: str = "wf.yaml") -> Problem:
    with pytest.raises(WorkflowInvalid) as caught:
        parse_text(text, name=name)
    [problem] = caught.value.problems
    return problem


def compile_problems(data: Any) -> list[Problem]:
    with pytest.raises(WorkflowInvalid) as caught:
        compile_document(data, REGISTRY)
    return caught.value.problems


def test_yaml_and_json_texts_give_the_same_workflow() -> None:
    yaml_text = "version: 1\nnodes:\n  - {id: a, type: std/noop}\n"
    json_text = '{"version": 1, "nodes": [{"id": "a", "type": "std/noop"}]}'
    assert parse_workflow(yaml_text) == parse_workflow(json_text, name="wf.json")


def test_json_with_a_byte_order_mark_is_read() -> None:
    assert parse_text('\ufeff{"version": 1}', name="wf.json") == {"version": 1}


def test_invalid_yaml_is_reported_with_line_and_column() -> None:
    problem = parse_problem("version: 1\nnodes:\n  - id: a\n   type: std/noop\n")
    assert problem.where == "(document)"
    assert "not valid YAML (line 4, column 4)" in problem.message


def test_invalid_json_is_reported_with_line_and_column() -> None:
    problem = parse_problem('{"version": 1,\n "nodes": [1,]}', name="wf.json")
    assert problem.message.startswith("not valid JSON (line 2, column 14)")


def test_json_file_is_read_as_json_even_without_a_leading_brace() -> None:
    problem = parse_problem("version: 1", name="wf.json")
    assert "not valid JSON (line 1, column 1)" in problem.message


@pytest.mark.parametrize(
    ("text", "name", "line"),
    [
        ("version: 1\nnodes: []\nversion: 1\n", "wf.yaml", "line 3"),
        ('{"version": 1, "version": 1}', "wf.json", None),
    ],
)
def test_duplicate_keys_are_rejected(text: str, name: str, line: str | None) -> None:
    problem = parse_problem(text, name=name)
    assert "duplicate key 'version'" in problem.message
    if line:
        assert line in problem.message


def test_yaml_merge_keys_may_be_overridden() -> None:
    text = "base: &b {a: 1, b: 2}\nderived:\n  <<: *b\n  b: 3\n"
    assert parse_text(text) == {"base": {"a": 1, "b": 2}, "derived": {"a": 1, "b": 3}}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_numbers_that_are_not_json_are_rejected(constant: str) -> None:
    problem = parse_problem(f'{{"x": {constant}}}', name="wf.json")
    assert "not a JSON number" in problem.message


def test_yaml_python_tags_are_refused() -> None:
    problem = parse_problem("!!python/object/apply:os.system ['echo pwned']")
    assert "could not determine a constructor" in problem.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data: !!binary aGVsbG8=", "tag tag:yaml.org,2002:binary is not allowed"),
        ("tags: !!set {a, b}", "tag tag:yaml.org,2002:set is not allowed"),
        ("at: !!timestamp 2024-01-01", "tag tag:yaml.org,2002:timestamp is not allowed"),
    ],
)
def test_yaml_values_that_are_not_json_are_refused(text: str, message: str) -> None:
    problem = parse_problem(text)
    assert "(line 1, column " in problem.message
    assert message in problem.message


@pytest.mark.parametrize(
    ("text", "key"), [("on: push", "'on'"), ("200: ok", "'200'"), ("? [a]\n: 1", "a list")]
)
def test_yaml_keys_that_are_not_strings_are_refused_with_a_hint(text: str, key: str) -> None:
    problem = parse_problem(text)
    assert key in problem.message
    assert "quote it" in problem.message


def test_yaml_dates_stay_strings() -> None:
    assert parse_text("when: 2024-01-02\nat: 2024-01-02T03:04:05Z\n") == {
        "when": "2024-01-02",
        "at": "2024-01-02T03:04:05Z",
    }


def billion_laughs(levels: int = 10) -> str:
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*lol{level - 1}"] * 9)
        lines.append(f"lol{level}: &lol{level} [{refs}]")
    return "version: 1\nnodes:\n  - id: a\n    type: std/transform\n    config:\n" + "".join(
        f"      {line}\n" for line in lines
    )


def test_yaml_alias_bomb_is_refused() -> None:
    problem = parse_problem(billion_laughs())
    assert "YAML aliases expand to more than" in problem.message


def test_yaml_aliases_of_moderate_size_are_allowed() -> None:
    text = "defaults: &d {retry: {max_attempts: 3}}\nfirst: *d\nsecond: *d\n"
    data = parse_text(text)
    assert data["first"] == data["second"] == {"retry": {"max_attempts": 3}}


def test_recursive_yaml_alias_is_refused() -> None:
    problem = parse_problem("a: &a [1, *a]\n")
    assert "refers to a value that contains it" in problem.message


def test_document_larger_than_the_limit_is_refused_before_parsing() -> None:
    text = '{"version": 1, "description": "' + "x" * (20 * 1024 * 1024) + '"}'
    problem = parse_problem(text, name="big.json")
    assert problem.message == f"big.json is larger than {MAX_DOCUMENT_BYTES:,} bytes"


def test_deeply_nested_json_is_refused_without_a_crash() -> None:
    problem = parse_problem("[" * 100_000 + "]" * 100_000, name="deep.json")
    assert problem.message == "JSON nests too deeply"


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_deeply_nested_yaml_is_refused_without_a_crash(depth: int) -> None:
    problem = parse_problem("[" * depth + "]" * depth)
    assert problem.message == "YAML nests too deeply"


def test_deeply_nested_yaml_block_sequences_are_refused_without_a_crash() -> None:
    problem = parse_problem("- " * 50_000 + "x\n")
    assert problem.message == "YAML nests too deeply"


def test_document_nested_deeper_than_the_limit_is_reported_where_it_goes_deep() -> None:
    value: Any = "{{ 1 }}"
    for _ in range(MAX_DEPTH + 10):
        value = [value]
    data = {
        "version": 1,
        "nodes": [{"id": "a", "type": "std/transform", "config": {"template": value}}],
    }
    [problem] = compile_problems(data)
    assert problem.where.startswith("nodes[0].config.template")
    assert problem.message == f"nests deeper than {MAX_DEPTH} levels"


def test_nesting_within_the_limit_compiles() -> None:
    value: Any = "{{ 1 }}"
    for _ in range(MAX_DEPTH - 10):
        value = [value]
    node = {"id": "a", "type": "std/transform", "config": {"template": value}}
    compile_document({"version": 1, "nodes": [node]}, REGISTRY)


@pytest.mark.parametrize("data", [None, [], "version: 1", 42, True])
def test_document_that_is_not_a_mapping_is_one_problem_at_the_root(data: Any) -> None:
    [problem] = compile_problems(data)
    assert problem.where == "(document)"
    assert "mapping" in problem.message


def test_empty_text_is_a_document_that_is_not_a_mapping() -> None:
    assert compile_problems(parse_text("")) == [
        Problem((), "a workflow must be a mapping with version, nodes and connections")
    ]


def test_missing_version_is_reported() -> None:
    [problem] = compile_problems({"nodes": []})
    assert problem.where == "version"
    assert problem.message == "required field is missing"


def test_unsupported_version_is_reported_with_the_value() -> None:
    [problem] = compile_problems({"version": 2})
    assert problem.where == "version"
    assert "(got 2)" in problem.message


def test_nodes_that_are_not_a_list_are_reported_at_nodes() -> None:
    problems = compile_problems({"version": 1, "nodes": {"a": {"type": "std/noop"}}})
    assert [p.where for p in problems] == ["nodes"]


def test_node_that_is_not_a_mapping_is_reported_at_its_index() -> None:
    problems = compile_problems({"version": 1, "nodes": [{"id": "a", "type": "std/noop"}, "b"]})
    assert [p.where for p in problems] == ["nodes[1]"]


def test_workflow_id_must_be_a_slug() -> None:
    [problem] = compile_problems({"version": 1, "id": "Order Sync"})
    assert problem.where == "id"
    assert "slug" in problem.message


def test_ten_thousand_nodes_compile() -> None:
    nodes = [{"id": "n0", "type": "std/transform", "config": {"template": "{{ 1 }}"}}]
    nodes += [
        {
            "id": f"n{i}",
            "type": "std/transform",
            "config": {"template": f"{{{{ $node.n{i - 1} }}}}"},
        }
        for i in range(1, 10_000)
    ]
    connections = [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(9_999)]
    plan = compile_document({"version": 1, "nodes": nodes, "connections": connections}, REGISTRY)
    assert len(plan.nodes) == 10_000
    assert plan.starts == (0,)
    assert plan.sinks == (9_999,)


def test_ten_thousand_node_cycle_is_reported_without_recursion_errors() -> None:
    nodes = [{"id": f"n{i}", "type": "std/noop"} for i in range(10_000)]
    connections = [{"from": f"n{i}", "to": f"n{(i + 1) % 10_000}"} for i in range(10_000)]
    [problem] = compile_problems({"version": 1, "nodes": nodes, "connections": connections})
    assert "cycle (10000 nodes)" in problem.message


def test_unicode_text_in_names_and_config_is_kept() -> None:
    text = json.dumps(
        {
            "version": 1,
            "name": "Café ☕ 注文",
            "nodes": [
                {
                    "id": "greet",
                    "type": "std/transform",
                    "config": {"template": "¡Hola, {{ $input.név }}!"},
                }
            ],
        },
        ensure_ascii=False,
    )
    plan = compile_document(parse_text(text, name="wf.json"), REGISTRY)
    assert plan.workflow.name == "Café ☕ 注文"


def test_check_structure_salvages_a_broken_document_for_further_checks() -> None:
    data = {"version": 1, "nodes": [{"id": "1a", "type": "std/noop"}, {"type": "std/noop"}]}
    workflow, problems = check_structure(data)
    assert [p.where for p in problems] == ["nodes[0].id", "nodes[1].id"]
    assert workflow is not None
    assert [n.type for n in workflow.nodes] == ["std/noop", "std/noop"]
