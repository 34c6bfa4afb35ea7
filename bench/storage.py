"""Persistence benchmark (issue 3): executions/s of a 5-node workflow, storage off and on.

    python bench/storage.py            # SQLite, plus PostgreSQL when it is reachable

Each run executes the same compiled 5-node workflow N times with C concurrent callers;
"off" runs the engine with no journal, "on" runs it through the Runtime (execution row,
group-committed node results, final state). Rewrites its section of bench/RESULTS.md.
"""

import asyncio
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine import ROOT, write_section

from conv3n.compiler import Plan
from conv3n.engine import Engine
from conv3n.runtime import Settings, compile_file
from conv3n.runtime.service import Runtime
from conv3n.sdk import BlockRegistry
from conv3n.storage import Database, schema

WORKFLOW = ROOT / "bench" / "five_nodes.yaml"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def drive(run: "asyncio.Future[object] | object", total: int, concurrency: int) -> float:
    """Executions per second of `total` calls of `run()` by `concurrency` callers."""
    remaining = total

    async def caller() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await run()  # type: ignore[operator]

    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(caller())
    return total / (time.perf_counter() - start)


ROUNDS = 5
"""Each figure is the best of this many rounds (one round is well under a second: the best
is the steadiest figure on a shared machine)."""


async def in_memory(plan: Plan, total: int, concurrency: int) -> float:
    async with Engine() as engine:
        await drive(lambda: engine.execute(plan, {"n": 3}), total // 5, concurrency)
        return max(
            [
                await drive(lambda: engine.execute(plan, {"n": 3}), total, concurrency)
                for _ in range(ROUNDS)
            ]
        )


async def persisted(
    url: str, plan: Plan, total: int, concurrency: int, *, persist: bool = True
) -> float:
    """Through the Runtime; `persist=False` is CONV3N_PERSIST=off (the same Runtime, limits
    and logging, with a journal that stores nothing): the cost of persistence alone."""
    db = Database(url)
    await schema.upgrade(db)
    await db.close()
    settings = Settings.from_env(
        {"CONV3N_DATA_DIR": tempfile.mkdtemp()}, database_url=url, persist=persist
    )
    async with Runtime(settings) as runtime:
        await drive(lambda: runtime.execute(plan, {"n": 3}), total // 5, concurrency)
        return max(
            [
                await drive(lambda: runtime.execute(plan, {"n": 3}), total, concurrency)
                for _ in range(ROUNDS)
            ]
        )


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


async def measure() -> list[tuple[str, int, float, float, float]]:
    plan = compile_file(WORKFLOW, BlockRegistry.discover())
    rows = []
    databases = [("SQLite", None)]
    if reachable(5432):
        databases.append(("PostgreSQL", PG_URL))
    for name, url in databases:
        for concurrency in (1, 50):
            total = 3000
            engine_only = await in_memory(plan, total, concurrency)
            with tempfile.TemporaryDirectory() as folder:
                target = url or f"sqlite:///{folder}/bench.db"
                if url:
                    await reset_postgres()
                off = await persisted(target, plan, total, concurrency, persist=False)
                on = await persisted(target, plan, total, concurrency)
            print(
                f"{name} c={concurrency}: engine {engine_only:,.0f}/s, off {off:,.0f}/s, "
                f"on {on:,.0f}/s ({on / off:.0%})",
                file=sys.stderr,
                flush=True,
            )
            rows.append((name, concurrency, engine_only, off, on))
    return rows


async def reset_postgres() -> None:
    db = Database(PG_URL)
    async with db.write() as conn:
        await conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        await conn.exec_driver_sql("CREATE SCHEMA public")
    await db.close()


def report(rows: list[tuple[str, int, float, float, float]]) -> str:
    lines = [
        "## Persistence (issue 3)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} UTC, Python {platform.python_version()}, by "
        f"`python bench/storage.py`: the best of {ROUNDS} rounds of 3,000 executions of "
        "bench/five_nodes.yaml (after 600 to warm up). *off* is the Runtime with persistence "
        "off (CONV3N_PERSIST=off: the same code path, concurrency limits and log binding, "
        "with a journal that stores nothing); *on* stores "
        "every execution row, its node results (group-committed) and its final state. *engine "
        "only* is a bare Engine without a Runtime, for reference. Target: persistence on keeps "
        "≥ 70 % of the throughput with it off, on SQLite.",
        "",
        "| database | concurrency | engine only | off (exec/s) | on (exec/s) | on / off "
        "| on / engine only | target met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, concurrency, engine_only, off, on in rows:
        share = on / off
        met = ("yes" if share >= 0.7 else "**no**") if name == "SQLite" else "(no target)"
        lines.append(
            f"| {name} | {concurrency} | {engine_only:,.0f} | {off:,.0f} | {on:,.0f} | "
            f"{share:.0%} | {on / engine_only:.0%} | {met} |"
        )
    lines += ["", *ANALYSIS]
    return "\n".join(lines) + "\n"


ANALYSIS = [
    "How it is kept cheap: on SQLite the commits run in a writer process of the server's own "
    "(decision 0011). The event loop gathers each 2 ms window of events into one batch, "
    "encodes it (JSON text once per value with orjson, the node records of an execution that "
    "finishes in its window as one value on its row) and writes it down a pipe as one frame; "
    "the child binds the rows, inserts them with multi-row INSERTs and commits. Profiles of "
    "the two paths (2026-12-02) put what is left on the loop at about 30 µs per execution: "
    "the journal's event bookkeeping and row building (~12 µs), encoding the node records "
    "(~4 µs), the frame's orjson call (~3 µs) and the pipe write (~2 µs for 2 KB), plus the "
    "datetime conversions.",
    "",
    "What moved it from 3 % to the figure above (decisions 0004 and 0011): group commit "
    "instead of a transaction per execution; not awaiting the commit at the end of each "
    "execution; multi-row INSERTs; one JSON value for the node records of a fast execution; "
    "content-addressed workflow documents; a plain (not slotted) NodeRecord, which orjson "
    "encodes 2.5 times as fast; the window counted from a batch's first event, with the "
    "finishing execution handing the batch over instead of yielding to a writer task; and "
    "the commits moved out of the server's process. Committing on the loop's own thread "
    "(CONV3N_SQLITE_WRITER=inline) measured 61-64 %; in a thread, 58-59 % (sqlite3 takes the "
    "GIL back around every call).",
]


def main() -> None:
    section = report(asyncio.run(measure()))
    print(section)
    write_section(section, ROOT / "bench" / "RESULTS.md")


if __name__ == "__main__":
    main()
