"""custom/code in JavaScript and TypeScript on real Bun and Node worker processes.

The tests share one engine (and so one set of worker pools) per module, as a server does.
Bun comes from `make tools` (.tools/) or PATH: without it the Bun cases skip locally and fail
in CI.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio

from conv3n.blocks.custom.js import npm, runtime
from conv3n.blocks.custom.js.worker import WORKER_ENV
from conv3n.engine import Engine, EngineOptions
from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON, NodeRecord
from conv3n.testing import run_block, run_workflow
from tests.blocks.conftest import literal
from tests.conftest import IN_CI

pytestmark = pytest.mark.asyncio(loop_scope="module")

RUNTIMES = ["node", "bun"]


def require_runtime(name: str) -> None:
    """Skip locally, fail in CI, when a runtime is missing."""
    found = runtime.find_bun() if name == "bun" else runtime.find_node()
    if found is not None:
        return
    message = f"{name} is not installed (`make tools` installs Bun into .tools/)"
    if IN_CI:
        pytest.fail(message + " (CI must have it)")
    pytest.skip(message)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Engine]:
    options = EngineOptions(cache_dir=tmp_path_factory.mktemp("cache"))
    async with Engine(options=options) as shared:
        yield shared


@pytest.fixture(params=RUNTIMES)
def js_runtime(request: pytest.FixtureRequest) -> str:
    require_runtime(request.param)
    return str(request.param)


async def run_js(
    engine: Engine, code: str, *, input: JSON = None, language: str = "javascript", **config: Any
) -> NodeRecord:
    settings: dict[str, JSON] = {"language": language, "code": literal(code), **config}
    return await run_block("custom/code", settings, input=input, engine=engine)


async def process_ends(pid: int, within_s: float = 5.0) -> bool:
    """Whether the process is gone (or a zombie) within `within_s`: SIGKILL is asynchronous."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        await asyncio.sleep(0.01)
    return False


def error_of(record: NodeRecord) -> tuple[str, dict[str, Any]]:
    assert record.status == "error", record.data
    assert record.error is not None
    return record.error.message, dict(record.error.details or {})


async def test_main_sees_input_earlier_nodes_and_vars(engine: Engine, js_runtime: str):
    code = (
        "export default function main(ctx) {\n"
        "  return {input: ctx.input, set: ctx.node.remember.data, vars: ctx.vars};\n"
        "}\n"
    )
    document = {
        "nodes": [
            {"id": "remember", "type": "std/set", "config": {"values": {"city": "Oslo"}}},
            {
                "id": "code",
                "type": "custom/code",
                "config": {"language": "javascript", "runtime": js_runtime, "code": code},
            },
        ],
        "connections": [{"from": "remember", "to": "code"}],
    }
    record = await run_workflow(document, {"n": 1}, engine=engine)
    assert record.status == "success", record.error
    assert record.output == {"input": {"n": 1}, "set": {"city": "Oslo"},
                             "vars": {"city": "Oslo"}}  # fmt: skip


async def test_changes_to_ctx_vars_are_written_back_to_vars(engine: Engine, js_runtime: str):
    code = (
        "export default function main(ctx) {\n"
        "  ctx.vars.total = (ctx.vars.total ?? 0) + 5;\n"
        "  delete ctx.vars.drop;\n"
        "  return ctx.execution_id.length > 0 && ctx.node_id === 'code';\n"
        "}\n"
    )
    document = {
        "nodes": [
            {"id": "seed", "type": "std/set", "config": {"values": {"total": 1, "drop": True}}},
            {"id": "code", "type": "custom/code",
             "config": {"language": "javascript", "runtime": js_runtime, "code": code}},
            {"id": "after", "type": "std/transform", "config": {"template": "{{ $vars }}"}},
        ],
        "connections": [{"from": "seed", "to": "code"}, {"from": "code", "to": "after"}],
    }  # fmt: skip
    record = await run_workflow(document, engine=engine)
    assert record.status == "success", record.error
    assert record.nodes["code"].data is True
    assert record.output == {"total": 6}


