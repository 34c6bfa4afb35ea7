"""custom/code `isolation: warm`: a limited process kept per node, reused call after call.

Real worker and warm processes through the real engine. What changes from the default
(`isolation: call`): module-level code runs once and globals survive between calls of the
same node and code; what does not: every limit applies to every call, and a failed call
leaves nothing behind for the next one.
"""

import asyncio
import os
import select
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conv3n.blocks.custom import python as code_python
from conv3n.blocks.custom.sandbox import pool, warm_pool
from conv3n.engine import Engine, EngineOptions
from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON, NodeRecord, NodeStatus
from conv3n.testing import run_block, run_workflow

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")

COUNTER = textwrap.dedent(
    """
    import os
    calls = 0

    def main(ctx):
        global calls
        calls += 1
        return {"calls": calls, "pid": os.getpid()}
    """
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    async with Engine(options=EngineOptions(cache_dir=tmp_path / "cache")) as own:
        yield own


async def _run(engine: Engine, code: str, input: JSON = None, **config: JSON) -> NodeRecord:
    config = {"code": textwrap.dedent(code), "isolation": "warm", **config}
    return await run_block("custom/code", config, input=input, engine=engine)


def _data(record: NodeRecord) -> dict[str, JSON]:
    assert record.status is NodeStatus.SUCCESS, record
    assert isinstance(record.data, dict)
    return record.data


def _warm_pool(engine: Engine) -> warm_pool.WarmPool:
    return engine.shared(f"{code_python.SHARED_KEY}:warm", lambda: warm_pool.WarmPool())


def _message(record: NodeRecord) -> str:
    assert record.status is NodeStatus.ERROR, record
    assert record.error is not None
    return record.error.message


async def test_module_state_survives_between_calls_in_one_process(engine: Engine) -> None:
    first = [_data(await _run(engine, COUNTER)) for _ in range(5)]
    assert [data["calls"] for data in first] == [1, 2, 3, 4, 5]
    assert len({data["pid"] for data in first}) == 1
    default = await run_block("custom/code", {"code": textwrap.dedent(COUNTER)}, engine=engine)
    assert _data(default)["calls"] == 1  # isolation: call is untouched by the warm process


async def test_imports_are_paid_once(engine: Engine) -> None:
    code = """
        import sys
        loaded = "decimal" in sys.modules
        import decimal

        def main(ctx):
            return {"loaded_before_module_ran": loaded, "sum": str(decimal.Decimal("0.1") * 3)}
    """
    assert _data(await _run(engine, code)) == {"loaded_before_module_ran": False, "sum": "0.3"}
    assert _data(await _run(engine, code))["loaded_before_module_ran"] is False  # not re-run


async def test_other_code_or_other_limits_get_their_own_process(engine: Engine) -> None:
    one = _data(await _run(engine, COUNTER))
    changed = _data(await _run(engine, COUNTER + "\n# changed\n"))
    bigger = _data(await _run(engine, COUNTER, memory_mb=300))
    assert [one["calls"], changed["calls"], bigger["calls"]] == [1, 1, 1]
    assert len({one["pid"], changed["pid"], bigger["pid"]}) == 3
    assert _data(await _run(engine, COUNTER))["calls"] == 2


async def test_two_nodes_with_the_same_code_do_not_share_state(engine: Engine) -> None:
    config = {"code": textwrap.dedent(COUNTER), "isolation": "warm"}
    document = {
        "nodes": [
            {"id": "left", "type": "custom/code", "config": config},
            {"id": "right", "type": "custom/code", "config": config},
        ],
        "connections": [{"from": "left", "to": "right"}],
    }
    record = await run_workflow(document, None, engine=engine)
    left, right = record.nodes["left"].data, record.nodes["right"].data
    assert isinstance(left, dict)
    assert isinstance(right, dict)
    assert (left["calls"], right["calls"]) == (1, 1)
    assert left["pid"] != right["pid"]


async def test_inputs_vars_and_output_are_per_call(engine: Engine) -> None:
    code = """
        def main(ctx):
            print("call", ctx.input)
            ctx.vars["seen"] = ctx.input
            if ctx.input == 2:
                raise ValueError("two")
            return ctx.input * 10
    """
    first = await _run(engine, code, 1)
    assert first.data == 10
    assert first.effects == {"vars": {"seen": 1}}
    failed = await _run(engine, code, 2)
    assert failed.error is not None
    assert failed.error.details["output"] == "call 2\n"  # not the first call's output as well


async def test_a_failed_call_retires_the_process(engine: Engine) -> None:
    code = """
        import os
        calls = 0

        def main(ctx):
            global calls
            calls += 1
            if ctx.input == "fail":
                raise RuntimeError("half-way")
            return [calls, os.getpid()]
    """
    before = await _run(engine, code, "ok")
    assert _message(await _run(engine, code, "fail")).startswith("RuntimeError: half-way")
    after = await _run(engine, code, "ok")
    assert isinstance(before.data, list)
    assert isinstance(after.data, list)
    assert after.data[0] == 1  # a fresh process: the module ran again
    assert after.data[1] != before.data[1]


async def test_timeout_kills_the_warm_process_and_the_next_call_gets_a_fresh_one(
    engine: Engine,
) -> None:
    code = """
        calls = 0

        def main(ctx):
            global calls
            calls += 1
            while ctx.input == "spin":
                pass
            return calls
    """
    assert (await _run(engine, code, "go")).data == 1
    record = await _run(engine, code, "spin", timeout_ms=200)
    assert record.error is not None
    assert record.error.type == "timeout"
    assert (await _run(engine, code, "go")).data == 1


async def test_the_cpu_limit_is_per_call_not_per_process(engine: Engine) -> None:
    code = """
        import time

        def main(ctx):
            end = time.process_time() + ctx.input
            while time.process_time() < end:
                pass
            return "done"
    """
    for _ in range(3):  # 1.2 s of CPU in one process, 0.4 s per call: under cpu_ms=1000 each
        assert (await _run(engine, code, 0.4, cpu_ms=1000, timeout_ms=20_000)).data == "done"
    message = _message(await _run(engine, code, 30, cpu_ms=1000, timeout_ms=20_000))
    assert message.startswith("the code used more than its CPU time limit of 1 s")
    assert (await _run(engine, code, 0.01, cpu_ms=1000)).data == "done"


async def test_memory_limit_holds_and_a_memory_error_retires_the_process(engine: Engine) -> None:
    code = """
        hog = []

        def main(ctx):
            if ctx.input == "hog":
                while True:
                    hog.append(bytearray(1 << 20))
            return len(hog)
    """
    assert (await _run(engine, code, "count", memory_mb=64)).data == 0
    assert _message(await _run(engine, code, "hog", memory_mb=64)) == (
        "the code exceeded memory_mb=64 (MemoryError)"
    )
    assert (await _run(engine, code, "count", memory_mb=64)).data == 0  # the heap is fresh


async def test_processes_are_refused_in_a_warm_process(engine: Engine) -> None:
    code = """
        import subprocess

        def main(ctx):
            try:
                subprocess.run(["true"])
            except OSError as exc:
                return type(exc).__name__
    """
    assert (await _run(engine, code)).data == "PermissionError"


async def test_a_call_that_leaves_a_thread_running_retires_the_process(engine: Engine) -> None:
    code = """
        import os, threading

        stop = threading.Event()

        def main(ctx):
            if ctx.input == "leave":
                threading.Thread(target=stop.wait, daemon=True).start()
            return os.getpid()
    """
    first = await _run(engine, code, "leave")
    second = await _run(engine, code, "stay")
    third = await _run(engine, code, "stay")
    assert first.data != second.data  # the thread's process was retired after its reply
    assert second.data == third.data


PROBE = """
    import os

    def main(ctx):
        links = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                links.append(os.readlink(f"/proc/self/fd/{fd}").split("[")[0])
            except OSError:  # the descriptor listdir itself used
                pass
        return sorted(links)
"""


async def test_a_call_process_holds_no_descriptor_of_another_warm_process(
    engine: Engine,
) -> None:
    other = _data(await _run(engine, COUNTER))
    own = ["/dev/null", "/memfd:conv3n-output (deleted)", "/memfd:conv3n-output (deleted)"]
    warm_links = (await _run(engine, PROBE)).data  # its own request and reply pipes
    assert warm_links == sorted([*own, "pipe:", "pipe:"])
    call = await run_block("custom/code", {"code": textwrap.dedent(PROBE)}, engine=engine)
    assert call.data == sorted([*own, "/memfd:conv3n-reply (deleted)"])
    assert _data(await _run(engine, COUNTER))["pid"] == other["pid"]


@pytest.mark.parametrize("code", ["def main(ctx):\n    return (", "x = 1"])
async def test_code_that_cannot_load_fails_on_every_call(engine: Engine, code: str) -> None:
    for _ in range(2):
        assert (await _run(engine, code)).status is NodeStatus.ERROR


async def test_concurrent_calls_share_two_processes_and_all_answer(engine: Engine) -> None:
    code = "def main(ctx):\n    return ctx.input * 2"
    records = await asyncio.gather(*(_run(engine, code, n) for n in range(50)))
    assert [record.data for record in records] == [n * 2 for n in range(50)]
    processes = _warm_pool(engine)
    assert processes.started == warm_pool.PER_KEY == 2
    assert len(processes.processes) == 2
    assert engine.shared(code_python.SHARED_KEY, lambda: pool.WorkerPool()).started == 0


async def test_more_warm_keys_than_a_pool_keeps_still_answer(engine: Engine) -> None:
    codes = [COUNTER + f"\n# variant {index}\n" for index in range(warm_pool.MAX_KEYS + 2)]
    for _ in range(2):
        for code in codes:
            assert _data(await _run(engine, code))["calls"] == 1  # each came back evicted
    processes = _warm_pool(engine)
    await processes.settled()
    assert len(processes.processes) == warm_pool.MAX_KEYS


async def test_warm_is_refused_for_javascript(engine: Engine) -> None:
    config = {"code": "export default () => 1", "language": "javascript", "isolation": "warm"}
    with pytest.raises(WorkflowInvalid) as raised:
        await run_block("custom/code", config, engine=engine)
    assert "nodes[0].config: isolation: warm is for Python code only (language is javascript)" in (
        str(raised.value)
    )


async def test_code_closing_its_pipes_fails_the_call_without_a_hang(engine: Engine) -> None:
    code = """
        import os, time

        def main(ctx):
            if ctx.input == "close":
                os.closerange(3, 1024)
                time.sleep(30)
            return "fine"
    """
    record = await _run(engine, code, "close", timeout_ms=20_000)
    assert record.status is NodeStatus.ERROR
    assert record.duration_ms is not None
    assert record.duration_ms < 10_000  # ended when its pipe closed, not at the timeout
    assert (await _run(engine, code, "open")).data == "fine"


# --- the server's own side of the warm processes (decision 0018) -----------------------------


async def test_output_written_to_the_descriptors_is_per_call_and_capped(engine: Engine) -> None:
    code = """
        import os

        def main(ctx):
            if ctx.input == "flood":
                for _ in range(3000):
                    print("x" * 1000)
            else:
                os.write(1, "é1\\n".encode())
                os.write(2, b"2\\n")
            raise ValueError(ctx.input)
    """
    flood = await _run(engine, code, "flood")
    assert flood.error is not None
    output = flood.error.details["output"]
    assert isinstance(output, str)
    assert flood.error.details["output_truncated"] is True
    assert output.endswith(f"[output truncated: more than {code_python.MAX_OUTPUT_BYTES} bytes]\n")
    assert len(output) < code_python.MAX_OUTPUT_BYTES + 1000
    small = await _run(engine, code, "small")  # a fresh process: the flood's call failed
    assert small.error is not None
    assert small.error.details["output"] == "é1\n2\n"
    assert "output_truncated" not in small.error.details


@pytest.mark.parametrize(
    ("code", "found"),
    [
        ("import os\ndef main(ctx):\n    print('bye')\n    os._exit(7)", "exited with status 7"),
        ("import ctypes\ndef main(ctx):\n    print('bye')\n    ctypes.string_at(0)", "SIGSEGV"),
    ],
)
async def test_a_dying_warm_process_keeps_its_output_and_the_next_call_works(
    engine: Engine, code: str, found: str
) -> None:
    record = await _run(engine, code)
    assert found in _message(record)
    assert record.error is not None
    assert record.error.details["output"] == "bye\n"
    assert _data(await _run(engine, COUNTER))["calls"] == 1


async def test_a_warm_process_killed_while_idle_is_replaced(engine: Engine) -> None:
    first = _data(await _run(engine, COUNTER))
    processes = _warm_pool(engine)
    [process] = processes.processes
    process.process.kill()
    await process.process.wait()
    again = _data(await _run(engine, COUNTER))
    assert again["calls"] == 1
    assert again["pid"] != first["pid"]
    assert processes.started == 2


async def test_a_call_cancelled_half_way_ends_its_process(engine: Engine) -> None:
    code = """
        import os, time

        def main(ctx):
            if ctx.input == "slow":
                time.sleep(30)
            return os.getpid()
    """
    before = (await _run(engine, code, "fast")).data
    processes = _warm_pool(engine)
    [process] = processes.processes
    slow = asyncio.create_task(_run(engine, code, "slow"))
    while not processes.busy:  # a few turns of the loop: the process is there already
        await asyncio.sleep(0)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert process.process.returncode is not None  # killed, not left with a reply pending
    after = (await _run(engine, code, "fast")).data
    assert after != before


async def test_a_reply_of_several_megabytes_comes_through_the_pipe(engine: Engine) -> None:
    code = "def main(ctx):\n    return {'text': 'y' * ctx.input}"
    for size in (5 << 20, 3):
        assert _data(await _run(engine, code, size)) == {"text": "y" * size}


async def test_code_writing_a_huge_reply_head_into_its_pipe_is_ended_at_once(
    engine: Engine,
) -> None:
    code = """
        import fcntl, os, struct, time

        def main(ctx):
            for fd in range(3, 16):
                try:
                    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
                except OSError:
                    continue
                pipe = os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:")
                if pipe and flags & os.O_ACCMODE == os.O_WRONLY:
                    os.write(fd, struct.pack(">IIB", 2**32 - 1, 0, 0))  # "4 GiB follow"
            time.sleep(30)
    """
    record = await _run(engine, code, timeout_ms=20_000)
    assert "died from SIGKILL" in _message(record)
    assert record.duration_ms is not None
    assert record.duration_ms < 10_000  # ended on the head, not at the timeout
    assert _data(await _run(engine, COUNTER))["calls"] == 1


SERVER = """
import asyncio

import orjson

from conv3n.blocks.custom.sandbox import pool, warm_pool

CODE = "import os, time\\ndef main(ctx):\\n    time.sleep(ctx.input)\\n    return os.getpid()"


async def main():
    processes = warm_pool.WarmPool(per_key=1)
    limits = pool.Limits(
        timeout_ms=3_600_000, cpu_s=10, memory_mb=256, max_result=1 << 20, max_output=1 << 20,
        warm="key",
    )
    def request(seconds):
        return orjson.dumps({"code": CODE, "ctx": {"input": seconds}})
    pid = (await processes.run(request(0), limits)).body["value"]
    asyncio.create_task(processes.run(request(3600), limits))  # busy: not reading its pipe
    while not processes.busy:
        await asyncio.sleep(0)
    print(pid, flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
"""


async def test_a_warm_process_dies_with_its_server(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    server = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE
    )
    assert server.stdout is not None
    async with asyncio.timeout(30):
        warm_pid = int(await server.stdout.readline())
    pidfd = os.pidfd_open(warm_pid)  # readable once that process has ended
    try:
        server.kill()  # SIGKILL: no clean-up; the process, asleep in a call, reads no EOF
        await server.wait()
        readable, _, _ = await asyncio.to_thread(select.select, [pidfd], [], [], 10)
    finally:
        os.close(pidfd)
    assert readable, "the warm process outlived its server"
