"""Benchmarks of the runnable core (issue 2): engine overhead, expressions, loops, CLI start.

    python bench/engine.py            # prints the figures and rewrites bench/RESULTS.md's section

Each figure is the best of several rounds (the least disturbed by the machine), reported
beside its target. No figure here is asserted by a test.
"""

import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conv3n import expr
from conv3n.compiler import compile_workflow, load_workflow
from conv3n.engine import Engine
from conv3n.sdk import BlockRegistry

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = BlockRegistry.discover()


@dataclass
class Figure:
    """One measured figure and its target."""

    name: str
    value: float
    unit: str
    target: str
    met: bool


def chain(n: int) -> dict[str, Any]:
    nodes = [{"id": f"n{i}", "type": "std/noop"} for i in range(n)]
    edges = [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(n - 1)]
    return {"version": 1, "nodes": nodes, "connections": edges}


def fan_out(n: int) -> dict[str, Any]:
    nodes = [{"id": "start", "type": "std/noop"}]
    nodes += [{"id": f"n{i}", "type": "std/noop"} for i in range(n)]
    edges = [{"from": "start", "to": f"n{i}"} for i in range(n)]
    return {"version": 1, "nodes": nodes, "connections": edges}


def loop(n: int) -> dict[str, Any]:
    body = {
        "nodes": [
            {
                "id": "double",
                "type": "std/transform",
                "config": {"template": {"value": "{{ $item * 2 }}"}},
            }
        ]
    }
    config = {"items": f"{{{{ range({n}) }}}}", "body": body}
    return {"version": 1, "nodes": [{"id": "each", "type": "std/loop", "config": config}]}


async def best_run_s(document: dict[str, Any], rounds: int = 7) -> float:
    """Best wall time of `rounds` executions of a compiled workflow on one warm engine."""
    plan = compile_workflow(load_workflow(document), REGISTRY)
    best = float("inf")
    async with Engine() as engine:
        for _ in range(rounds):
            start = time.perf_counter()
            record = await engine.execute(plan, {"x": 1})
            best = min(best, time.perf_counter() - start)
            if record.status != "success":
                raise SystemExit(f"benchmark workflow failed: {record.error}")
    return best


def evaluations_per_s() -> float:
    expression = expr.compile_config("{{ $node.a.data.x + 1 }}")
    scope = expr.Scope(node={"a": {"data": {"x": 41}}})
    render = expression.render
    number = 500_000
    best = min(timeit.repeat(lambda: render(scope), number=number, repeat=5))
    return number / best


def cli_run_s(rounds: int = 7) -> float:
    """Median wall time of `conv3n run` on a 5-node workflow, interpreter start included."""
    workflow = ROOT / "bench" / "five_nodes.yaml"
    command = [sys.executable, "-m", "conv3n", "run", str(workflow), "--json"]
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(progress: Callable[[str], None]) -> list[Figure]:
    figures = []
    progress("engine: 1,000-node chain")
    per_node = asyncio.run(best_run_s(chain(1000))) / 1000 * 1e6
    figures.append(
        Figure(
            "engine overhead, 1,000-node chain of std/noop",
            per_node,
            "µs/node",
            "≤ 25 µs/node",
            per_node <= 25,
        )
    )
    progress("engine: 1,000-wide fan-out")
    per_node = asyncio.run(best_run_s(fan_out(1000))) / 1001 * 1e6
    figures.append(
        Figure(
            "engine overhead, 1,000-wide fan-out of std/noop",
            per_node,
            "µs/node",
            "≤ 25 µs/node",
            per_node <= 25,
        )
    )
    progress("expressions")
    rate = evaluations_per_s()
    figures.append(
        Figure(
            "`{{ $node.a.data.x + 1 }}` rendered",
            rate,
            "evaluations/s",
            "≥ 500,000/s",
            rate >= 500_000,
        )
    )
    progress("std/loop of 10,000 items")
    seconds = asyncio.run(best_run_s(loop(10_000), rounds=5))
    figures.append(
        Figure(
            "std/loop, 10,000 items x one std/transform", seconds, "s", "≤ 0.5 s", seconds <= 0.5
        )
    )
    progress("conv3n run (subprocess)")
    seconds = cli_run_s()
    figures.append(
        Figure(
            "`conv3n run` of a 5-node workflow, wall incl. interpreter start",
            seconds,
            "s",
            "≤ 0.4 s",
            seconds <= 0.4,
        )
    )
    return figures


def format_value(figure: Figure) -> str:
    if figure.value >= 1000:
        return f"{figure.value:,.0f} {figure.unit}"
    return f"{figure.value:.3g} {figure.unit}"


def report(figures: list[Figure]) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [
        "## Core engine (issue 2)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}, by `python bench/engine.py` (best of several "
        "rounds; the CLI figure is a median of 7 runs).",
        "",
        "| figure | measured | target | met |",
        "|---|---|---|---|",
    ]
    lines.extend(
        f"| {figure.name} | {format_value(figure)} | {figure.target} | "
        f"{'yes' if figure.met else '**no**'} |"
        for figure in figures
    )
    return "\n".join(lines) + "\n"


def write_section(section: str, results: Path) -> None:
    """Replace this benchmark's section of RESULTS.md (other benchmarks keep theirs)."""
    header = section.splitlines()[0]
    text = results.read_text(encoding="utf-8") if results.exists() else "# Benchmark results\n"
    parts = text.split("\n## ")
    kept = [parts[0].rstrip("\n")] + [
        "## " + p.rstrip("\n") for p in parts[1:] if not ("## " + p).startswith(header)
    ]
    results.write_text("\n\n".join([*kept, section.rstrip("\n")]) + "\n", encoding="utf-8")


def main() -> None:
    figures = measure(lambda step: print(f"… {step}", file=sys.stderr, flush=True))
    section = report(figures)
    print(section)
    write_section(section, ROOT / "bench" / "RESULTS.md")


if __name__ == "__main__":
    main()
