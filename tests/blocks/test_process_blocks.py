"""Process blocks through the real engine: both SDK examples in both modes, and processes that
misbehave (garbage, silence, death, a 100 MB line, crashes, load) without taking conv3n down."""

import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from pydantic import BaseModel, ConfigDict

from conv3n.blocks import process
from conv3n.errors import WorkflowInvalid
from conv3n.model import ExecutionRecord
from conv3n.runtime import Settings, discover_blocks
from conv3n.sdk import BlockRegistry, Context, block
from conv3n.testing import run_workflow
from tests.conftest import ROOT

PYTHON_EXAMPLE = ROOT / "sdk" / "python" / "examples" / "uppercase"
NODE_EXAMPLE = ROOT / "sdk" / "typescript" / "examples" / "word_count"
PYTHON_SDK = ROOT / "sdk" / "python" / "src"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


def registry_of(root: Path) -> BlockRegistry:
    """The registry a runtime with this blocks folder builds (bad manifests fail the test)."""
    registry, problems = discover_blocks(Settings(data_dir=root.parent, blocks_dir_path=root))
    assert problems == []
    return registry


def copy_example(example: Path, blocks: Path, **changes: Any) -> Path:
    """The example's manifest, changed by `changes`, in a folder under `blocks`; it runs the
    example's own program (the Python one on this interpreter, with this checkout's SDK)."""
    path = process.manifest.find(example)
    assert path is not None
    data = process.manifest.read(path).model_dump()
    program, script = data["command"]
    data["command"] = [sys.executable if program == "python3" else program, str(example / script)]
    if program == "python3":
        data["env"] = {"PYTHONPATH": str(PYTHON_SDK)}
    data.update(changes)
    target = blocks / example.name
    target.mkdir(parents=True)
    (target / "block.json").write_text(json.dumps(data))
    return target


RAW = """\
import json, os, sys
for line in sys.stdin:
    request = json.loads(line)
    config, value = request["config"], request["input"]
    if config.get("warm"):
        reply("warm")
        continue
{body}
"""


def raw_block(blocks: Path, name: str, body: str, **manifest: Any) -> Path:
    """A block `test/<name>` speaking the protocol by hand (no SDK); `body` runs per request
    with `request`, `config` and `value` bound and answers with `reply(data)`. A request with
    config `{"warm": true}` is answered at once (see `run_warmed`)."""
    folder = blocks / name
    folder.mkdir(parents=True)
    helper = (
        "def reply(data):\n"
        "    print(json.dumps({'id': request['id'], 'ok': True, 'data': data}), flush=True)\n"
    )
    (folder / "main.py").write_text(helper + RAW.format(body=textwrap.indent(body, "    ")))
    data = {
        "type": f"test/{name}",
        "command": [sys.executable, "main.py"],
        "mode": "worker",
        "config_schema": {"type": "object"},
    }
    data.update(manifest)
    (folder / "block.json").write_text(json.dumps(data))
    return folder