async def test_vars_left_holding_a_non_json_value_fail_the_node(engine: Engine):
    code = "export default function main(ctx) { ctx.vars.when = () => 1; return 1; }"
    message, _ = error_of(await run_js(engine, code))
    assert message == "ctx.vars holds a value that is not JSON: a function at $.when"


async def test_async_main_is_awaited(engine: Engine, js_runtime: str):
    code = (
        "export default async function main(ctx) {\n"
        "  await new Promise((resolve) => setTimeout(resolve, 5));\n"
        "  return ctx.input.a * 2;\n"
        "}\n"
    )
    record = await run_js(engine, code, input={"a": 21}, runtime=js_runtime)
    assert record.status == "success", record.error
    assert record.data == 42


async def test_undefined_return_is_null(engine: Engine, js_runtime: str):
    record = await run_js(engine, "export default function main() {}", runtime=js_runtime)
    assert record.status == "success", record.error
    assert record.data is None


async def test_typescript_runs_on_bun(engine: Engine):
    require_runtime("bun")
    code = (
        "interface Order { qty: number; price: number }\n"
        "export default function main(ctx: { input: Order }): number {\n"
        "  const total: number = ctx.input.qty * ctx.input.price;\n"
        "  return total;\n"
        "}\n"
    )
    record = await run_js(engine, code, input={"qty": 3, "price": 5}, language="typescript")
    assert record.status == "success", record.error
    assert record.data == 15


async def test_typescript_error_lines_are_those_of_the_typescript_source(engine: Engine):
    require_runtime("bun")
    code = (
        "type T = { a: number };\n"
        "\n"
        "export default function main(ctx: T): never {\n"
        "  throw new Error('typed ' + ctx.a);\n"
        "}\n"
    )
    message, details = error_of(await run_js(engine, code, language="typescript"))
    # Bun points at the call of `Error`, Node at `new`
    assert message == "main() threw Error: typed undefined at line 4, column 13"
    assert details["stack"].splitlines()[1].strip() == "at main (code.ts:4:13)"


async def test_typescript_on_node_before_22_6_is_refused_clearly(engine: Engine):
    node = runtime.find_node()
    if node is None or node.runs_typescript:
        pytest.skip("needs a Node older than 22.6")
    record = await run_js(engine, "export default () => 1", language="typescript", runtime="node")
    message, _ = error_of(record)
    assert message.startswith("TypeScript needs Bun or Node 22.6 or later")


