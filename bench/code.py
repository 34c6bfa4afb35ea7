"""custom/code call overhead (issue 5): a warm worker pool against a fresh interpreter per call.

    python bench/code.py [--calls 300]     # prints a markdown table

Rows measure one trivial call (`def main(ctx): return 1`) end to end:
- `pool`: `WorkerPool.run` (frame, fork of the warm worker, limits, run, reply);
- `block`: a one-node workflow of the custom/code block, compiled once and executed by the
  engine per call (what a server does: rendering and validating the config, the attempt, the
  node and execution records);
- `spawn`: `python -c` in a new subprocess per call, the cost the pool avoids.
Median and p99 of `--calls` calls after a warm-up. Add a language by appending a `Row` in
`rows()` (e.g. a Bun or Node pool next to the Python one). Target: pool median and p99 <= 5 ms.
`CPU ms/call` adds up the CPU time of every process involved (parent, workers, call
processes, spawned interpreters): on a loaded machine it is the steadier figure.
"""

import argparse
import asyncio
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import psutil

from conv3n.blocks.custom import python as code_python
from conv3n.blocks.custom.sandbox import pool, warm_pool
from conv3n.compiler import compile_workflow, load_workflow
from conv3n.engine import Engine
from conv3n.sdk import BlockRegistry

TRIVIAL = "def main(ctx):\n    return 1\n"
TARGET_MS = 5.0


@dataclass
class Row:
    """One way to run the trivial call."""

    name: str
    call: Callable[[], Awaitable[None]]
    target: bool = False


@dataclass
class Figures:
    """The timings of one row, in milliseconds."""

    median: float
    p99: float
    worst: float
    cpu: float


def cpu_s(workers: pool.WorkerPool, warm: warm_pool.WarmPool) -> float:
    """CPU seconds used so far by this process, its reaped children, the pool's workers and
    their reaped call processes, and the warm processes: a figure the machine's load does not
    inflate."""
    own = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own + children.ru_utime + children.ru_stime
    pids = [worker.pid for worker in workers.workers]
    pids += [process.process.pid for process in warm.processes]
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


async def measure(
    call: Callable[[], Awaitable[None]],
    calls: int,
    workers: pool.WorkerPool,
    warm: warm_pool.WarmPool,
) -> Figures:
    for _ in range(min(20, calls)):
        await call()
    times = []
    cpu_before = cpu_s(workers, warm)
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    cpu = (cpu_s(workers, warm) - cpu_before) * 1000 / calls
    times.sort()
    p99 = times[max(0, int(len(times) * 0.99) - 1)]
    return Figures(statistics.median(times), p99, times[-1], cpu)


def rows(engine: Engine, workers: pool.WorkerPool, warm: warm_pool.WarmPool) -> list[Row]:
    limits = pool.Limits(
        timeout_ms=10_000,
        cpu_s=10,
        memory_mb=256,
        max_result=code_python.MAX_RESULT_BYTES,
        max_output=code_python.MAX_OUTPUT_BYTES,
    )
    request = b'{"code": "def main(ctx):\\n    return 1\\n", "ctx": {"input": null}}'

    async def pooled() -> None:
        reply = await workers.run(request, limits)
        assert reply.body == {"ok": True, "value": 1}, reply

    warm_limits = dataclasses.replace(limits, warm="bench")

    async def warmed() -> None:
        reply = await warm.run(request, warm_limits)
        assert reply.body == {"ok": True, "value": 1}, reply

    async_request = b'{"code": "async def main(ctx):\\n    return 1\\n", "ctx": {}}'

    async def pooled_async() -> None:
        reply = await workers.run(async_request, limits)
        assert reply.body == {"ok": True, "value": 1}, reply

    node = {"id": "code", "type": "custom/code", "config": {"code": TRIVIAL}}
    document = {"version": 1, "nodes": [node]}
    plan = compile_workflow(load_workflow(document), BlockRegistry.discover())

    async def block() -> None:
        record = await engine.execute(plan, None)
        assert record.output == 1, record

    script = TRIVIAL + "import json; print(json.dumps(main(None)))"

    def spawn_sync() -> None:
        done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, check=True)
        assert done.stdout.strip() == b"1"

    async def spawn() -> None:
        await asyncio.to_thread(spawn_sync)

    return [
        Row("python: warm pool (`WorkerPool.run`)", pooled, target=True),
        Row("python: warm pool, `async def main`", pooled_async),
        Row("python: `isolation: warm` process (`WarmPool.run`)", warmed),
        Row("python: custom/code block via the engine", block),
        Row("python: fresh `python -c` per call", spawn),
    ]


async def run(calls: int) -> str:
    lines = [
        f"custom/code call overhead, trivial `return 1`, {calls} calls after warm-up "
        f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})",
        "",
        "| way | median ms | p99 ms | worst ms | CPU ms/call | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    async with Engine() as engine:
        workers = engine.shared(code_python.SHARED_KEY, lambda: pool.WorkerPool())
        warm = engine.shared(f"{code_python.SHARED_KEY}:warm", lambda: warm_pool.WarmPool())
        for row in rows(engine, workers, warm):
            count = calls if "fresh" not in row.name else max(10, calls // 10)
            figures = await measure(row.call, count, workers, warm)
            target = ""
            if row.target:
                met = figures.median <= TARGET_MS and figures.p99 <= TARGET_MS
                target = f"<= {TARGET_MS:.0f} ms: {'met' if met else 'missed'}"
            lines.append(
                f"| {row.name} | {figures.median:.2f} | {figures.p99:.2f} | "
                f"{figures.worst:.2f} | {figures.cpu:.2f} | {target} |"
            )
            print(f"… {row.name}", file=sys.stderr, flush=True)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    arguments = parser.parse_args()
    print(asyncio.run(run(arguments.calls)))


if __name__ == "__main__":
    main()
