"""custom/code in Python through the real engine: real worker processes, real limits."""

import asyncio
import base64
import hashlib
import logging
import sys
import textwrap
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conv3n.blocks.custom import python as code_python
from conv3n.blocks.custom.sandbox import envs, limits, pool
from conv3n.engine import Engine, EngineOptions
from conv3n.model import JSON, NodeRecord, NodeStatus
from conv3n.testing import run_block, run_workflow

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """One engine (so one worker pool) per test, with its own cache folder."""
    async with Engine(options=EngineOptions(cache_dir=tmp_path / "cache")) as own:
        yield own


def _pool(engine: Engine) -> pool.WorkerPool:
    return engine.shared(code_python.SHARED_KEY, lambda: pool.WorkerPool())


async def _run(engine: Engine, code: str, input: JSON = None, **config: JSON) -> NodeRecord:
    source = textwrap.dedent(code)
    return await run_block("custom/code", {"code": source, **config}, input=input, engine=engine)


def _error(record: NodeRecord) -> tuple[str, str, dict[str, JSON]]:
    assert record.status is NodeStatus.ERROR, record
    assert record.error is not None
    return record.error.type, record.error.message, record.error.details


# --- the contract ----------------------------------------------------------------------------


async def test_sync_main_gets_the_input_and_returns_the_data(engine: Engine) -> None:
    record = await _run(
        engine, "def main(ctx):\n    return {'double': ctx.input['n'] * 2}", {"n": 21}
    )
    assert record.status is NodeStatus.SUCCESS
    assert record.data == {"double": 42}


async def test_async_main_is_run_to_completion(engine: Engine) -> None:
    code = """
        import asyncio

        async def main(ctx):
            await asyncio.sleep(0.001)
            return [ctx.input, "async"]
    """
    record = await _run(engine, code, "in")
    assert record.data == ["in", "async"]


async def test_ctx_holds_node_views_vars_ids_and_writes_vars_back(engine: Engine) -> None:
    code = """
        def main(ctx):
            ctx.vars["seen"] = ctx.vars["start"] + 1
            return {
                "upstream": ctx.node["first"]["data"],
                "status": ctx.node["first"]["status"],
                "input": ctx.input,
                "inputs": ctx.inputs,
                "execution_id": ctx.execution_id,
                "node_id": ctx.node_id,
            }
    """
    document = {
        "nodes": [
            {"id": "first", "type": "std/set", "config": {"values": {"start": 1}}},
            {"id": "code", "type": "custom/code", "config": {"code": textwrap.dedent(code)}},
            {"id": "after", "type": "std/transform", "config": {"template": "{{ $vars.seen }}"}},
        ],
        "connections": [{"from": "first", "to": "code"}, {"from": "code", "to": "after"}],
    }
    record = await run_workflow(document, {"order": 7}, engine=engine)
    data = record.nodes["code"].data
    assert isinstance(data, dict)
    assert data["status"] == "success"
    assert data["upstream"] == record.nodes["first"].data
    assert data["input"] == {"order": 7}  # SPEC §4: what $input holds
    assert data["inputs"] == {"first": {"start": 1}}
    assert data["execution_id"] == record.execution_id
    assert data["node_id"] == "code"
    assert record.nodes["after"].data == 2
    assert record.nodes["code"].effects == {"vars": {"seen": 2}}


async def test_braces_in_the_code_are_python_not_expressions(engine: Engine) -> None:
    record = await _run(engine, "def main(ctx):\n    x = 3\n    return f'{{x}} {x}' + str({})")
    assert record.data == "{x} 3{}"


