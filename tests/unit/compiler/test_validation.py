"""SPEC §1 validation: each rule rejects with a message naming the exact place."""

from typing import Any

import pytest

from conv3n.compiler import compile_document, compile_workflow, load_workflow
from conv3n.errors import WorkflowInvalid
from conv3n.model import Problem
from conv3n.sdk import BlockRegistry

REGISTRY = BlockRegistry.discover()


def node(node_id: str, type: str = "std/noop", **fields: Any) -> dict[str, Any]:
    return {"id": node_id, "type": type, **fields}


def doc(*nodes: dict[str, Any], connections: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"version": 1, "nodes": list(nodes), "connections": connections or []}


def edge(source: str, to: str, port: str | None = None) -> dict[str, str]:
    return {"from": source, "to": to, **({"port": port} if port else {})}


def problems_of(document: Any) -> list[Problem]:
    with pytest.raises(WorkflowInvalid) as caught:
        compile_document(document, REGISTRY)
    return caught.value.problems


def places(document: Any) -> list[str]:
    return [p.where for p in problems_of(document)]


def only_problem(document: Any) -> Problem:
    found = problems_of(document)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def condition(node_id: str, **fields: Any) -> dict[str, Any]:
    return node(node_id, "std/condition", config={"expression": "{{ true }}"}, **fields)


def template(node_id: str, value: Any) -> dict[str, Any]:
    return node(node_id, "std/transform", config={"template": value})


# --- block types and ids ------------------------------------------------------------------


def test_valid_document_compiles_to_a_plan() -> None:
    plan = compile_document(doc(node("a"), node("b"), connections=[edge("a", "b")]), REGISTRY)
    assert [n.id for n in plan.nodes] == ["a", "b"]
    assert plan.starts == (0,)
    assert plan.sinks == (1,)


def test_unknown_block_type_is_reported_at_nodes_i_type() -> None:
    problem = only_problem(doc(node("a"), node("b", "std/teleport")))
    assert problem.where == "nodes[1].type"
    assert "std/teleport" in problem.message


def test_block_type_of_an_uninstalled_namespace_is_unknown() -> None:
    problem = only_problem(doc(node("a", "acme/widget")))
    assert problem.where == "nodes[0].type"
    assert "unknown block type 'acme/widget'" in problem.message


def test_malformed_block_type_is_reported_at_nodes_i_type() -> None:
    problem = only_problem(doc(node("a", "HTTP Request")))
    assert problem.where == "nodes[0].type"
    assert "std/http_request" in problem.message


def test_duplicate_node_id_is_reported_at_the_second_nodes_i_id() -> None:
    problem = only_problem(doc(node("a"), node("b"), node("a")))
    assert problem.where == "nodes[2].id"
    assert "duplicate" in problem.message
    assert "nodes[0]" in problem.message


@pytest.mark.parametrize("bad_id", ["1st", "a-b", "a b", "", "a.b", "$x", "na\u00efve", "名前"])
def test_malformed_node_id_is_reported_at_nodes_i_id(bad_id: str) -> None:
    problem = only_problem(doc(node("ok"), node(bad_id)))
    assert problem.where == "nodes[1].id"
    assert "letter" in problem.message


def test_missing_node_id_and_type_are_reported_each_at_its_place() -> None:
    assert places(doc({"config": {}})) == ["nodes[0].id", "nodes[0].type"]


def test_node_id_longer_than_128_characters_is_rejected() -> None:
    assert places(doc(node("a" * 129))) == ["nodes[0].id"]


def test_unknown_node_field_is_reported_at_its_place() -> None:
    problem = only_problem(doc(node("a", onerror="continue")))
    assert problem.where == "nodes[0].onerror"
    assert problem.message == "unknown field"


# --- connections ----------------------------------------------------------------------------


def test_connection_from_a_missing_node_is_reported_at_connections_i_from() -> None:
    problem = only_problem(doc(node("a"), connections=[edge("ghost", "a")]))
    assert problem.where == "connections[0].from"
    assert "'ghost'" in problem.message