def dead(pid: int, within_s: float = 5.0) -> bool:
    """The process has exited, or does within a moment (a killed process closes its pipes a
    little before it is gone; a zombie nobody reaped yet counts: it runs no more)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)  # no event tells us when a process that is not our child is gone


def one_node(block_type: str, config: dict[str, Any] | None = None, **node: Any) -> dict[str, Any]:
    return {"nodes": [{"id": "n", "type": block_type, "config": config or {}, **node}]}


async def run_warmed(
    registry: BlockRegistry, block_type: str, input: Any = None, **node: Any
) -> ExecutionRecord:
    """Node `n` of `block_type` after a node `warm` of the same block (pool_size 1): `n` runs on
    a worker that is already up, so a short timeout measures the answer, not the start."""
    document = {
        "nodes": [
            {"id": "warm", "type": block_type, "config": {"warm": True}},
            {"id": "n", "type": block_type, **node},
        ],
        "connections": [{"from": "warm", "to": "n"}],
    }
    return await run_workflow(document, input, registry=registry)


async def run_one(
    registry: BlockRegistry, block_type: str, input: Any = None, **kw: Any
) -> ExecutionRecord:
    return await run_workflow(one_node(block_type, **kw), input, registry=registry)


# --- the SDK examples ------------------------------------------------------------------------


async def test_python_example_runs_from_its_own_manifest_as_shipped() -> None:
    registry = BlockRegistry.of(*process.from_manifests(PYTHON_EXAMPLE), namespace="example")
    record = await run_one(registry, "example/uppercase", {"name": "ada"}, config={"field": "name"})
    assert record.status.value == "success", record.error
    assert record.output == {"text": "ADA"}


@pytest.mark.parametrize("mode", ["once", "worker"])
async def test_python_example_upper_cases_routes_and_logs_in_both_modes(
    tmp_path: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    copy_example(PYTHON_EXAMPLE, tmp_path / "blocks", mode=mode)
    registry = registry_of(tmp_path / "blocks")
    caplog.set_level(logging.INFO, logger="conv3n.node")
    document = {
        "nodes": [
            {"id": "up", "type": "example/uppercase", "config": {"field": "name", "repeat": 2}},
            {"id": "blank", "type": "example/uppercase", "config": {"field": "empty"}},
            {"id": "after_blank", "type": "std/noop"},
        ],
        "connections": [{"from": "blank", "port": "empty", "to": "after_blank"}],
    }
    record = await run_workflow(document, {"name": "ada", "empty": ""}, registry=registry)
    assert record.status.value == "success", record.error
    assert record.nodes["up"].data == {"text": "ADAADA"}
    assert record.nodes["after_blank"].data == {"text": ""}
    logged = [r.getMessage() for r in caplog.records if r.name == "conv3n.node.up"]
    assert "upper-casing 3 characters" in logged  # print() -> stderr -> the node's log
    assert "attempt 1 of node up" in logged  # request.log() -> a log line


@needs_node
@pytest.mark.parametrize("mode", ["once", "worker"])
async def test_node_example_counts_words_in_both_modes(tmp_path: Path, mode: str) -> None:
    copy_example(NODE_EXAMPLE, tmp_path / "blocks", mode=mode)
    registry = registry_of(tmp_path / "blocks")
    record = await run_one(
        registry, "example/word_count", {"text": "a b a c b a"}, config={"field": "text", "top": 2}
    )
    assert record.status.value == "success", record.error
    assert record.output == {
        "words": 6,
        "top": [{"word": "a", "count": 3}, {"word": "b", "count": 2}],
    }


@needs_node
async def test_block_errors_of_both_sdks_fail_the_node_with_their_message(tmp_path: Path) -> None:
    copy_example(PYTHON_EXAMPLE, tmp_path / "blocks")
    copy_example(NODE_EXAMPLE, tmp_path / "blocks")
    registry = registry_of(tmp_path / "blocks")
    for block_type, expected in [
        ("example/uppercase", "expected text at the input, got int"),
        ("example/word_count", "expected text at the input, got number"),
    ]:
        record = await run_one(registry, block_type, 42)
        assert record.status.value == "error"
        error = record.nodes["n"].error
        assert error is not None
        assert (error.type, error.message) == ("block_error", expected)
        assert error.details == {"field": ""}
        assert record.nodes["n"].attempts == 1


async def test_config_against_the_manifest_schema_is_rejected_at_validate_time(
    tmp_path: Path,
) -> None:
    copy_example(PYTHON_EXAMPLE, tmp_path / "blocks")
    registry = registry_of(tmp_path / "blocks")
    config = {"field": 3, "repeat": 0, "colour": "red"}
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_one(registry, "example/uppercase", config=config)
    problems = {p.where: p.message for p in invalid.value.problems}
    assert set(problems) == {
        "nodes[0].config.field",
        "nodes[0].config.repeat",
        "nodes[0].config.colour",
    }
    assert problems["nodes[0].config.colour"] == "unknown field"
    assert "is not of type 'string'" in problems["nodes[0].config.field"]


async def test_a_rendered_config_is_checked_against_the_schema_before_the_process_runs(
    tmp_path: Path,
) -> None:
    raw_block(
        tmp_path / "blocks",
        "echo",
        "reply(config)",
        config_schema={
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "required": ["n"],
        },
    )
    registry = registry_of(tmp_path / "blocks")
    ok = await run_one(registry, "test/echo", {"n": 4}, config={"n": "{{ $input.n }}"})
    assert ok.output == {"n": 4}
    bad = await run_one(registry, "test/echo", {"n": "four"}, config={"n": "{{ $input.n }}"})
    error = bad.nodes["n"].error
    assert error is not None
    assert error.type == "config_invalid"
    assert error.message.startswith("config.n: ")
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_one(registry, "test/echo", config={})
    assert [(p.where, p.message) for p in invalid.value.problems] == [
        ("nodes[0].config.n", "required field is missing")
    ]


# --- hostile processes -----------------------------------------------------------------------


async def test_garbage_on_stdout_fails_the_node_quoting_it(tmp_path: Path) -> None:
    raw_block(tmp_path / "blocks", "garbage", "print('hello, I am not JSON', flush=True)")
    record = await run_one(registry_of(tmp_path / "blocks"), "test/garbage")
    error = record.nodes["n"].error
    assert error is not None
    assert error.type == "block_error"
    assert "wrote a line that is not JSON: 'hello, I am not JSON'" in error.message


@pytest.mark.slow
async def test_a_process_that_never_answers_is_killed_at_its_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw_block(
        tmp_path / "blocks",
        "silent",
        "print(json.dumps({'id': request['id'], 'log': str(os.getpid())}), flush=True)\n"
        "import time; time.sleep(60)",
        timeout_ms=1500,  # the warm-up's start must fit too, on a busy machine
        pool_size=1,
    )
    caplog.set_level(logging.INFO, logger="conv3n.node")
    record = await run_warmed(registry_of(tmp_path / "blocks"), "test/silent")
    error = record.nodes["n"].error
    assert error is not None
    assert (error.type, error.message) == (
        "timeout",
        "test/silent: no answer within 1500 ms; the process was killed",
    )
    assert error.details["timeout_ms"] == 1500
    pid = int(next(r.getMessage() for r in caplog.records if r.name == "conv3n.node.n"))
    assert dead(pid)


@pytest.mark.slow
async def test_a_timeout_also_kills_what_the_process_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the child holds stdout open after its parent has gone: only killing the group ends it
    raw_block(
        tmp_path / "blocks",
        "orphaner",
        "import subprocess\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(json.dumps({'id': request['id'], 'log': str(child.pid)}), flush=True)\n"
        "os._exit(0)",
        timeout_ms=1500,
        pool_size=1,
    )
    caplog.set_level(logging.INFO, logger="conv3n.node")
    record = await run_warmed(registry_of(tmp_path / "blocks"), "test/orphaner")
    error = record.nodes["n"].error
    assert error is not None
    assert error.type == "timeout"
    child = int(next(r.getMessage() for r in caplog.records if r.name == "conv3n.node.n"))
    assert dead(child)


async def test_a_process_that_exits_mid_request_fails_with_its_exit_code_and_stderr(
    tmp_path: Path,
) -> None:
    raw_block(
        tmp_path / "blocks",
        "quitter",
        "sys.stderr.write('disk on fire\\n'); sys.stderr.flush(); sys.exit(3)",
        mode="once",
    )
    record = await run_one(registry_of(tmp_path / "blocks"), "test/quitter")
    error = record.nodes["n"].error
    assert error is not None
    assert error.message == (
        "test/quitter: the process exited with code 3 before answering: disk on fire"
    )
    assert error.details["stderr"] == "disk on fire"


async def test_a_line_over_the_limit_fails_the_node_without_holding_it_all(tmp_path: Path) -> None:
    raw_block(
        tmp_path / "blocks",
        "flood",
        "sys.stdout.write('[' + '1,' * 50_000_000); sys.stdout.flush()",  # 100 MB, no newline
        timeout_ms=20_000,
    )
    record = await run_one(registry_of(tmp_path / "blocks"), "test/flood")
    error = record.nodes["n"].error
    assert error is not None
    assert error.message == (
        "test/flood: the process wrote a line longer than 67,108,864 bytes (max_line_bytes)"
    )


async def test_a_crashed_worker_is_replaced_and_the_next_call_works(tmp_path: Path) -> None:
    raw_block(
        tmp_path / "blocks",
        "fragile",
        "if value == 'crash':\n    os._exit(9)\nreply({'pid': os.getpid(), 'echo': value})",
        pool_size=1,
    )
    registry = registry_of(tmp_path / "blocks")
    # each node's input is the data of the transform before it
    document = {
        "nodes": [
            {"id": "first", "type": "test/fragile"},
            {"id": "say_crash", "type": "std/transform", "config": {"template": "crash"}},
            {"id": "crash", "type": "test/fragile", "on_error": "continue"},
            {"id": "say_ok", "type": "std/transform", "config": {"template": "ok"}},
            {"id": "third", "type": "test/fragile"},
        ],
        "connections": [
            {"from": "first", "to": "say_crash"},
            {"from": "say_crash", "to": "crash"},
            {"from": "crash", "to": "say_ok"},
            {"from": "say_ok", "to": "third"},
        ],
    }
    record = await run_workflow(document, "hi", registry=registry)
    first, crash, third = (record.nodes[n] for n in ("first", "crash", "third"))
    assert crash.error is not None
    assert "exited with code 9 before answering" in crash.error.message
    assert third.data["echo"] == "ok"
    assert third.data["pid"] != first.data["pid"]


class KillConfig(BaseModel):
    """Configuration of test/kill."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pid: int