async def test_print_output_is_logged_on_success(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    code = "import sys\ndef main(ctx):\n    print('hello', 1)\n    print('oops', file=sys.stderr)"
    with caplog.at_level(logging.INFO, logger="conv3n.node"):
        record = await _run(engine, code)
    assert record.status is NodeStatus.SUCCESS
    assert record.data is None
    assert "hello 1\noops\n" in caplog.text


async def test_print_output_is_kept_in_the_error_details(engine: Engine) -> None:
    _, _, details = _error(await _run(engine, "def main(ctx):\n    print('before')\n    1 / 0"))
    assert details["output"] == "before\n"


async def test_output_written_to_the_file_descriptors_is_captured_too(engine: Engine) -> None:
    code = """
        import os

        def main(ctx):
            os.write(1, "é1\\n".encode())
            os.write(2, b"2\\n")
            raise ValueError
    """
    _, _, details = _error(await _run(engine, code))
    assert details["output"] == "é1\n2\n"


async def test_replacing_ctx_vars_with_a_non_dict_is_refused(engine: Engine) -> None:
    _, message, _ = _error(await _run(engine, "def main(ctx):\n    ctx.vars = [1]"))
    assert message == "ctx.vars must stay a dict, the code left a list"


async def test_output_past_one_megabyte_is_cut_with_a_marker(engine: Engine) -> None:
    code = (
        "def main(ctx):\n    for _ in range(3000):\n        print('x' * 1000)\n    raise ValueError"
    )
    _, _, details = _error(await _run(engine, code))
    output = details["output"]
    assert isinstance(output, str)
    assert details["output_truncated"] is True
    assert "[output truncated" in output
    assert len(output) < code_python.MAX_OUTPUT_BYTES + 1000


# --- user errors -----------------------------------------------------------------------------


async def test_exception_carries_the_users_traceback_and_line(engine: Engine) -> None:
    code = """
        def helper(value):
            return value["missing"]

        def main(ctx):
            return helper({})
    """
    kind, message, details = _error(await _run(engine, code))
    assert kind == "block_error"
    assert message == "KeyError: 'missing' (line 3, in helper)"
    assert details["type"] == "KeyError"
    trace = details["traceback"]
    assert isinstance(trace, str)
    assert 'File "<code>", line 6, in main' in trace
    assert 'File "<code>", line 3, in helper' in trace
    assert 'return value["missing"]' in trace
    assert "call.py" not in trace
    assert "worker.py" not in trace
    frames = details["frames"]
    assert isinstance(frames, list)
    assert [frame["line"] for frame in frames if isinstance(frame, dict)] == [6, 3]


async def test_syntax_error_names_line_column_and_text(engine: Engine) -> None:
    _, message, details = _error(await _run(engine, "def main(ctx):\n    return (1 +\n"))
    assert message.startswith("SyntaxError in the code at line 2, column 12")
    assert details["line"] == 2
    assert details["text"] == "    return (1 +"


async def test_code_with_nul_bytes_fails_as_a_syntax_error(engine: Engine) -> None:
    _, message, _ = _error(await _run(engine, "def main(ctx):\n    return 1\0"))
    assert "cannot be compiled" in message or "SyntaxError" in message


@pytest.mark.parametrize(
    ("code", "found"),
    [("x = 1", "`main` is missing"), ("main = 3", "`main` is not a function")],
)
async def test_code_without_a_main_function_is_refused(
    engine: Engine, code: str, found: str
) -> None:
    _, message, _ = _error(await _run(engine, code))
    assert message.startswith(found)


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("{'items': [1, {2, 3}]}", "set at result.items[1]"),
        ("{'x': float('nan')}", "float nan at result.x"),
        ("[b'raw']", "bytes at result[0]"),
        ("{'a b': object()}", 'object at result["a b"]'),
        ("{(1, 2): 1}", "key of type tuple at result[(1, 2)]"),
    ],
)
async def test_a_non_json_result_names_the_type_and_path(
    engine: Engine, value: str, found: str
) -> None:
    _, message, details = _error(await _run(engine, f"def main(ctx):\n    return {value}"))
    assert message == f"main returned a value JSON cannot hold: {found}"
    assert details["kind"] == "not_json"


async def test_sys_exit_in_user_code_is_an_error_not_a_crash(engine: Engine) -> None:
    _, message, _ = _error(await _run(engine, "import sys\ndef main(ctx):\n    sys.exit(3)"))
    assert message == "the code called exit(3)"


# --- limits ----------------------------------------------------------------------------------


async def test_infinite_loop_is_killed_at_timeout_and_the_pool_keeps_working(
    engine: Engine,
) -> None:
    kind, message, details = _error(
        await _run(engine, "def main(ctx):\n    while True:\n        pass", timeout_ms=200)
    )
    assert kind == "timeout"
    assert "timeout_ms=200 ms" in message
    assert details["limit"] == "timeout_ms"
    record = await _run(engine, "def main(ctx):\n    return 'next'")
    assert record.data == "next"
    assert _pool(engine).started == 1  # the warm worker survived; only the call was killed


async def test_engine_timeout_kills_the_worker_and_a_new_one_takes_over(engine: Engine) -> None:
    assert (await _run(engine, "def main(ctx):\n    return 1")).data == 1  # a warm worker
    code = "def main(ctx):\n    while True:\n        pass"
    config = {"code": code, "timeout_ms": 60_000}
    record = await run_block("custom/code", config, timeout_ms=200, engine=engine)
    assert record.error is not None
    assert record.error.type == "timeout"
    assert (await _run(engine, "def main(ctx):\n    return 2")).data == 2
    assert _pool(engine).started == 2


