"""What expressions and blocks see: $vars, $execution, $env, $secrets, idempotency keys."""

from datetime import datetime

import pytest

from conv3n.model import JSON, ExecutionStatus
from conv3n.sdk import Context, block
from tests.integration.engine.helpers import Empty, FakeClock, echo, execute, key


def connect(source: str, target: str) -> dict[str, str]:
    return {"from": source, "to": target}


async def test_vars_set_by_std_set_are_visible_to_later_nodes():
    record = await execute(
        {
            "nodes": [
                {"id": "setter", "type": "std/set", "config": {"values": {"limit": 10}}},
                {"id": "reader", "type": "test/echo", "config": {"value": "{{ $vars.limit * 2 }}"}},
            ],
            "connections": [connect("setter", "reader")],
        },
        echo,
    )
    assert record.output == 20


async def test_vars_are_shared_with_loop_bodies():
    record = await execute(
        {
            "nodes": [
                {"id": "setter", "type": "std/set", "config": {"values": {"step": 10}}},
                {
                    "id": "each",
                    "type": "std/loop",
                    "config": {
                        "items": [1, 2],
                        "body": {
                            "nodes": [
                                {
                                    "id": "mul",
                                    "type": "test/echo",
                                    "config": {"value": "{{ $item * $vars.step }}"},
                                }
                            ]
                        },
                    },
                },
            ],
            "connections": [connect("setter", "each")],
        },
        echo,
    )
    assert record.output == [10, 20]


async def test_vars_set_inside_a_loop_body_are_visible_after_the_loop():
    record = await execute(
        {
            "nodes": [
                {
                    "id": "each",
                    "type": "std/loop",
                    "config": {
                        "items": [1, 2, 3],
                        "body": {
                            "nodes": [
                                {
                                    "id": "remember",
                                    "type": "std/set",
                                    "config": {"values": {"last": "{{ $item }}"}},
                                }
                            ]
                        },
                    },
                },
                {"id": "after", "type": "test/echo", "config": {"value": "{{ $vars.last }}"}},
            ],
            "connections": [connect("each", "after")],
        },
        echo,
    )
    assert record.output == 3


async def test_execution_fields_are_visible_to_expressions():
    clock = FakeClock()
    record = await execute(
        {
            "id": "my-flow",
            "nodes": [
                {
                    "id": "show",
                    "type": "test/echo",
                    "config": {
                        "value": {
                            "id": "{{ $execution.id }}",
                            "workflow_id": "{{ $execution.workflow_id }}",
                            "started_at": "{{ $execution.started_at }}",
                            "mode": "{{ $execution.mode }}",
                        }
                    },
                }
            ],
        },
        echo,
        clock=clock,
        execution_id="exec-42",
    )
    assert record.output == {
        "id": "exec-42",
        "workflow_id": "my-flow",
        "started_at": clock.start.isoformat(),
        "mode": "manual",
    }
    assert record.started_at == clock.start


async def test_now_is_the_engine_clocks_time():
    clock = FakeClock()
    record = await execute(
        {"nodes": [{"id": "n", "type": "test/echo", "config": {"value": "{{ $now }}"}}]},
        echo,
        clock=clock,
    )
    assert isinstance(record.output, str)
    assert datetime.fromisoformat(record.output) == clock.start