@block("kill")
async def kill(ctx: Context, config: KillConfig) -> None:
    """Kill a process from outside (as an OOM killer would) and wait until it is gone."""
    os.kill(config.pid, signal.SIGKILL)
    await asyncio.to_thread(dead, config.pid)


async def test_an_idle_worker_killed_from_outside_is_replaced(tmp_path: Path) -> None:
    raw_block(tmp_path / "blocks", "pid", "reply(os.getpid())", pool_size=1)
    registry = registry_of(tmp_path / "blocks")
    registry.add("test2", [kill], origin="(test)")
    document = {
        "nodes": [
            {"id": "first", "type": "test/pid"},
            {"id": "kill", "type": "test2/kill", "config": {"pid": "{{ $node.first.data }}"}},
            {"id": "second", "type": "test/pid"},
        ],
        "connections": [{"from": "first", "to": "kill"}, {"from": "kill", "to": "second"}],
    }
    record = await run_workflow(document, registry=registry)
    assert record.status.value == "success", record.error
    assert isinstance(record.nodes["second"].data, int)
    assert record.nodes["second"].data != record.nodes["first"].data


@pytest.mark.parametrize(
    ("mode", "processes"), [("worker", 3), pytest.param("once", 20, marks=pytest.mark.slow)]
)
async def test_twenty_concurrent_calls_share_a_bounded_pool_of_processes(
    tmp_path: Path, mode: str, processes: int
) -> None:
    raw_block(
        tmp_path / "blocks",
        "square",
        "import time; time.sleep(0.02)\nreply({'pid': os.getpid(), 'square': config['n'] ** 2})",
        pool_size=3,
        mode=mode,
        config_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
    )
    body = {"nodes": [{"id": "sq", "type": "test/square", "config": {"n": "{{ $item }}"}}]}
    document = {
        "nodes": [
            {
                "id": "each",
                "type": "std/loop",
                "config": {"items": "{{ $input }}", "concurrency": 20, "body": body},
            }
        ]
    }
    registry = registry_of(tmp_path / "blocks")
    record = await run_workflow(document, list(range(20)), registry=registry)
    assert record.status.value == "success", record.error
    results = record.output
    assert isinstance(results, list)
    assert [r["square"] for r in results] == [i * i for i in range(20)]
    pids = {r["pid"] for r in results}
    # worker: three calls at once from the start, never more; once: a process per call
    assert len(pids) == processes
    assert all(dead(pid) for pid in pids)  # the engine closed the pool


