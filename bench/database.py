"""Benchmark of std/database (issue 5): queries per second through the engine.

    python bench/database.py              # SQLite, and PostgreSQL when it is reachable
    python bench/database.py --n 5000     # more queries per round

Two queries per database: `SELECT :x` (the block, pool and driver round trip) and a lookup by
primary key in a 10,000-row table. Each runs as a std/loop whose body is one std/database node,
one at a time (latency) and 20 at once (the pool's throughput), plus one whole execution per
query (the engine's per-execution overhead included). Each figure is the best of 3 rounds.
PostgreSQL: 127.0.0.1:5432, user postgres, database test (a uniquely named table, dropped).
"""

import argparse
import asyncio
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from conv3n.compiler import compile_workflow, load_workflow
from conv3n.engine import Engine
from conv3n.sdk import BlockRegistry

REGISTRY = BlockRegistry.discover()
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
TABLE_ROWS = 10_000
ROUNDS = 3


def node(url: str, query: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "q",
        "type": "std/database",
        "config": {"url": url, "query": query, "params": params},
    }


def loop_plan(url: str, query: str, n: int, concurrency: int) -> Any:
    body = {"nodes": [node(url, query, {"x": "{{ $item }}"})]}
    config = {"items": f"{{{{ range({n}) }}}}", "concurrency": concurrency, "body": body}
    document = {"version": 1, "nodes": [{"id": "each", "type": "std/loop", "config": config}]}
    return compile_workflow(load_workflow(document), REGISTRY)


def single_plan(url: str, query: str) -> Any:
    document = {"version": 1, "nodes": [node(url, query, {"x": "{{ $input.x }}"})]}
    return compile_workflow(load_workflow(document), REGISTRY)


async def run(engine: Engine, plan: Any, payload: Any) -> None:
    record = await engine.execute(plan, payload)
    if record.status != "success":
        raise SystemExit(f"benchmark workflow failed: {record.error}")


async def setup(engine: Engine, url: str, table: str) -> None:
    """`table (x PRIMARY KEY, name)` holding TABLE_ROWS rows, through the block itself."""
    statements = [
        {"query": on(table, "CREATE TABLE @T (x INTEGER PRIMARY KEY, name VARCHAR(40))")},
        {
            "query": on(
                table, "INSERT INTO @T (x, name) SELECT n, 'name ' || n FROM (@N) AS ns"
            ).replace("@N", numbers(url)),
            "params": {"last": TABLE_ROWS - 1},
        },
    ]
    document = {
        "version": 1,
        "nodes": [
            {"id": "s", "type": "std/database", "config": {"url": url, "statements": statements}}
        ],
    }
    await run(engine, compile_workflow(load_workflow(document), REGISTRY), None)


def on(table: str, query: str) -> str:
    """`query` with @T replaced by the benchmark's own table (identifiers cannot be bound)."""
    return query.replace("@T", table)


def numbers(url: str) -> str:
    """A subquery of n = 0 .. TABLE_ROWS-1 in this dialect."""
    if url.startswith("sqlite"):
        return (
            "WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n < :last) "
            "SELECT n FROM c"
        )
    return "SELECT generate_series(0, :last) AS n"


async def teardown(engine: Engine, url: str, table: str) -> None:
    document = {"version": 1, "nodes": [node(url, on(table, "DROP TABLE @T"), {})]}
    await run(engine, compile_workflow(load_workflow(document), REGISTRY), None)


async def measure(url: str, label: str, n: int) -> list[tuple[str, str, float]]:
    table = f"bench_{uuid.uuid4().hex[:10]}"
    figures: list[tuple[str, str, float]] = []
    async with Engine() as engine:
        await setup(engine, url, table)
        try:
            queries = {
                "`SELECT :x`": "SELECT :x AS x",
                "indexed lookup": on(table, "SELECT x, name FROM @T WHERE x = :x"),
            }
            for name, query in queries.items():
                for concurrency in (1, 20):
                    plan = loop_plan(url, query, n, concurrency)
                    await run(engine, loop_plan(url, query, 50, concurrency), None)  # warm up
                    best = min([await timed(engine, plan, None) for _ in range(ROUNDS)])
                    figures.append((label, f"{name}, loop, {concurrency} at once", n / best))
                plan = single_plan(url, query)
                runs = max(n // 4, 100)

                async def executions(plan: Any = plan, runs: int = runs) -> None:
                    for i in range(runs):
                        await run(engine, plan, {"x": i % TABLE_ROWS})

                best = float("inf")
                for _ in range(ROUNDS):
                    start = time.perf_counter()
                    await executions()
                    best = min(best, time.perf_counter() - start)
                figures.append((label, f"{name}, one execution each", runs / best))
        finally:
            await teardown(engine, url, table)
    return figures


async def timed(engine: Engine, plan: Any, payload: Any) -> float:
    start = time.perf_counter()
    await run(engine, plan, payload)
    return time.perf_counter() - start


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="queries per loop round")
    args = parser.parse_args()
    figures: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        figures += await measure(f"sqlite:///{Path(folder) / 'bench.db'}", "SQLite (file)", args.n)
    if reachable("127.0.0.1", 5432):
        figures += await measure(PG_URL, "PostgreSQL", args.n)
    else:
        print("PostgreSQL is not reachable at 127.0.0.1:5432: skipped", file=sys.stderr)
    print(f"std/database, {args.n} queries per loop round, best of {ROUNDS}\n")
    print("| database | query | queries/s |")
    print("|---|---|---:|")
    for database, name, rate in figures:
        print(f"| {database} | {name} | {rate:,.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
