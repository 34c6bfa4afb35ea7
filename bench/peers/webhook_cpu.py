"""CPU time of one conv3n webhook request on the in-process ASGI path (no sockets, no uvicorn).

The app of `conv3n serve` (create_app on a Runtime with SQLite in a temporary data dir, metrics
on) is called directly as an ASGI app by `--concurrency` tasks until `--requests` webhook
requests of the workflow have been answered. The figure is process CPU time per request
(all threads: the event loop and aiosqlite's), which other processes on the machine disturb far
less than wall time, so before/after comparisons of the webhook path hold on a busy machine.
`--cprofile` also prints the share of CPU time per layer (cProfile's tottime, grouped as in
profile_webhook.py; cProfile's own overhead inflates the Python-heavy layers), the `--top`
functions, and with `--dump FILE` writes the profile for pstats.

    .venv/bin/python bench/peers/webhook_cpu.py [--workflow a] [--requests 3000] [--cprofile]
    .venv/bin/python bench/peers/webhook_cpu.py --compare base,plan-cache,pool,plan-cache+pool

`--compare` runs each variant in its own process, alternately, and prints the best figure of
each: `plan-cache` and `pool` patch the runtime and the storage in that process only, to size
what a change there would bring (see PROFILE.md).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from load import BODY

from conv3n.api import create_app
from conv3n.observability import Metrics
from conv3n.runtime import Settings
from conv3n.runtime.service import Runtime

HERE = Path(__file__).resolve().parent
PAYLOAD = json.dumps(BODY).encode()


def scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:5680"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(PAYLOAD)).encode()),
            (b"user-agent", b"wrk"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 5680),
    }


async def call(app: Any, path: str) -> int:
    """One request through the ASGI app; its status."""
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # no disconnect while the answer is being made
        sent = True
        return {"type": "http.request", "body": PAYLOAD, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope(path), receive, send)
    return status


async def load(app: Any, path: str, requests: int, concurrency: int) -> list[int]:
    left = requests
    statuses: list[int] = []

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            statuses.append(await call(app, path))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def apply_variant(variant: str) -> None:
    """Experiments outside the webhook route, patched into this process only (to size them)."""
    parts = set(variant.split("+")) - {"base"}
    unknown = parts - {"plan-cache", "pool", "version-check", "no-metrics"}
    if unknown:
        raise SystemExit(
            f"--variant: unknown {sorted(unknown)} "
            "(base, plan-cache, version-check, pool, no-metrics)"
        )
    if "pool" in parts:  # SQLite reads on a pool as large as the concurrency: no overflow churn
        import functools

        from conv3n.storage import database

        database.create_async_engine = functools.partial(
            database.create_async_engine, pool_size=20, max_overflow=20
        )
    if "plan-cache" in parts:  # the latest plan kept in memory instead of read per request
        original = Runtime._latest_plan
        cache: dict[str, Any] = {}

        async def latest_plan(self: Runtime, workflow_id: str) -> Any:
            found = cache.get(workflow_id)
            if found is None:
                found = cache[workflow_id] = await original(self, workflow_id)
            return found

        Runtime._latest_plan = latest_plan
    if "version-check" in parts:  # ask the database for the latest version only, not the
        # whole document re-validated; fetch and compile the document when the version is new
        from sqlalchemy import select

        from conv3n.storage import tables, workflows

        plans: dict[tuple[str, int, Any], Any] = {}
        table = tables.workflows

        async def checked_plan(self: Runtime, workflow_id: str) -> Any:
            query = select(table.c.current_version, table.c.created_at)
            async with self.db.read() as conn:
                row = (await conn.execute(query.where(table.c.id == workflow_id))).first()
            if row is None:
                return await original_plan(self, workflow_id)  # its WorkflowNotFound
            key = (workflow_id, int(row.current_version), row.created_at)
            found = plans.get(key)
            if found is None:
                stored = await workflows.get(self.db, workflow_id, int(row.current_version))
                found = plans[key] = (self.compile(stored.workflow), stored.version)
            return found

        original_plan = Runtime._latest_plan
        Runtime._latest_plan = checked_plan


def compare(args: argparse.Namespace) -> None:
    """Each variant in its own process, alternately, `--passes` times: best CPU per request."""
    import subprocess

    best: dict[str, float] = {}
    for _ in range(args.passes):
        for variant in args.compare.split(","):
            command = [
                sys.executable,
                __file__,
                "--workflow",
                args.workflow,
                "--requests",
                str(args.requests),
                "--concurrency",
                str(args.concurrency),
                "--rounds",
                str(args.rounds),
                "--variant",
                variant,
                "--json",
            ]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            figure = json.loads(done.stdout.strip().splitlines()[-1])["cpu_us_best"]
            best[variant] = min(best.get(variant, float("inf")), figure)
    base = best.get("base")
    print(
        f"| variant (workflow {args.workflow}, {args.concurrency} concurrent) "
        "| CPU per request | vs base |\n|---|---|---|"
    )
    for variant, figure in best.items():
        ratio = f"{figure / base:.2f}" if base else "—"
        print(f"| {variant} | {figure:,.0f} µs | {ratio} |")


async def measure(args: argparse.Namespace, data_dir: str) -> dict[str, float]:
    import httpx

    settings = Settings.from_env({"CONV3N_DATA_DIR": data_dir})
    document = yaml.safe_load((HERE / "workflows" / f"{args.workflow}.yaml").read_text())
    metrics = None if "no-metrics" in args.variant.split("+") else Metrics()
    async with Runtime(settings, metrics=metrics) as runtime:
        app = create_app(runtime)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://conv3n") as client:
            (await client.post("/api/workflows", json=document)).raise_for_status()
            (await client.post(f"/api/workflows/{document['id']}/activate")).raise_for_status()
        path = f"/webhook/bench-{args.workflow}"
        statuses = await load(app, path, 300, args.concurrency)  # warm-up
        if set(statuses) != {200}:
            raise SystemExit(f"the webhook answered {collections.Counter(statuses)}")
        rounds = []
        profiler = cProfile.Profile(time.process_time) if args.cprofile else None
        for _ in range(args.rounds):
            cpu = time.process_time()
            if profiler is not None:
                profiler.enable()
            await load(app, path, args.requests, args.concurrency)
            if profiler is not None:
                profiler.disable()
            rounds.append((time.process_time() - cpu) / args.requests)
        await runtime.journal.flush()
    if profiler is not None:
        print_layers(profiler, top=args.top, dump=args.dump)
    return {"cpu_us_median": statistics.median(rounds) * 1e6, "cpu_us_best": min(rounds) * 1e6}


def print_layers(profiler: cProfile.Profile, *, top: int = 15, dump: str | None = None) -> None:
    from profile_webhook import OTHER, layer_of

    stats = pstats.Stats(profiler)
    by_layer: collections.Counter[str] = collections.Counter()
    for (file, _line, _name), row in stats.stats.items():  # type: ignore[attr-defined]
        tottime = row[2]
        layer = layer_of(file)
        if layer is None:
            layer = "C functions and stdlib (json, sqlite3, ...)" if file == "~" else OTHER
        by_layer[layer] += tottime
    total = sum(by_layer.values()) or 1.0
    print("| layer | share of CPU (cProfile tottime) |\n|---|---|")
    for name, seconds in by_layer.most_common():
        print(f"| {name} | {100 * seconds / total:.1f} % |")
    print()
    stats.sort_stats("tottime").print_stats(top)
    if dump:  # for pstats, snakeviz or gprof2dot
        stats.dump_stats(dump)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflow", default="a", choices=["a", "b", "c", "c-call", "d"])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--top", type=int, default=15, help="functions listed with --cprofile")
    parser.add_argument("--dump", metavar="FILE", help="with --cprofile: write the pstats file")
    parser.add_argument("--variant", default="base", help="base, plan-cache, pool, a+b")
    parser.add_argument("--compare", help="variants to compare, e.g. base,plan-cache,pool")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.compare:
        compare(args)
        return 0
    apply_variant(args.variant)
    with tempfile.TemporaryDirectory(prefix="conv3n-webhook-cpu-") as data_dir:
        figures = asyncio.run(measure(args, data_dir))
    if args.json:
        print(json.dumps(figures))
        return 0
    print(
        f"workflow ({args.workflow}), {args.concurrency} concurrent: "
        f"{figures['cpu_us_median']:,.0f} µs CPU per webhook request (median of {args.rounds} "
        f"rounds of {args.requests}; best {figures['cpu_us_best']:,.0f} µs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