def test_connection_to_a_missing_node_is_reported_at_connections_i_to() -> None:
    problem = only_problem(doc(node("a"), node("b"), connections=[edge("a", "b"), edge("b", "c")]))
    assert problem.where == "connections[1].to"
    assert "'c'" in problem.message


def test_connection_between_two_missing_nodes_reports_both_ends() -> None:
    assert places(doc(node("a"), connections=[edge("x", "y")])) == [
        "connections[0].from",
        "connections[0].to",
    ]


def test_unknown_port_is_reported_at_connections_i_port_with_the_ports_offered() -> None:
    problem = only_problem(doc(node("a"), node("b"), connections=[edge("a", "b", "out")]))
    assert problem.where == "connections[0].port"
    assert "'out'" in problem.message
    assert "main" in problem.message


def test_condition_offers_true_and_false_ports_but_not_main() -> None:
    valid = doc(
        condition("c"),
        node("t"),
        node("f"),
        connections=[edge("c", "t", "true"), edge("c", "f", "false")],
    )
    compile_document(valid, REGISTRY)
    problem = only_problem(doc(condition("c"), node("t"), connections=[edge("c", "t")]))
    assert problem.where == "connections[0].port"
    assert "true, false" in problem.message


def test_error_port_needs_on_error_route() -> None:
    for on_error in ("fail", "continue"):
        document = doc(
            condition("c", on_error=on_error), node("h"), connections=[edge("c", "h", "error")]
        )
        problem = only_problem(document)
        assert problem.where == "connections[0].port"
        assert "on_error: route" in problem.message


def test_error_port_exists_with_on_error_route() -> None:
    document = doc(
        condition("c", on_error="route"),
        node("h"),
        node("t"),
        connections=[edge("c", "h", "error"), edge("c", "t", "true")],
    )
    plan = compile_document(document, REGISTRY)
    assert plan.nodes[0].ports == ("true", "false", "error")


def test_switch_offers_the_ports_of_its_cases_and_default() -> None:
    switch = node(
        "s",
        "std/switch",
        config={
            "value": "{{ $input.kind }}",
            "cases": [{"port": "big", "equals": "b"}, {"port": "small", "equals": "s"}],
            "default": "other",
        },
    )
    valid = doc(
        switch,
        node("x"),
        node("y"),
        node("z"),
        connections=[edge("s", "x", "big"), edge("s", "y", "small"), edge("s", "z", "other")],
    )
    compile_document(valid, REGISTRY)
    problem = only_problem(doc(switch, node("x"), connections=[edge("s", "x", "default")]))
    assert problem.where == "connections[0].port"


def test_connection_with_an_empty_port_is_rejected() -> None:
    assert places(doc(node("a"), node("b"), connections=[edge("a", "b") | {"port": ""}])) == [
        "connections[0].port"
    ]


def test_duplicate_connection_is_reported_at_its_place() -> None:
    problem = only_problem(doc(node("a"), node("b"), connections=[edge("a", "b"), edge("a", "b")]))
    assert problem.where == "connections[1]"
    assert "duplicate" in problem.message


# --- cycles ---------------------------------------------------------------------------------


def test_cycle_is_reported_naming_its_nodes() -> None:
    document = doc(
        node("a"),
        node("b"),
        node("c"),
        connections=[edge("a", "b"), edge("b", "c"), edge("c", "b")],
    )
    problem = only_problem(document)
    assert problem.where == "connections[2]"
    assert "cycle" in problem.message
    assert "b -> c -> b" in problem.message
    assert "std/loop" in problem.message


def test_node_connected_to_itself_is_a_cycle_of_one() -> None:
    problem = only_problem(doc(node("a"), connections=[edge("a", "a")]))
    assert problem.where == "connections[0]"
    assert "itself" in problem.message


