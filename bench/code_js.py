"""Benchmark of custom/code in JavaScript (issue 5): call overhead on Bun and on Node.

    python bench/code_js.py           # prints a markdown table

Rows per runtime:
- warm pool, through the engine: one execution of a one-node workflow whose code is
  `export default () => 1`, minus nothing (the std/noop row beside it is the engine's own cost);
- warm pool, one worker call: `WorkerPool.call` alone (request out, reply in, fresh module import);
- spawn per call: start a worker, make that one call, stop it (what a pool saves).
No figure here is asserted by a test.
"""

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from conv3n.blocks.custom.js import runtime
from conv3n.blocks.custom.js.pool import JsRunners, WorkerPool
from conv3n.blocks.custom.js.runtime import Runtime
from conv3n.blocks.custom.js.worker import Worker
from conv3n.compiler import Plan, compile_workflow, load_workflow
from conv3n.engine import Engine
from conv3n.sdk import BlockRegistry

CODE = "export default () => 1"
REGISTRY = BlockRegistry.discover()


def plan_of(node: dict[str, Any]) -> Plan:
    return compile_workflow(load_workflow({"version": 1, "nodes": [node]}), REGISTRY)


async def timed(action: Callable[[], Awaitable[object]], rounds: int) -> list[float]:
    """Milliseconds per round, after a few warm-up rounds."""
    for _ in range(5):
        await action()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - start) * 1000)
    return sorted(samples)


def row(name: str, samples: list[float]) -> str:
    p99 = samples[min(len(samples) - 1, round(len(samples) * 0.99))]
    return f"| {name} | {statistics.median(samples):.3f} | {p99:.3f} | {len(samples)} |"


async def main() -> None:
    rows = ["| measure | median ms | p99 ms | calls |", "|---|---|---|---|"]
    runtimes = [found for found in (runtime.find_bun(), runtime.find_node()) if found]
    async with Engine() as engine:
        noop = plan_of({"id": "n", "type": "std/noop"})
        rows.append(
            row("engine, std/noop (baseline)", await timed(lambda: engine.execute(noop), 500))
        )
        for found in runtimes:
            config = {"language": "javascript", "runtime": found.kind, "code": CODE}
            plan = plan_of({"id": "n", "type": "custom/code", "config": config})

            async def through_engine(plan: Plan = plan) -> None:
                record = await engine.execute(plan)
                assert record.status == "success", record.error

            samples = await timed(through_engine, 500)
            rows.append(row(f"{found.kind}: engine, custom/code `return 1`, warm pool", samples))
    runners = JsRunners()
    try:
        for found in runtimes:
            path = await runners.module_file(runners.root / "code", CODE, ".mjs")
            request = orjson.dumps({"id": 1, "path": str(path), "ctx": {}}) + b"\n"
            pool = runners.pool(found, 256)

            async def warm_call(pool: WorkerPool = pool, request: bytes = request) -> None:
                await pool.call(request, 10)

            samples = await timed(warm_call, 1000)
            rows.append(row(f"{found.kind}: one worker call, warm pool", samples))

            async def spawned(found: Runtime = found, request: bytes = request) -> None:
                worker = await Worker.start(found, 256, runners.root)
                await worker.call(request, 10)
                await worker.stop(graceful=True)

            rows.append(row(f"{found.kind}: spawn per call", await timed(spawned, 30)))
    finally:
        await runners.aclose()
    versions = ", ".join(f"{f.kind} {'.'.join(map(str, f.version))}" for f in runtimes)
    print(f"### custom/code in JavaScript ({versions})\n")
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main())