async def test_an_answer_on_an_unknown_port_or_for_another_request_fails_the_node(
    tmp_path: Path,
) -> None:
    raw_block(
        tmp_path / "blocks",
        "liar",
        "if value == 'port':\n"
        "    print(json.dumps({'id': request['id'], 'ok': True, 'port': 'nowhere'}), flush=True)\n"
        "else:\n"
        "    print(json.dumps({'id': 'other', 'ok': True}), flush=True)",
    )
    registry = registry_of(tmp_path / "blocks")
    port = await run_one(registry, "test/liar", "port")
    assert port.nodes["n"].error is not None
    assert "answered on port 'nowhere', which the block does not have (ports: main)" in (
        port.nodes["n"].error.message
    )
    other = await run_one(registry, "test/liar", "other")
    assert other.nodes["n"].error is not None
    assert "answered request 'other' while" in other.nodes["n"].error.message


async def test_log_lines_keep_their_level_and_an_unknown_level_counts_as_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw_block(
        tmp_path / "blocks",
        "chatty",
        "for level in ('debug', 'warning', 'error', 'shouting'):\n"
        "    print(json.dumps({'id': request['id'], 'log': level, 'level': level}), flush=True)\n"
        "reply('done')",
    )
    caplog.set_level(logging.DEBUG, logger="conv3n.node")
    record = await run_one(registry_of(tmp_path / "blocks"), "test/chatty")
    assert record.output == "done"
    levels = [(r.getMessage(), r.levelname) for r in caplog.records if r.name == "conv3n.node.n"]
    assert levels == [
        ("debug", "DEBUG"),
        ("warning", "WARNING"),
        ("error", "ERROR"),
        ("shouting", "INFO"),
    ]


