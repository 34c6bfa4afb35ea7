"""Trigger definitions are checked when a workflow is saved: each problem names its place."""

import importlib.util
from typing import Any

import pytest

from conv3n.errors import WorkflowInvalid
from conv3n.model import Problem
from conv3n.triggers import definitions


def where(triggers: Any) -> dict[str, str]:
    return {p.where: p.message for p in definitions.problems(triggers)}


def test_valid_definitions_of_every_type_have_no_problems():
    assert (
        where(
            [
                {"type": "manual"},
                {"type": "webhook", "path": "orders", "method": "put", "response": "async"},
                {"type": "cron", "expression": "0 9 * * 1-5", "timezone": "Europe/Berlin"},
                {"type": "cron", "expression": "*/5 * * * * *", "catch_up": "all"},
                {"type": "interval", "every_ms": 100, "catch_up": "none", "key": "fast"},
                {"type": "file", "path": "inbox", "events": ["created"], "pattern": "*.csv"},
                {
                    "type": "queue",
                    "broker": "redis",
                    "url": "redis://x",
                    "channel": "c",
                    "key": "q",
                },
            ]
        )
        == {}
    )


def test_a_bad_cron_expression_names_its_place():
    found = where([{"type": "manual"}, {"type": "cron", "expression": "61 * * * *"}])
    assert list(found) == ["triggers[1].expression"]
    assert "not a valid cron expression" in found["triggers[1].expression"]


def test_every_problem_is_reported_at_once():
    found = where(
        [
            {"type": "cron", "expression": "* * *", "timezone": "Nowhere/Town"},
            {"type": "interval", "every_ms": 5},
            {"type": "file"},
            {"type": "teleport"},
            "not a mapping",
            {"type": "interval", "every_ms": 1000, "catch_up": "some", "colour": "red"},
        ]
    )
    assert found == {
        "triggers[0].expression": found["triggers[0].expression"],
        "triggers[0].timezone": found["triggers[0].timezone"],
        "triggers[1].every_ms": found["triggers[1].every_ms"],
        "triggers[2].path": "required field is missing",
        "triggers[3].type": found["triggers[3].type"],
        "triggers[4]": "a trigger must be a mapping with a `type`",
        "triggers[5].catch_up": found["triggers[5].catch_up"],
        "triggers[5].colour": "unknown field",
    }
    assert "has 3" in found["triggers[0].expression"]
    assert "Nowhere/Town" in found["triggers[0].timezone"]
    assert "100" in found["triggers[1].every_ms"]
    assert "manual, webhook, cron, interval, queue, file" in found["triggers[3].type"]


def test_interval_below_100_ms_is_refused():
    found = where([{"type": "interval", "every_ms": 99}])
    assert "greater than or equal to 100" in found["triggers[0].every_ms"]


def test_queue_definitions_keep_broker_specific_fields_but_need_a_known_broker():
    assert list(where([{"type": "queue", "broker": "kafka", "topic": "t"}])) == [
        "triggers[0].broker"
    ]
    definition = {
        "type": "queue",
        "broker": "nats",
        "url": "nats://127.0.0.1:4222",
        "mode": "core",
        "subject": "orders",
        "key": "orders",
    }
    parsed = definitions.parse(definition, 0)
    assert parsed.model_extra == {"mode": "core", "subject": "orders"}
    assert definitions.key_of(parsed, 0) == "orders"
    # `key` is every trigger's field: the broker's own check never sees it
    assert "key" not in definitions.queue_fields(definition)


def test_broker_specific_problems_are_reported_at_save_time_with_their_place():
    if importlib.util.find_spec("conv3n.triggers.queue") is None:
        pytest.skip("the queue triggers are not installed")
    found = where(
        [
            {"type": "manual"},
            {"type": "queue", "broker": "redis", "url": "redis://x", "channel": "c", "qos": 1},
        ]
    )
    assert list(found) == ["triggers[1].qos"]


def test_two_triggers_with_one_key_are_refused():
    found = where(
        [
            {"type": "interval", "every_ms": 1000, "key": "tick"},
            {"type": "cron", "expression": "@daily", "key": "tick"},
            {"type": "cron", "expression": "@daily", "key": "0"},
        ]
    )
    assert found == {"triggers[1].key": "trigger key 'tick' is used by triggers[0] too"}


def test_a_key_clashing_with_a_position_is_refused():
    found = where([{"type": "cron", "expression": "@daily"}, {"type": "manual", "key": "0"}])
    assert found == {"triggers[1].key": "trigger key '0' is used by triggers[0] too"}


def test_two_webhooks_on_one_path_and_method_are_refused():
    found = where([{"type": "webhook", "path": "a"}, {"type": "webhook", "path": "/a/"}])
    assert found == {"triggers[1].path": "POST /a/ is taken by triggers[0]"}


@pytest.mark.parametrize(
    "definition",
    [
        {"type": "webhook", "path": "has space"},
        {"type": "webhook", "path": "a?b"},
        {"type": "webhook", "path": ""},
        {"type": "webhook", "path": "x" * 300},
        {"type": "file", "path": "in", "events": []},
        {"type": "file", "path": "in", "events": ["renamed"]},
        {"type": "file", "path": "in", "debounce_ms": 0},
        {"type": "cron", "expression": "0 0 31 2 *"},
        {"type": "cron", "expression": "* * * * *", "max_catch_up": 0},
        {"type": "interval", "every_ms": "fast"},
        {"type": "interval", "every_ms": 10**30},
        {"type": "manual", "key": "bad key!"},
    ],
)
def test_hostile_or_malformed_definitions_are_refused(definition: dict[str, Any]):
    found = where([definition])
    assert found
    assert all(place.startswith("triggers[0]") for place in found)


def test_triggers_that_are_not_a_list_are_left_to_the_structure_check():
    assert where({"type": "cron"}) == {}
    assert where(None) == {}


def test_checked_adds_trigger_problems_to_those_of_the_compilation():
    def compile_fails() -> None:
        raise WorkflowInvalid([Problem(("nodes", 0, "type"), "unknown block")])

    with pytest.raises(WorkflowInvalid) as caught:
        definitions.checked(compile_fails, [{"type": "interval", "every_ms": 1}])
    assert [p.where for p in caught.value.problems] == ["nodes[0].type", "triggers[0].every_ms"]
    assert definitions.checked(lambda: 42, [{"type": "manual"}]) == 42