async def test_console_output_is_logged_and_kept_in_error_details(
    engine: Engine, js_runtime: str, caplog: pytest.LogCaptureFixture
):
    code = (
        "export default function main(ctx) {\n"
        "  console.log('step', 1, {a: [1]});\n"
        "  console.warn('careful');\n"
        "  process.stdout.write('raw\\n');\n"
        "  if (ctx.input) throw new TypeError('stop');\n"
        "  return 'ok';\n"
        "}\n"
    )
    with caplog.at_level(logging.INFO, logger="conv3n.node"):
        record = await run_js(engine, code, runtime=js_runtime)
    assert record.data == "ok"
    logged = [
        (r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("conv3n.node")
    ]
    assert logged == [
        (logging.INFO, "console.log: step 1 { a: [ 1 ] }"),
        (logging.WARNING, "console.warn: careful"),
        (logging.INFO, "console.log: raw"),
    ]
    message, details = error_of(await run_js(engine, code, input=True, runtime=js_runtime))
    column = 28 if js_runtime == "bun" else 24
    assert message == f"main() threw TypeError: stop at line 5, column {column}"
    assert details["console"] == ["step 1 { a: [ 1 ] }", "careful", "raw"]


async def test_thrown_error_carries_the_user_stack_without_worker_frames(
    engine: Engine, js_runtime: str
):
    code = (
        "function inner(value) {\n"
        "  throw new RangeError(`bad value ${value}`);\n"
        "}\n"
        "\n"
        "export default function main(ctx) {\n"
        "  // not `return inner(...)`: Bun (JavaScriptCore) drops the frames of tail calls\n"
        "  return {result: inner(ctx.input)};\n"
        "}\n"
    )
    message, details = error_of(await run_js(engine, code, input=7, runtime=js_runtime))
    # Bun points at the call of `RangeError`, Node at `new`
    column = 13 if js_runtime == "bun" else 9
    assert message == f"main() threw RangeError: bad value 7 at line 2, column {column}"
    assert (details["line"], details["column"]) == (2, column)
    frames = [line.strip() for line in details["stack"].splitlines()[1:]]
    assert frames == [f"at inner (code.js:2:{column})", "at main (code.js:7:19)"]
    assert "worker.mjs" not in details["stack"]
    assert details["runtime"].startswith(js_runtime)


async def test_throwing_a_non_error_value_is_reported(engine: Engine, js_runtime: str):
    code = "export default function main() { throw {code: 42}; }"
    message, _ = error_of(await run_js(engine, code, runtime=js_runtime))
    assert message == "main() threw a non-Error value: { code: 42 }"


async def test_syntax_error_names_line_and_column(engine: Engine, js_runtime: str):
    code = "export default function main(ctx) {\n  const x = 1;\n  return x +* 2;\n}\n"
    message, details = error_of(await run_js(engine, code, runtime=js_runtime))
    assert message.startswith("the code does not parse at line 3, column ")
    assert details["kind"] == "syntax"
    assert details["line"] == 3
    assert details["column"] in (12, 13)  # Node marks the `*`, Bun the token after it
    assert details["source"] == "  return x +* 2;"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("export function main() { return 1 }", "the code has no default export"),
        ("export default 42", "the code has a default export that is a number"),
    ],
)
async def test_code_without_a_default_function_is_refused(
    engine: Engine, js_runtime: str, code: str, expected: str
):
    message, details = error_of(await run_js(engine, code, runtime=js_runtime))
    assert message.startswith(expected)
    assert "export default function main(ctx)" in message
    assert details["kind"] == "export"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("return {n: 10n}", "a BigInt at $.n"),
        ("return [1, () => 2]", "a function at $[1]"),
        ("const a = {}; a.self = a; return {a}", "a cycle at $.a.self"),
        ("return {'a b': new Map()}", 'a Map at $["a b"]'),
        ("return {x: NaN}", "NaN at $.x is not a JSON number"),
        ("return {p: Promise.resolve(1)}", "a Promise at $.p (await it first)"),
        ("return new Uint8Array(2)", "a Uint8Array at $"),
    ],
)
async def test_non_json_return_value_is_refused_with_its_place(
    engine: Engine, body: str, expected: str
):
    code = f"export default function main() {{ {body} }}"
    message, details = error_of(await run_js(engine, code))
    assert message.startswith("main() returned a value that is not JSON: ")
    assert expected in message
    assert details["kind"] == "result"


async def test_dates_and_nested_undefined_follow_json_rules(engine: Engine, js_runtime: str):
    code = (
        "export default () => ({when: new Date(Date.UTC(2030, 0, 2)), gone: undefined, "
        "list: [undefined, 1]})"
    )
    record = await run_js(engine, code, runtime=js_runtime)
    assert record.data == {"when": "2030-01-02T00:00:00.000Z", "list": [None, 1]}


async def test_calls_do_not_share_module_state_globals_or_timers(engine: Engine, js_runtime: str):
    code = (
        "let calls = 0;\n"
        "export default function main() {\n"
        "  calls += 1;\n"
        "  const seen = {calls, marker: globalThis.marker ?? null, ticks: globalThis.ticks ?? 0};\n"
        "  globalThis.marker = 'left behind';\n"
        "  setInterval(() => { globalThis.ticks = (globalThis.ticks ?? 0) + 1; }, 1);\n"
        "  return {pid: process.pid, ...seen};\n"
        "}\n"
    )
    results = [(await run_js(engine, code, runtime=js_runtime)).data for _ in range(8)]
    assert all(isinstance(r, dict) for r in results)
    assert [(r["calls"], r["marker"], r["ticks"]) for r in results] == [(1, None, 0)] * 8
    pids = [r["pid"] for r in results]
    assert len(set(pids)) < len(pids), "the same worker serves several calls"


