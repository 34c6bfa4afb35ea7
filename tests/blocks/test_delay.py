"""std/delay: wait `ms` or `until` a time, on the engine's clock."""

import asyncio
from datetime import timedelta

import pytest

from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON, ExecutionRecord
from conv3n.testing import run_block, run_workflow
from tests.blocks.conftest import StepClock


async def _delay(config: dict[str, JSON], clock: StepClock) -> ExecutionRecord:
    document = {"nodes": [{"id": "wait", "type": "std/delay", "config": config}]}
    return await run_workflow(document, clock=clock)


async def test_ms_waits_that_long_on_the_engine_clock(clock: StepClock):
    record = await _delay({"ms": 250}, clock)
    assert record.status == "success", record.error
    assert clock.slept == [0.25]
    assert record.output == {"waited_ms": 250}


async def test_until_waits_for_that_time_on_the_engine_clock(clock: StepClock):
    until = (clock.now() + timedelta(seconds=90)).isoformat()
    record = await _delay({"until": until}, clock)
    assert record.status == "success", record.error
    assert clock.slept == [90.0]
    assert record.output == {"waited_ms": 90_000}


async def test_until_without_a_zone_is_utc(clock: StepClock):
    until = (clock.now() + timedelta(minutes=1)).replace(tzinfo=None).isoformat()
    record = await _delay({"until": until}, clock)
    assert record.status == "success", record.error
    assert clock.slept == [60.0]


async def test_until_in_another_zone_is_converted(clock: StepClock):
    # 02:00 at +02:00 is midnight UTC, 90 s after the clock's start.
    record = await _delay({"until": "2030-01-01T02:01:30+02:00"}, clock)
    assert record.status == "success", record.error
    assert clock.slept == [90.0]


async def test_until_in_the_past_does_not_wait(clock: StepClock):
    until = (clock.now() - timedelta(hours=1)).isoformat()
    record = await _delay({"until": until}, clock)
    assert record.output == {"waited_ms": 0}
    assert clock.slept == []


async def test_until_may_be_rendered_from_an_expression(clock: StepClock):
    config = {"until": "{{ $input.when }}"}
    until = (clock.now() + timedelta(seconds=5)).isoformat()
    document = {"nodes": [{"id": "wait", "type": "std/delay", "config": config}]}
    record = await run_workflow(document, {"when": until}, clock=clock)
    assert record.status == "success", record.error
    assert clock.slept == [5.0]


async def test_until_beyond_the_longest_delay_fails_naming_config_until(clock: StepClock):
    until = (clock.now() + timedelta(days=400)).isoformat()
    record = await _delay({"until": until}, clock)
    assert record.status == "error"
    assert record.error is not None
    assert record.error.message.startswith("config.until:")
    assert clock.slept == []


@pytest.mark.looptime
async def test_delay_fast_forwards_under_looptime():
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await run_block("std/delay", {"ms": 3_600_000})
    assert result.status == "success", result.error
    assert loop.time() - start == pytest.approx(3600)


@pytest.mark.parametrize(
    ("config", "place"),
    [
        ({}, "nodes[0].config"),
        ({"ms": 1, "until": "2030-01-01T00:00:00Z"}, "nodes[0].config"),
        ({"ms": -1}, "nodes[0].config.ms"),
        ({"ms": 10**12}, "nodes[0].config.ms"),
        ({"until": "next tuesday"}, "nodes[0].config.until"),
    ],
)
async def test_bad_config_is_a_workflow_error_naming_the_place(config: JSON, place: str):
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/delay", config)
    assert [p.where for p in invalid.value.problems] == [place]
