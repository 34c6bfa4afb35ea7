"""The JMESPath compliance tests (jmespath.test), one test per case, through std/transform.

Benchmark cases are left out. A syntax error must be a workflow validation error naming
`config.jmespath`; any other expected error (invalid type, value or arity, unknown function)
must fail the node with a block error, not crash it.
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

SUITE = SHARED / "external-tests" / "jmespath-compliance" / "tests"
MISSING = f"the JMESPath compliance tests are missing: {SUITE}"
REGISTRY = BlockRegistry.discover()
ENGINE = Engine()  # the queries make no HTTP calls, so there is no pool to close

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _cases(kind: str) -> list[Any]:
    """Params of (given, case) where kind is `result`, `syntax` or `runtime` (other errors)."""
    files = sorted(SUITE.glob("*.json")) if SUITE.is_dir() else []
    if not files:
        skip = () if IN_CI else (pytest.mark.skip(reason=MISSING),)
        return [pytest.param(None, None, id="suite-missing", marks=skip)]
    params = []
    for path in files:
        for group_number, group in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            for case_number, case in enumerate(group["cases"]):
                if "bench" in case:
                    continue
                error = case.get("error")
                found = "result" if error is None else "syntax" if error == "syntax" else "runtime"
                if found == kind:
                    name = f"{path.stem}[{group_number}][{case_number}] {case['expression']}"
                    params.append(pytest.param(group["given"], case, id=name))
    return params


def _plan(given: Any, expression: str) -> Plan:
    config = {"input": literal(given), "jmespath": literal(expression)}
    workflow = {"version": 1, "nodes": [{"id": "query", "type": "std/transform", "config": config}]}
    return compile_workflow(load_workflow(workflow), REGISTRY)


@pytest.mark.parametrize(("given", "case"), _cases("result"))
async def test_expression_gives_the_expected_result(given: Any, case: dict[str, Any] | None):
    if case is None:
        pytest.fail(MISSING)
    record = await ENGINE.execute(_plan(given, case["expression"]))
    node = record.nodes["query"]
    assert node.status == "success", node.error
    assert json_equal(node.data, case["result"]), (node.data, case["result"])


@pytest.mark.parametrize(("given", "case"), _cases("syntax"))
async def test_syntax_error_is_a_workflow_validation_error(given: Any, case: dict[str, Any] | None):
    if case is None:
        pytest.fail(MISSING)
    with pytest.raises(WorkflowInvalid) as invalid:
        _plan(given, case["expression"])
    assert [p.where for p in invalid.value.problems] == ["nodes[0].config.jmespath"]


@pytest.mark.parametrize(("given", "case"), _cases("runtime"))
async def test_runtime_error_fails_the_node(given: Any, case: dict[str, Any] | None):
    if case is None:
        pytest.fail(MISSING)
    record = await ENGINE.execute(_plan(given, case["expression"]))
    node = record.nodes["query"]
    assert node.status == "error"
    assert node.error is not None
    assert node.error.type == "block_error", node.error
    assert node.attempts == 1