async def test_changed_built_ins_reach_no_later_call(engine: Engine, js_runtime: str):
    code = (
        "export default function main() {\n"
        "  const seen = [[].evil ?? null, typeof JSON.evil];\n"
        "  Array.prototype.evil = 'polluted';\n"
        "  JSON.evil = () => 1;\n"
        "  return seen;\n"
        "}\n"
    )
    results = [(await run_js(engine, code, runtime=js_runtime)).data for _ in range(6)]
    assert results == [[None, "undefined"]] * 6


async def test_everyday_code_keeps_its_worker(engine: Engine, js_runtime: str):
    """Using built-ins (some of them made lazily) is no change that retires the worker."""
    code = (
        "import crypto from 'node:crypto';\n"
        "export default async function main() {\n"
        "  console.log(new Date().toISOString(), Math.random(), JSON.stringify({a: 1}));\n"
        "  Buffer.from('hi'); new TextEncoder().encode('x'); structuredClone({a: 1});\n"
        "  crypto.randomUUID(); typeof fetch; new URL('http://x/'); performance.now();\n"
        "  await Promise.all([1, 2]); new Map([[1, 2]]); Object.entries({a: 1});\n"
        "  try { JSON.parse('{'); } catch (error) { error.stack; }\n"
        "  await new Promise((resolve) => setTimeout(resolve, 1));\n"
        "  return process.pid;\n"
        "}\n"
    )
    pids = [(await run_js(engine, code, runtime=js_runtime)).data for _ in range(8)]
    assert all(isinstance(pid, int) for pid in pids)
    assert len(set(pids)) < len(pids), "workers serve several calls"


async def test_a_throwing_to_json_is_reported_as_the_codes_error(engine: Engine, js_runtime: str):
    code = "export default () => ({toJSON() { throw new Error('no json'); }})"
    message, _ = error_of(await run_js(engine, code, runtime=js_runtime))
    assert message.startswith("main() threw Error: no json")


async def test_integers_beyond_64_bits_arrive_as_numbers(engine: Engine):
    record = await run_js(engine, "export default (ctx) => typeof ctx.input.n", input={"n": 2**70})
    assert record.data == "number"


async def test_input_json_cannot_carry_is_refused_before_the_code_runs(engine: Engine):
    record = await run_js(engine, "export default () => 1", input={"n": 2**70, "x": float("nan")})
    message, _ = error_of(record)
    assert message.startswith("the node's input cannot be sent to the code: ")


async def test_worker_sees_none_of_the_servers_environment(engine: Engine, js_runtime: str):
    record = await run_js(
        engine, "export default () => Object.keys(process.env)", runtime=js_runtime
    )
    assert record.status == "success", record.error
    assert isinstance(record.data, list)
    assert set(record.data) <= set(WORKER_ENV) | {"PWD", "SHLVL", "_", "OLDPWD"}


@pytest.mark.slow
async def test_infinite_loop_is_killed_and_the_pool_keeps_working(engine: Engine, js_runtime: str):
    record = await run_js(
        engine, "export default function main() { for (;;) {} }", runtime=js_runtime, timeout_ms=300
    )
    message, details = error_of(record)
    assert message == "main() did not finish within 300 ms; the worker was stopped"
    assert details["kind"] == "timeout"
    assert details["runtime"].startswith(js_runtime)
    again = await run_js(engine, "export default () => 'alive'", runtime=js_runtime)
    assert again.data == "alive"


@pytest.mark.slow
async def test_a_killed_worker_takes_the_processes_it_started_with_it(
    engine: Engine, js_runtime: str, tmp_path: Path
):
    pid_file = tmp_path / "child"
    code = (
        "import fs from 'node:fs';\n"
        "import { spawn } from 'node:child_process';\n"
        "export default () => {\n"
        "  const child = spawn('/bin/sleep', ['60'], { stdio: 'ignore' });\n"
        f"  fs.writeFileSync({json.dumps(str(pid_file))}, String(child.pid));\n"
        "  for (;;) {}\n"
        "};\n"
    )
    message, _ = error_of(await run_js(engine, code, runtime=js_runtime, timeout_ms=1000))
    assert message.startswith("main() did not finish within 1000 ms")
    assert await process_ends(int(pid_file.read_text()))


