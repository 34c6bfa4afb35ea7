"""The Python and Node SDKs under sdk/: async handlers, errors (retryable or not), ports, and
output a handler writes to stdout that must not break the protocol."""

import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from conv3n.model import ExecutionRecord
from conv3n.runtime import Settings, discover_blocks
from conv3n.testing import run_workflow
from tests.conftest import ROOT

PYTHON_SDK = ROOT / "sdk" / "python" / "src"
NODE_SDK = ROOT / "sdk" / "typescript" / "index.mjs"

PYTHON_HANDLER = """\
import asyncio, os
import conv3n_block


async def main(request):
    await asyncio.sleep(0)
    what = request.input
    if what == "divide":
        return 1 / 0
    if what == "set":
        return {1, 2}
    if what == "shell":
        os.system("echo from-a-child-process")
        print("from print")
        return "clean"
    if what == "flaky":
        raise conv3n_block.BlockError("try again", retryable=True, details={"n": request.attempt})
    if what == "port":
        return conv3n_block.Port("other", {"attempt": request.attempt})
    return {"echo": what, "config": request.config}


if __name__ == "__main__":
    conv3n_block.run(main)
"""

NODE_HANDLER = """\
import { BlockError, Port, run } from "%s";

run(async (request) => {
  await new Promise((resolve) => setTimeout(resolve, 1));
  const what = request.input;
  if (what === "throw") throw new TypeError("boom");
  if (what === "flaky") throw new BlockError("try again", { retryable: true, details: { n: 1 } });
  if (what === "port") return new Port("other", { attempt: request.attempt });
  if (what === "log") { console.log("from console.log"); return "clean"; }
  if (what === "undefined") return undefined;
  return { echo: what, config: request.config };
});
"""


def sdk_block(root: Path, language: str) -> None:
    folder = root / language
    folder.mkdir(parents=True)
    manifest: dict[str, Any] = {
        "type": f"sdk/{language}",
        "ports": ["main", "other"],
        "mode": "worker",
        "config_schema": {"type": "object"},
    }
    if language == "python":
        (folder / "main.py").write_text(PYTHON_HANDLER)
        manifest["command"] = [sys.executable, "main.py"]
        manifest["env"] = {"PYTHONPATH": str(PYTHON_SDK)}
    else:
        (folder / "main.mjs").write_text(NODE_HANDLER % NODE_SDK.as_uri())
        manifest["command"] = ["node", "main.mjs"]
    (folder / "block.json").write_text(json.dumps(manifest))


@pytest.fixture
def blocks(tmp_path: Path) -> Any:
    sdk_block(tmp_path / "blocks", "python")
    if shutil.which("node"):
        sdk_block(tmp_path / "blocks", "node")
    registry, problems = discover_blocks(
        Settings(data_dir=tmp_path, blocks_dir_path=tmp_path / "blocks")
    )
    assert problems == []
    return registry


async def call(registry: Any, language: str, value: Any, **node: Any) -> ExecutionRecord:
    document = {
        "nodes": [{"id": "n", "type": f"sdk/{language}", "config": {"k": 1}, **node}],
    }
    return await run_workflow(document, value, registry=registry)


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
LANGUAGES = ["python", pytest.param("node", marks=needs_node)]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_an_async_handler_gets_the_config_and_input(blocks: Any, language: str) -> None:
    record = await call(blocks, language, "hi")
    assert record.output == {"echo": "hi", "config": {"k": 1}}


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_retryable_block_error_is_retried_by_the_nodes_policy(
    blocks: Any, language: str
) -> None:
    record = await call(blocks, language, "flaky", retry={"max_attempts": 2, "backoff_ms": 0})
    node = record.nodes["n"]
    assert node.attempts == 2
    assert node.error is not None
    assert node.error.message == "try again"
    assert node.error.details["n"] == (2 if language == "python" else 1)


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_port_answer_activates_that_port(blocks: Any, language: str) -> None:
    document = {
        "nodes": [
            {"id": "n", "type": f"sdk/{language}"},
            {"id": "on_other", "type": "std/noop"},
            {"id": "on_main", "type": "std/noop"},
        ],
        "connections": [
            {"from": "n", "port": "other", "to": "on_other"},
            {"from": "n", "to": "on_main"},
        ],
    }
    record = await run_workflow(document, "port", registry=blocks)
    assert record.nodes["on_other"].data == {"attempt": 1}
    assert record.nodes["on_main"].status.value == "skipped"


async def test_python_unexpected_exceptions_and_unserialisable_results_fail_the_node(
    blocks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="conv3n.node")
    divided = (await call(blocks, "python", "divide")).nodes["n"].error
    assert divided is not None
    assert divided.message == "ZeroDivisionError: division by zero"
    assert divided.details == {"exception": "ZeroDivisionError"}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Traceback (most recent call last):" in logged
    unserialisable = (await call(blocks, "python", "set")).nodes["n"].error
    assert unserialisable is not None
    assert unserialisable.message.startswith("the handler's result is not JSON:")


async def test_python_output_to_stdout_goes_to_the_log_not_the_protocol(
    blocks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="conv3n.node")
    record = await call(blocks, "python", "shell")
    assert record.output == "clean"
    logged = [r.getMessage() for r in caplog.records if r.name == "conv3n.node.n"]
    assert "from-a-child-process" in logged
    assert "from print" in logged


@needs_node
async def test_node_thrown_errors_console_output_and_undefined(
    blocks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="conv3n.node")
    thrown = (await call(blocks, "node", "throw")).nodes["n"].error
    assert thrown is not None
    assert (thrown.message, thrown.details) == ("TypeError: boom", {"exception": "TypeError"})
    logged = await call(blocks, "node", "log")
    assert logged.output == "clean"
    assert "from console.log" in [r.getMessage() for r in caplog.records]
    assert (await call(blocks, "node", "undefined")).output is None