def test_cycle_through_a_branch_port_is_reported() -> None:
    document = doc(
        condition("c"), node("retry"), connections=[edge("c", "retry", "false"), edge("retry", "c")]
    )
    problem = only_problem(document)
    assert "cycle" in problem.message
    assert "c -> retry -> c" in problem.message


def test_long_cycle_message_is_abbreviated_with_its_length() -> None:
    ids = [f"n{i}" for i in range(50)]
    connections = [edge(a, b) for a, b in zip(ids, [*ids[1:], ids[0]], strict=True)]
    problem = only_problem(doc(*(node(i) for i in ids), connections=connections))
    assert "(50 nodes)" in problem.message
    assert "..." in problem.message
    assert len(problem.message) < 200


# --- config against the block's schema ------------------------------------------------------


def test_config_value_of_the_wrong_kind_is_reported_at_nodes_i_config_field() -> None:
    http = node("fetch", "std/http_request", config={"url": "not a url"})
    problem = only_problem(doc(node("a"), http))
    assert problem.where == "nodes[1].config.url"
    assert "URL" in problem.message


def test_unknown_config_key_is_reported_at_its_place() -> None:
    http = node("fetch", "std/http_request", config={"url": "https://x.example", "verb": "GET"})
    problem = only_problem(doc(http))
    assert problem.where == "nodes[0].config.verb"
    assert problem.message == "unknown field"


def test_missing_required_config_key_is_reported_at_its_place() -> None:
    problem = only_problem(doc(node("fetch", "std/http_request", config={})))
    assert problem.where == "nodes[0].config.url"
    assert "required" in problem.message


def test_config_problem_inside_a_list_names_the_item() -> None:
    switch = node(
        "s",
        "std/switch",
        config={"cases": [{"port": "ok", "equals": 1}, {"port": "bad port!", "equals": 2}]},
    )
    problem = only_problem(doc(switch))
    assert problem.where == "nodes[0].config.cases[1].port"


def test_config_value_out_of_range_is_reported_with_the_value() -> None:
    http = node("f", "std/http_request", config={"url": "https://x.example", "timeout_ms": -5})
    problem = only_problem(doc(http))
    assert problem.where == "nodes[0].config.timeout_ms"
    assert "-5" in problem.message


def test_config_field_holding_an_expression_is_checked_only_after_rendering() -> None:
    http = node(
        "f",
        "std/http_request",
        config={"url": "{{ $input.url }}", "timeout_ms": "{{ $input.timeout }}"},
    )
    plan = compile_document(doc(http), REGISTRY)
    assert plan.nodes[0].static_config is None


def test_config_without_expressions_is_validated_once_at_compile_time() -> None:
    http = node("f", "std/http_request", config={"url": "https://x.example/a"})
    plan = compile_document(doc(http), REGISTRY)
    static = plan.nodes[0].static_config
    assert static is not None
    assert str(static.model_dump()["url"]) == "https://x.example/a"


def test_config_that_is_not_an_object_is_reported_at_nodes_i_config() -> None:
    assert places(doc(node("a", config=["x"]))) == ["nodes[0].config"]


def test_retry_policy_out_of_range_is_reported_at_its_place() -> None:
    problem = only_problem(doc(node("a", retry={"max_attempts": 0})))
    assert problem.where == "nodes[0].retry.max_attempts"


# --- expressions ----------------------------------------------------------------------------


def test_expression_that_does_not_parse_is_reported_at_its_config_path() -> None:
    problem = only_problem(doc(template("t", {"total": "{{ 1 + }}"})))
    assert problem.where == "nodes[0].config.template.total"
    assert "1 +" in problem.message


def test_expression_problem_inside_a_list_names_the_index() -> None:
    problem = only_problem(doc(template("t", {"items": ["ok", "{{ 'unclosed }}"]})))
    assert problem.where == "nodes[0].config.template.items[1]"


def test_unclosed_template_is_reported_at_its_place() -> None:
    problem = only_problem(doc(template("t", "Hello {{ $input.name")))
    assert problem.where == "nodes[0].config.template"


