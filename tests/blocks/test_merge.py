"""std/merge: join branches, keyed by predecessor (all) or the first data to arrive (first)."""

import pytest

from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON
from conv3n.testing import run_block, run_workflow


def _diamond(mode: str | None, ok: JSON) -> dict[str, JSON]:
    """check -> (true: yes, false: no) -> join, plus an unconditional `always` -> join."""
    join: dict[str, JSON] = {"id": "join", "type": "std/merge"}
    if mode is not None:
        join["config"] = {"mode": mode}
    return {
        "nodes": [
            {"id": "check", "type": "std/condition", "config": {"expression": ok}},
            {"id": "yes", "type": "std/transform", "config": {"template": {"said": "yes"}}},
            {"id": "no", "type": "std/transform", "config": {"template": {"said": "no"}}},
            join,
        ],
        "connections": [
            {"from": "check", "port": "true", "to": "yes"},
            {"from": "check", "port": "false", "to": "no"},
            {"from": "yes", "to": "join"},
            {"from": "no", "to": "join"},
        ],
    }


def _fan_in(mode: str) -> dict[str, JSON]:
    """first -> second, and both -> join: `first` always finishes before `second`."""
    return {
        "nodes": [
            {"id": "first", "type": "std/transform", "config": {"template": 1}},
            {"id": "second", "type": "std/transform", "config": {"template": 2}},
            {"id": "join", "type": "std/merge", "config": {"mode": mode}},
        ],
        "connections": [
            {"from": "first", "to": "second"},
            {"from": "second", "to": "join"},
            {"from": "first", "to": "join"},
        ],
    }


async def test_all_is_keyed_by_predecessor_in_finishing_order():
    record = await run_workflow(_fan_in("all"))
    assert record.status == "success", record.error
    assert record.output == {"first": 1, "second": 2}
    assert isinstance(record.output, dict)
    assert list(record.output) == ["first", "second"]


async def test_all_is_the_default_mode():
    record = await run_workflow(_diamond(None, True))
    assert record.output == {"yes": {"said": "yes"}}


@pytest.mark.parametrize(("ok", "ran"), [(True, "yes"), (False, "no")])
async def test_all_leaves_out_skipped_branches(ok: bool, ran: str):
    record = await run_workflow(_diamond("all", ok))
    assert record.status == "success", record.error
    assert record.nodes["join"].status == "success"
    assert record.output == {ran: {"said": ran}}


@pytest.mark.parametrize(("ok", "ran"), [(True, "yes"), (False, "no")])
async def test_first_with_a_skipped_branch_gives_the_branch_that_ran(ok: bool, ran: str):
    record = await run_workflow(_diamond("first", ok))
    assert record.status == "success", record.error
    assert record.output == {"said": ran}


async def test_first_gives_the_first_finished_data():
    record = await run_workflow(_fan_in("first"))
    assert record.output == 1


@pytest.mark.looptime
async def test_parallel_branches_merge_in_the_order_they_finish():
    document = {
        "nodes": [
            {"id": "slow", "type": "std/delay", "config": {"ms": 2000}},
            {"id": "fast", "type": "std/delay", "config": {"ms": 1000}},
            {"id": "first", "type": "std/merge", "config": {"mode": "first"}},
            {"id": "all", "type": "std/merge"},
        ],
        "connections": [
            {"from": source, "to": join} for source in ("slow", "fast") for join in ("first", "all")
        ],
    }
    record = await run_workflow(document)
    assert record.status == "success", record.error
    assert record.nodes["first"].data == {"waited_ms": 1000}
    assert list(record.nodes["all"].data) == ["fast", "slow"]


async def test_merge_is_skipped_when_every_branch_is_skipped():
    document = _diamond("all", True)
    document["nodes"].insert(
        0, {"id": "gate", "type": "std/condition", "config": {"expression": False}}
    )
    document["connections"].append({"from": "gate", "port": "true", "to": "check"})
    record = await run_workflow(document)
    assert record.status == "success", record.error
    assert {n: node.status for n, node in record.nodes.items()} == dict.fromkeys(
        ["gate"], "success"
    ) | dict.fromkeys(["check", "yes", "no", "join"], "skipped")


async def test_failed_branch_continuing_is_merged_as_null():
    document = _fan_in("all")
    document["nodes"][1] = {
        "id": "second",
        "type": "std/fail",
        "config": {"message": "broken"},
        "on_error": "continue",
    }
    record = await run_workflow(document)
    assert record.status == "success", record.error
    assert record.output == {"first": 1, "second": None}


async def test_unknown_mode_is_a_workflow_error():
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/merge", {"mode": "any"})
    assert [p.where for p in invalid.value.problems] == ["nodes[0].config.mode"]
