"""The RFC 9535 JSONPath Compliance Test Suite, one test per case, through std/transform.

One registry and one engine serve every case; each case is compiled into a one-node plan, so
invalid selectors meet the compiler (WorkflowInvalid) and valid ones the engine.
"""

import json
from typing import Any

import pytest

from conv3n.compiler import Plan, compile_workflow, load_workflow
from conv3n.engine import Engine
from conv3n.errors import WorkflowInvalid
from conv3n.sdk import BlockRegistry
from tests.blocks.conftest import json_equal, literal
from tests.conftest import IN_CI, SHARED

CTS = SHARED / "external-tests" / "jsonpath-cts" / "cts.json"
MISSING = f"the JSONPath compliance suite is missing: {CTS}"
REGISTRY = BlockRegistry.discover()
ENGINE = Engine()  # the queries make no HTTP calls, so there is no pool to close

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _cases(*, invalid: bool) -> list[Any]:
    if not CTS.is_file():
        skip = () if IN_CI else (pytest.mark.skip(reason=MISSING),)
        return [pytest.param(None, id="suite-missing", marks=skip)]
    tests = json.loads(CTS.read_text(encoding="utf-8"))["tests"]
    return [
        pytest.param(case, id=case["name"])
        for case in tests
        if bool(case.get("invalid_selector")) is invalid
    ]


def _plan(case: dict[str, Any]) -> Plan:
    config = {"input": literal(case.get("document")), "jsonpath": literal(case["selector"])}
    workflow = {"version": 1, "nodes": [{"id": "query", "type": "std/transform", "config": config}]}
    return compile_workflow(load_workflow(workflow), REGISTRY)


@pytest.mark.parametrize("case", _cases(invalid=False))
async def test_valid_selector_returns_the_expected_nodes(case: dict[str, Any] | None):
    if case is None:
        pytest.fail(MISSING)
    record = await ENGINE.execute(_plan(case))
    node = record.nodes["query"]
    assert node.status == "success", node.error
    answers = [case["result"]] if "result" in case else case["results"]
    assert any(json_equal(node.data, answer) for answer in answers), (node.data, answers)


@pytest.mark.parametrize("case", _cases(invalid=True))
async def test_invalid_selector_is_a_workflow_validation_error(case: dict[str, Any] | None):
    if case is None:
        pytest.fail(MISSING)
    with pytest.raises(WorkflowInvalid) as invalid:
        _plan(case)
    assert [p.where for p in invalid.value.problems] == ["nodes[0].config.jsonpath"]