@pytest.mark.slow
async def test_memory_hog_is_stopped_at_the_memory_limit(engine: Engine, js_runtime: str):
    code = (
        "export default function main() {\n"
        "  const keep = [];\n"
        "  for (;;) keep.push(new Array(100000).fill(keep.length));\n"
        "}\n"
    )
    record = await run_js(engine, code, runtime=js_runtime, memory_mb=64, timeout_ms=30_000)
    message, details = error_of(record)
    assert message == (
        "the code used more than its memory limit of 64 MB (config.memory_mb); "
        "the worker was stopped"
    )
    assert details["kind"] == "memory"
    again = await run_js(engine, "export default () => 1", runtime=js_runtime, memory_mb=64)
    assert again.data == 1


async def test_process_exit_fails_the_node_and_the_worker_is_replaced(
    engine: Engine, js_runtime: str
):
    code = "export default function main() { console.log('bye'); process.exit(3); }"
    message, details = error_of(await run_js(engine, code, runtime=js_runtime))
    assert message == (
        "the code ended the worker process with process.exit(3); the worker was stopped"
    )
    assert details["exit_code"] == 3
    assert details["console"] == ["bye"]
    again = await run_js(engine, "export default () => 2", runtime=js_runtime)
    assert again.data == 2


async def test_a_worker_killed_from_outside_is_a_clear_error(engine: Engine, js_runtime: str):
    code = "export default function main() { process.kill(process.pid, 'SIGKILL'); }"
    message, details = error_of(await run_js(engine, code, runtime=js_runtime))
    assert "worker died during the call (signal 9)" in message
    assert details["kind"] == "crash"


async def test_garbage_written_to_the_protocol_stream_is_a_clear_error(
    engine: Engine, js_runtime: str
):
    code = (
        "import fs from 'node:fs';\n"
        "export default () => { fs.writeSync(1, 'not json\\n'); return 1; };\n"
    )
    message, details = error_of(await run_js(engine, code, runtime=js_runtime))
    assert "sent something that is not a reply" in message
    assert details["kind"] == "crash"
    again = await run_js(engine, "export default () => 3", runtime=js_runtime)
    assert again.data == 3


async def test_an_error_thrown_in_a_callback_fails_the_call(engine: Engine, js_runtime: str):
    code = (
        "export default function main() {\n"
        "  setTimeout(() => { throw new Error('late'); }, 1);\n"
        "  return new Promise(() => {});\n"
        "}\n"
    )
    record = await run_js(engine, code, runtime=js_runtime, timeout_ms=5000)
    message, details = error_of(record)
    assert message.startswith("main() threw Error: late at line 2")
    assert "code.js:2:" in details["stack"]


@pytest.mark.slow
async def test_node_timeout_cancels_the_call_and_kills_its_worker(
    engine: Engine, js_runtime: str, tmp_path: Path
):
    pid_file = tmp_path / "pid"
    code = (
        "import fs from 'node:fs';\n"
        f"export default () => {{ fs.writeFileSync({json.dumps(str(pid_file))}, "
        "String(process.pid)); for (;;) {} };\n"
    )
    settings: dict[str, JSON] = {"language": "javascript", "runtime": js_runtime, "code": code}
    assert (await run_js(engine, "export default () => 0", runtime=js_runtime)).data == 0
    record = await run_block("custom/code", settings, engine=engine, timeout_ms=1000)
    assert record.status == "error"
    assert record.error is not None
    assert record.error.type == "timeout"
    assert await process_ends(int(pid_file.read_text()))

    again = await run_js(engine, "export default () => 4", runtime=js_runtime)
    assert again.data == 4