async def test_a_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    folder = raw_block(tmp_path / "blocks", "ghost", "reply(1)")
    manifest = json.loads((folder / "block.json").read_text())
    manifest["command"] = ["./no-such-program"]
    (folder / "block.json").write_text(json.dumps(manifest))
    record = await run_one(registry_of(tmp_path / "blocks"), "test/ghost")
    error = record.nodes["n"].error
    assert error is not None
    assert error.message == (
        f"test/ghost: the process cannot be started: the program "
        f"{str(folder.resolve() / 'no-such-program')!r} was not found"
    )


async def test_the_child_sees_only_plumbing_variables_and_its_manifest_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONV3N_SECRET_KEY", "top-secret")
    raw_block(
        tmp_path / "blocks", "env", "reply(dict(os.environ))", env={"GREETING": "hi ${BLOCK_DIR}"}
    )
    record = await run_one(registry_of(tmp_path / "blocks"), "test/env")
    seen = record.output
    assert isinstance(seen, dict)
    assert "CONV3N_SECRET_KEY" not in seen
    assert seen["GREETING"] == f"hi {(tmp_path / 'blocks' / 'env').resolve()}"
    assert seen["CONV3N_BLOCK_TYPE"] == "test/env"


async def test_the_nodes_own_timeout_kills_the_worker_mid_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw_block(
        tmp_path / "blocks",
        "slow",
        "print(json.dumps({'id': request['id'], 'log': str(os.getpid())}), flush=True)\n"
        "import time; time.sleep(60)",
        pool_size=1,
    )
    caplog.set_level(logging.INFO, logger="conv3n.node")
    registry = registry_of(tmp_path / "blocks")
    record = await run_warmed(registry, "test/slow", timeout_ms=300)
    error = record.nodes["n"].error
    assert error is not None
    assert error.type == "timeout"  # the node's own timeout, shorter than the manifest's
    pid = int(next(r.getMessage() for r in caplog.records if r.name == "conv3n.node.n"))
    assert dead(pid)