async def test_memory_hog_hits_memory_mb(engine: Engine) -> None:
    code = "def main(ctx):\n    hog = []\n    while True:\n        hog.append(bytearray(1 << 20))"
    _, message, details = _error(await _run(engine, code, memory_mb=64))
    assert message == "the code exceeded memory_mb=64 (MemoryError)"
    assert details["limit"] == "memory_mb"
    assert (
        await _run(engine, "def main(ctx):\n    return len(bytearray(32 << 20))")
    ).data == 32 << 20


async def test_encoding_a_result_too_big_for_memory_mb_is_a_memory_error(engine: Engine) -> None:
    record = await _run(engine, "def main(ctx):\n    return ['q' * 10_000_000] * 6", memory_mb=40)
    _, message, _ = _error(record)
    assert message == "the code exceeded memory_mb=40 (MemoryError)"


@pytest.mark.slow
async def test_cpu_hog_hits_the_cpu_limit(engine: Engine) -> None:
    code = "def main(ctx):\n    while True:\n        pass"
    _, message, details = _error(await _run(engine, code, cpu_ms=1000, timeout_ms=20_000))
    assert message.startswith("the code used more than its CPU time limit of 1 s")
    assert details["limit"] == "cpu_ms"


async def test_fork_bomb_is_contained(engine: Engine) -> None:
    code = "import os\ndef main(ctx):\n    while True:\n        os.fork()"
    _, message, _ = _error(await _run(engine, code))
    assert message.startswith("PermissionError: [Errno 1] Operation not permitted (line 4")
    assert (await _run(engine, "def main(ctx):\n    return 'alive'")).data == "alive"


async def test_subprocesses_are_refused_but_threads_work(engine: Engine) -> None:
    code = """
        import subprocess, threading

        def main(ctx):
            box = []
            thread = threading.Thread(target=lambda: box.append("thread"))
            thread.start()
            thread.join()
            try:
                subprocess.run(["true"])
            except OSError as exc:
                box.append(type(exc).__name__)
            return box
    """
    assert (await _run(engine, code)).data == ["thread", "PermissionError"]


@pytest.mark.parametrize(
    ("code", "found"),
    [
        ("import os\ndef main(ctx):\n    print('bye')\n    os._exit(7)", "exited with status 7"),
        ("import ctypes\ndef main(ctx):\n    ctypes.string_at(0)", "died from SIGSEGV"),
    ],
)
async def test_a_dying_call_process_gives_a_clear_error_and_the_next_call_works(
    engine: Engine, code: str, found: str
) -> None:
    _, message, details = _error(await _run(engine, code))
    assert found in message
    assert (await _run(engine, "def main(ctx):\n    return 'ok'")).data == "ok"
    if "bye" in code:
        assert details["output"] == "bye\n"


async def test_a_killed_worker_is_replaced(engine: Engine) -> None:
    assert (await _run(engine, "def main(ctx):\n    return 1")).data == 1
    workers = _pool(engine)
    [worker] = workers.workers
    await worker.kill()
    assert (await _run(engine, "def main(ctx):\n    return 2")).data == 2
    assert workers.started == 2


async def test_code_killing_its_worker_fails_retryably_and_the_worker_is_replaced(
    engine: Engine,
) -> None:
    code = "import os, signal\ndef main(ctx):\n    os.kill(os.getppid(), signal.SIGKILL)"
    record = await _run(engine, code)
    _, message, _ = _error(record)
    assert message.startswith("the Python worker failed: the worker process ended")
    assert record.error is not None
    assert (await _run(engine, "def main(ctx):\n    return 3")).data == 3
    assert _pool(engine).started == 2