@pytest.mark.slow
async def test_fifty_megabytes_of_output_come_back_whole(engine: Engine, js_runtime: str):
    code = "export default (ctx) => ({text: 'x'.repeat(50 * 1024 * 1024), echo: ctx.input})"
    big_input = {"blob": "é" * 1_000_000}
    record = await run_js(engine, code, input=big_input, runtime=js_runtime)
    assert record.status == "success", record.error
    assert isinstance(record.data, dict)
    assert record.data["echo"] == big_input
    assert len(record.data["text"]) == 50 * 1024 * 1024


@pytest.mark.slow
async def test_twenty_concurrent_calls_each_get_their_own_answer(engine: Engine, js_runtime: str):
    code = (
        "export default async (ctx) => {\n"
        "  await new Promise((resolve) => setTimeout(resolve, 10));\n"
        "  return ctx.input * 10;\n"
        "}\n"
    )
    records = await asyncio.gather(
        *(run_js(engine, code, input=i, runtime=js_runtime) for i in range(20))
    )
    assert [r.data for r in records] == [i * 10 for i in range(20)]


@pytest.mark.slow
async def test_npm_package_from_a_local_folder_is_installed_once_and_imported(
    engine: Engine, js_runtime: str, tmp_path: Path
):
    package = tmp_path / "shout"
    package.mkdir()
    manifest = {"name": "conv3n-test-shout", "version": "1.0.0", "type": "module",
                "main": "index.js"}  # fmt: skip
    (package / "package.json").write_text(json.dumps(manifest))
    (package / "index.js").write_text("export default (s) => s.toUpperCase() + '!';\n")
    code = "import shout from 'conv3n-test-shout';\nexport default (ctx) => shout(ctx.input);\n"
    requirements: list[JSON] = [f"file:{package}"]
    firsts = await asyncio.gather(
        *(run_js(engine, code, input=w, runtime=js_runtime, requirements=requirements)
          for w in ("hi", "ho", "ha"))
    )  # fmt: skip
    assert [r.data for r in firsts] == ["HI!", "HO!", "HA!"], [r.error for r in firsts]
    second = await run_js(engine, code, input="yo", runtime=js_runtime, requirements=requirements)
    assert second.data == "YO!"
    assert engine.options.cache_dir is not None
    npm_dir = engine.options.cache_dir / "npm"
    key = npm.digest([str(spec) for spec in requirements])
    assert (npm_dir / key / "node_modules" / "conv3n-test-shout" / "index.js").is_file()
    leftovers = [p.name for p in npm_dir.iterdir() if p.name.startswith(f".{key}")]
    assert leftovers == [], "no staging folder left behind"


async def test_an_install_finished_second_gives_way_to_the_first(tmp_path: Path):
    target, staging = tmp_path / "abc", tmp_path / ".abc.tmp"
    for folder in (target, staging):
        (folder / "node_modules").mkdir(parents=True)
    (target / "node_modules" / "first").touch()
    (target / ".conv3n-complete").touch()
    npm._publish(staging, target)
    assert not staging.exists()
    assert (target / "node_modules" / "first").exists()


async def test_importing_a_package_that_is_not_installed_fails_clearly(
    engine: Engine, js_runtime: str
):
    code = "import x from 'conv3n-no-such-package';\nexport default () => x;\n"
    message, _ = error_of(await run_js(engine, code, runtime=js_runtime))
    assert "conv3n-no-such-package" in message


@pytest.mark.parametrize("spec", ["--global", "left-pad; rm -rf /", "a\nb", "", "x" * 600])
async def test_malformed_requirement_is_refused_naming_its_place(engine: Engine, spec: str):
    record = await run_js(engine, "export default () => 1", requirements=["ok-name", spec])
    message, _ = error_of(record)
    assert message.startswith("config.requirements[1] ")


async def test_unknown_runtime_is_refused_by_config_validation(engine: Engine):
    with pytest.raises(WorkflowInvalid, match=r"nodes\[0\]\.config\.runtime"):
        await run_js(engine, "export default () => 1", runtime="deno")