def test_forbidden_syntax_in_an_expression_is_reported_at_its_place() -> None:
    problem = only_problem(doc(template("t", "{{ ().__class__ }}")))
    assert problem.where == "nodes[0].config.template"


def test_every_bad_expression_of_a_node_is_reported() -> None:
    bad = template("t", {"a": "{{ 1 + }}", "b": "{{ ) }}", "c": "{{ 1 + 1 }}"})
    assert places(doc(bad)) == ["nodes[0].config.template.a", "nodes[0].config.template.b"]


def test_reference_to_a_missing_node_is_reported_at_its_config_path() -> None:
    problem = only_problem(doc(node("a"), template("t", {"x": "{{ $node.ghost.data }}"})))
    assert problem.where == "nodes[1].config.template.x"
    assert "$node.ghost" in problem.message


def test_reference_to_a_missing_node_by_index_syntax_is_reported() -> None:
    problem = only_problem(doc(template("t", '{{ $node["ghost"].data }}')))
    assert "$node.ghost" in problem.message


def test_references_to_existing_nodes_are_accepted() -> None:
    document = doc(
        node("a"),
        template("t", "{{ $node.a.data }} {{ $node.a.status }}"),
        connections=[edge("a", "t")],
    )
    compile_document(document, REGISTRY)


@pytest.mark.parametrize("name", ["$item", "$index"])
def test_loop_names_outside_a_loop_body_are_reported(name: str) -> None:
    problem = only_problem(doc(template("t", f"{{{{ {name} }}}}")))
    assert problem.where == "nodes[0].config.template"
    assert f"{name} exists only inside a std/loop body" in problem.message


# --- loop bodies ----------------------------------------------------------------------------


def loop(node_id: str, *body_nodes: dict[str, Any], connections: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"nodes": list(body_nodes)}
    if connections is not None:
        body["connections"] = connections
    return node(node_id, "std/loop", config={"items": "{{ $input }}", "body": body})


def test_loop_body_may_use_item_index_and_outer_nodes() -> None:
    document = doc(
        node("start"),
        loop(
            "each",
            template(
                "t", {"item": "{{ $item }}", "i": "{{ $index }}", "outer": "{{ $node.start.data }}"}
            ),
        ),
        connections=[edge("start", "each")],
    )
    plan = compile_document(document, REGISTRY)
    assert plan.nodes[1].subplans["body"].nodes[0].id == "t"


def test_problems_in_a_loop_body_carry_their_nested_path() -> None:
    document = doc(
        loop(
            "each",
            node("a", "std/nope"),
            template("b", "{{ $node.ghost }}"),
            node("c", "std/http_request", config={"url": "nope"}),
            connections=[edge("b", "zz"), edge("c", "b", "out")],
        )
    )
    assert places(document) == [
        "nodes[0].config.body.nodes[0].type",
        "nodes[0].config.body.nodes[1].config.template",
        "nodes[0].config.body.nodes[2].config.url",
        "nodes[0].config.body.connections[0].to",
        "nodes[0].config.body.connections[1].port",
    ]


def test_structural_problem_in_a_loop_body_carries_its_nested_path() -> None:
    document = doc(loop("each", node("bad id"), node("x", "std/nope")))
    assert places(document) == [
        "nodes[0].config.body.nodes[0].id",
        "nodes[0].config.body.nodes[1].type",
    ]


def test_cycle_in_a_loop_body_is_reported_with_its_nested_path() -> None:
    document = doc(loop("each", node("a"), node("b"), connections=[edge("a", "b"), edge("b", "a")]))
    problem = only_problem(document)
    assert problem.where == "nodes[0].config.body.connections[1]"
    assert "a -> b -> a" in problem.message


def test_nested_loops_report_the_full_path() -> None:
    inner = loop("inner", node("deep", "std/nope"))
    problem = only_problem(doc(loop("outer", inner)))
    assert problem.where == "nodes[0].config.body.nodes[0].config.body.nodes[0].type"