async def test_server_environment_is_not_visible_to_user_code(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONV3N_SECRET_KEY", "do-not-leak")
    record = await _run(engine, "import os\ndef main(ctx):\n    return sorted(os.environ)")
    assert isinstance(record.data, list)
    assert "CONV3N_SECRET_KEY" not in record.data


# --- size, concurrency, isolation ------------------------------------------------------------


@pytest.mark.slow
async def test_fifty_megabyte_result_round_trips(engine: Engine) -> None:
    record = await _run(engine, "def main(ctx):\n    return ['y' * 1_000_000] * 50")
    assert isinstance(record.data, list)
    assert len(record.data) == 50
    assert all(len(item) == 1_000_000 for item in record.data)


@pytest.mark.slow
async def test_result_past_the_size_limit_fails_clearly(engine: Engine) -> None:
    record = await _run(engine, "def main(ctx):\n    return 'z' * 70_000_000", memory_mb=1024)
    _, message, details = _error(record)
    assert message == "main returned 66.8 MiB of JSON, more than the limit of 64 MiB"
    assert details["kind"] == "too_large"


async def test_large_input_reaches_the_code(engine: Engine) -> None:
    big = {"rows": [{"i": i, "text": "t" * 100} for i in range(20_000)]}
    record = await _run(engine, "def main(ctx):\n    return len(ctx.input['rows'])", big)
    assert record.data == 20_000


async def test_twenty_concurrent_calls_share_a_pool_of_two(engine: Engine) -> None:
    code = "import time\ndef main(ctx):\n    time.sleep(0.01)\n    return ctx.input * 2"
    records = await asyncio.gather(*(_run(engine, code, n) for n in range(20)))
    assert [record.data for record in records] == [n * 2 for n in range(20)]
    assert _pool(engine).started == 2


async def test_globals_set_by_one_call_are_not_seen_by_the_next(engine: Engine) -> None:
    code = """
        import builtins, json, sys

        def main(ctx):
            seen = [hasattr(builtins, "leak"), "leaked" in sys.modules, hasattr(json, "leak")]
            builtins.leak = 1
            json.leak = 1
            sys.modules["leaked"] = sys
            return seen
    """
    for _ in range(3):
        assert (await _run(engine, code)).data == [False, False, False]


async def test_closed_pool_terminates_its_workers() -> None:
    workers = pool.WorkerPool(size=1)
    reply = await workers.run(
        b'{"code": "def main(ctx):\\n    return 5", "ctx": {}}',
        pool.Limits(timeout_ms=5000, cpu_s=5, memory_mb=64, max_result=1000, max_output=1000),
    )
    assert reply.body == {"ok": True, "value": 5}
    [worker] = workers.workers
    assert worker.alive
    await workers.aclose()
    assert not worker.alive
    with pytest.raises(pool.WorkerDied):
        await workers.run(b"{}", pool.Limits(1000, 1, 64, 1000, 1000))


def test_process_filter_exists_for_known_machines_only() -> None:
    assert limits.no_process_filter("x86_64") is not None
    assert limits.no_process_filter("aarch64") is not None
    assert limits.no_process_filter("sparc") is None


# --- requirements ----------------------------------------------------------------------------


def _wheel(folder: Path, name: str = "localpkg", version: str = "1.0") -> Path:
    """A minimal pure-Python wheel of `name` whose `VALUE` is 41 (no build tools, no index)."""
    files = {
        f"{name}/__init__.py": b"VALUE = 41\n",
        f"{name}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        ),
        f"{name}-{version}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


@pytest.mark.slow
async def test_requirements_are_installed_once_into_a_cached_environment(
    engine: Engine, tmp_path: Path
) -> None:
    wheel = str(_wheel(tmp_path))
    code = "import localpkg, sys\ndef main(ctx):\n    return [localpkg.VALUE + 1, sys.prefix]"
    first, second = await asyncio.gather(
        _run(engine, code, requirements=[wheel]), _run(engine, code, requirements=[wheel])
    )
    assert first.status is NodeStatus.SUCCESS, first.error
    assert first.data == second.data
    assert isinstance(first.data, list)
    prefix = Path(str(first.data[1]))
    assert first.data[0] == 42
    assert prefix.parent == tmp_path / "cache" / "python-envs"
    assert prefix.name == envs.env_key([wheel])
    assert (prefix / envs.READY).read_text(encoding="utf-8") == f"{wheel}\n"
    # the default environment does not see the package
    _, message, _ = _error(await _run(engine, code))
    assert message.startswith("ModuleNotFoundError: No module named 'localpkg'")


@pytest.mark.slow
async def test_an_install_failure_gives_pips_message(engine: Engine, tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere-1.0-py3-none-any.whl")
    _, message, details = _error(await _run(engine, "def main(ctx): pass", requirements=[missing]))
    assert message.startswith("pip could not install the requirements:")
    assert "nowhere" in str(details["pip"])
    assert not (tmp_path / "cache" / "python-envs" / envs.env_key([missing])).exists()


@pytest.mark.parametrize(
    ("requirements", "found"),
    [
        (["ok", "--index-url=http://evil"], "config.requirements[1] is a pip option"),
        (["  "], "config.requirements[0] is empty"),
        (["a\nb"], "config.requirements[0] must be a single line"),
    ],
)
async def test_bad_requirement_strings_are_refused_by_place(
    engine: Engine, requirements: list[str], found: str
) -> None:
    _, message, _ = _error(await _run(engine, "def main(ctx): pass", requirements=requirements))
    assert message.startswith(found)


def test_environment_key_ignores_order_and_duplicates() -> None:
    assert envs.env_key(["b", "a", "a"]) == envs.env_key(["a", "b"])
    assert envs.env_key(["a"]) != envs.env_key(["a", "b"])
