"""Benchmark of process blocks (issue 5, point 7): the cost of one call through the engine.

    python bench/process_blocks.py      # prints a markdown table

A std/loop runs a process block N times (the Python SDK's protocol, a trivial handler) in
`once` mode (a process per call) and in `worker` mode (reused processes), one call at a time
and 8 at once. Each figure is the best of 3 rounds. No figure here is asserted by a test.
"""

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from conv3n.runtime import Settings, discover_blocks
from conv3n.testing import run_workflow

ROOT = Path(__file__).resolve().parent.parent
HANDLER = """\
import conv3n_block


def main(request):
    return request.config["n"] * 2


if __name__ == "__main__":
    conv3n_block.run(main)
"""


def write_block(root: Path, name: str, mode: str, pool_size: int) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "main.py").write_text(HANDLER)
    manifest = {
        "type": f"bench/{name}",
        "command": [sys.executable, "main.py"],
        "mode": mode,
        "pool_size": pool_size,
        "config_schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "env": {"PYTHONPATH": str(ROOT / "sdk" / "python" / "src")},
    }
    (folder / "block.json").write_text(json.dumps(manifest))


def loop(block_type: str, items: int, concurrency: int) -> dict[str, Any]:
    body = {"nodes": [{"id": "call", "type": block_type, "config": {"n": "{{ $item }}"}}]}
    config = {"items": list(range(items)), "concurrency": concurrency, "body": body}
    return {"version": 1, "nodes": [{"id": "each", "type": "std/loop", "config": config}]}


async def measure(registry: Any, block_type: str, items: int, concurrency: int) -> float:
    """Calls per second, best of 3 rounds (each round on a fresh engine: starts included)."""
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        record = await run_workflow(loop(block_type, items, concurrency), registry=registry)
        elapsed = time.perf_counter() - started
        if record.status.value != "success":
            raise SystemExit(f"{block_type}: {record.error}")
        best = max(best, items / elapsed)
    return best


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "blocks"
        cases = [
            ("once_1", "once", 1, 20, 1),
            ("once_8", "once", 8, 40, 8),
            ("worker_1", "worker", 1, 500, 1),
            ("worker_8", "worker", 8, 1000, 8),
        ]
        for name, mode, pool, _, _ in cases:
            write_block(root, name, mode, pool)
        registry, problems = discover_blocks(Settings(data_dir=Path(tmp), blocks_dir_path=root))
        assert not problems, problems
        print("| mode | pool_size | concurrent calls | calls | calls/s | ms per call |")
        print("|---|---|---|---|---|---|")
        for name, mode, pool, items, concurrency in cases:
            rate = await measure(registry, f"bench/{name}", items, concurrency)
            per_call = 1000 / rate
            print(f"| {mode} | {pool} | {concurrency} | {items} | {rate:,.0f} | {per_call:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