def test_outer_workflow_cannot_reference_a_node_inside_a_loop_body() -> None:
    document = doc(
        loop("each", node("inner")),
        template("after", "{{ $node.inner.data }}"),
        connections=[edge("each", "after")],
    )
    problem = only_problem(document)
    assert problem.where == "nodes[1].config.template"


def test_loop_body_that_is_not_an_object_is_reported() -> None:
    document = doc(node("each", "std/loop", config={"items": [1], "body": ["a"]}))
    assert "nodes[0].config.body" in places(document)


def test_loop_body_is_checked_even_when_the_loop_config_is_invalid() -> None:
    document = doc(
        node(
            "each",
            "std/loop",
            config={"items": [1], "concurrency": 0, "body": {"nodes": [node("x", "std/nope")]}},
        )
    )
    assert places(document) == [
        "nodes[0].config.concurrency",
        "nodes[0].config.body.nodes[0].type",
    ]


# --- every problem at once ------------------------------------------------------------------


def test_every_problem_of_a_document_is_reported_at_once() -> None:
    document = doc(
        node("fetch", "std/http_request", config={"url": "ftp:/bad"}),
        node("2nd"),
        node("route", "std/teleport"),
        template("shape", {"x": "{{ 1 + }}", "y": "{{ $node.ghost.data }}"}),
        node("a"),
        node("b"),
        connections=[
            edge("fetch", "shape", "out"),
            edge("a", "b"),
            edge("b", "a"),
            edge("shape", "nobody"),
        ],
    )
    found = problems_of(document)
    assert sorted(p.where for p in found) == sorted(
        [
            "nodes[0].config.url",
            "nodes[1].id",
            "nodes[2].type",
            "nodes[3].config.template.x",
            "nodes[3].config.template.y",
            "connections[0].port",
            "connections[2]",
            "connections[3].to",
        ]
    )


def test_six_different_errors_yield_six_problems() -> None:
    document = doc(
        node("bad-id"),
        node("dup"),
        node("dup"),
        node("x", "std/nope"),
        template("t", "{{ $item }}"),
        connections=[edge("t", "missing")],
    )
    document["nodes"][0]["bogus"] = 1
    found = problems_of(document)
    assert len(found) == 6, [str(p) for p in found]
    assert [p.where for p in found] == [
        "nodes[0].id",
        "nodes[0].bogus",
        "nodes[2].id",
        "nodes[3].type",
        "nodes[4].config.template",
        "connections[0].to",
    ]


def test_structural_problems_do_not_hide_graph_problems() -> None:
    document = doc(
        node("ok", retry={"max_attempts": "many"}),
        node("b"),
        connections=[edge("ok", "b"), edge("b", "ok")],
    )
    assert places(document) == ["nodes[0].retry.max_attempts", "connections[1]"]


def test_connections_to_a_node_with_a_malformed_id_do_not_add_problems() -> None:
    document = doc(node("a"), node("1b"), connections=[edge("a", "1b")])
    assert places(document) == ["nodes[1].id"]


def test_problems_are_listed_in_document_order() -> None:
    document = doc(node("a", "std/x"), node("b", "std/y"), connections=[edge("a", "zz")])
    document["version"] = 2
    assert places(document) == ["version", "nodes[0].type", "nodes[1].type", "connections[0].to"]


def test_compile_workflow_of_a_loaded_workflow_applies_the_same_rules() -> None:
    workflow = load_workflow(doc(node("a", "std/nope")))
    with pytest.raises(WorkflowInvalid) as caught:
        compile_workflow(workflow, REGISTRY)
    assert [p.where for p in caught.value.problems] == ["nodes[0].type"]


def test_workflow_invalid_carries_the_problems_in_its_details() -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        compile_document(doc(node("a", "std/nope")), REGISTRY)
    info = caught.value.to_info()
    assert info.type == "workflow_invalid"
    assert info.details["problems"] == [
        {"path": "nodes[0].type", "message": "unknown block type 'std/nope'"}
    ]
    assert "1 problem" in info.message