async def test_env_holds_only_what_the_engine_was_given(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CONV3N_TEST_HIDDEN", "do-not-leak")
    record = await execute(
        {
            "nodes": [
                {
                    "id": "n",
                    "type": "test/echo",
                    "config": {
                        "value": [
                            "{{ $env.REGION }}",
                            "{{ $env.CONV3N_TEST_HIDDEN }}",
                            "{{ $env.PATH }}",
                        ]
                    },
                }
            ]
        },
        echo,
        env={"REGION": "eu-1"},
    )
    assert record.output == ["eu-1", None, None]


async def test_secrets_given_to_the_engine_are_visible_to_expressions_and_blocks():
    @block("use_secret")
    async def use_secret(ctx: Context, config: Empty) -> JSON:
        return len(await ctx.secret("TOKEN"))

    record = await execute(
        {
            "nodes": [
                {
                    "id": "expr",
                    "type": "test/echo",
                    "config": {"value": "{{ len($secrets.TOKEN) }}"},
                },
                {"id": "call", "type": "test/use_secret"},
                {"id": "absent", "type": "test/echo", "config": {"value": "{{ $secrets.NOPE }}"}},
            ]
        },
        echo,
        use_secret,
        secrets={"TOKEN": "s3cr3t-value"},
    )
    assert record.output == {"expr": 12, "call": 12, "absent": None}


async def test_unknown_secret_fails_the_block_that_asks_for_it():
    @block("use_secret")
    async def use_secret(ctx: Context, config: Empty) -> JSON:
        return await ctx.secret("MISSING")

    record = await execute(
        {
            "nodes": [
                {
                    "id": "call",
                    "type": "test/use_secret",
                    "retry": {"max_attempts": 3, "backoff_ms": 0},
                }
            ]
        },
        use_secret,
    )
    assert record.status is ExecutionStatus.ERROR
    assert record.error is not None
    assert record.error.type == "secret_not_found"
    assert record.error.node == "call"
    assert record.nodes["call"].attempts == 1  # a missing secret does not appear on retry


async def test_secret_values_are_redacted_from_stored_results():
    record = await execute(
        {
            "nodes": [
                {
                    "id": "leak",
                    "type": "test/echo",
                    "config": {"value": "token={{ $secrets.TOKEN }}"},
                },
            ]
        },
        echo,
        secrets={"TOKEN": "s3cr3t-value"},
    )
    assert "s3cr3t-value" not in record.model_dump_json()


async def test_idempotency_key_is_execution_id_and_node_id():
    record = await execute({"nodes": [{"id": "k", "type": "test/key"}]}, key, execution_id="e1")
    assert record.output == "e1:k"


async def test_idempotency_key_in_a_loop_body_adds_the_item_index():
    record = await execute(
        {
            "nodes": [
                {
                    "id": "each",
                    "type": "std/loop",
                    "config": {
                        "items": ["a", "b", "c"],
                        "body": {"nodes": [{"id": "k", "type": "test/key"}]},
                    },
                }
            ]
        },
        key,
        execution_id="e1",
    )
    assert record.output == ["e1:k:0", "e1:k:1", "e1:k:2"]


async def test_idempotency_key_in_nested_loops_adds_both_indexes():
    inner = {
        "nodes": [
            {
                "id": "inner",
                "type": "std/loop",
                "config": {
                    "items": "{{ $item }}",
                    "body": {"nodes": [{"id": "k", "type": "test/key"}]},
                },
            }
        ]
    }
    record = await execute(
        {
            "nodes": [
                {
                    "id": "outer",
                    "type": "std/loop",
                    "config": {"items": [["x", "y"], ["z"]], "body": inner},
                }
            ]
        },
        key,
        execution_id="e1",
    )
    assert record.output == [["e1:k:0:0", "e1:k:0:1"], ["e1:k:1:0"]]


async def test_loop_body_sees_item_index_and_outer_nodes():
    record = await execute(
        {
            "nodes": [
                {"id": "base", "type": "test/echo", "config": {"value": 100}},
                {
                    "id": "each",
                    "type": "std/loop",
                    "config": {
                        "items": [5, 6],
                        "body": {
                            "nodes": [
                                {
                                    "id": "add",
                                    "type": "test/echo",
                                    "config": {
                                        "value": "{{ $node.base.data + $item * 10 + $index }}"
                                    },
                                }
                            ]
                        },
                    },
                },
            ],
            "connections": [connect("base", "each")],
        },
        echo,
    )
    assert record.output == [150, 161]
