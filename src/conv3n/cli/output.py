"""Rendering for the terminal: node tables, problem lists, JSON."""

import json
import sys
from typing import TYPE_CHECKING

from conv3n.model import JSON, ExecutionRecord, Problem

if TYPE_CHECKING:
    from rich.console import Console

_STATUS_STYLE = {
    "success": "green",
    "error": "red",
    "skipped": "dim",
    "cancelled": "yellow",
    "pending": "dim",
    "running": "cyan",
    "waiting": "cyan",
}


def console(stderr: bool = False) -> "Console":
    """A rich console (colour only on a terminal)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def styled_status(status: str) -> str:
    """A status as rich markup in its colour (`[green]success[/]`)."""
    style = _STATUS_STYLE.get(status, "")
    return f"[{style}]{status}[/]" if style else status


def print_json(value: JSON) -> None:
    """Plain JSON on stdout (for pipes and --json)."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def duration(ms: float | None) -> str:
    """A duration readable at every scale: `0.021 ms`, `3.40 ms`, `812.5 ms`, `2.31 s`.

    >>> duration(0.0213), duration(12.345), duration(2310.0)
    ('0.021 ms', '12.3 ms', '2.31 s')
    """
    if ms is None:
        return "-"
    if ms < 1:
        return f"{ms:.3f} ms"
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms / 1000:.2f} s"


def record_summary(record: ExecutionRecord) -> None:
    """A table of nodes (status, duration, attempts), then the output or the error."""
    from rich.markup import escape
    from rich.table import Table

    out = console()
    table = Table(title=None, show_edge=False, pad_edge=False, box=None)
    table.add_column("node")
    table.add_column("status")
    table.add_column("duration", justify="right")
    table.add_column("attempts", justify="right")
    for node_id, node in record.nodes.items():
        table.add_row(
            escape(node_id),
            styled_status(node.status.value),
            duration(node.duration_ms),
            str(node.attempts) if node.attempts else "-",
        )
    out.print(table)
    failed = [(node_id, node.error) for node_id, node in record.nodes.items() if node.error]
    if failed:
        out.print("\nnode errors:")
        for node_id, error in failed:
            out.print(
                f"  [bold]{escape(node_id)}[/]: [red]{escape(error.type)}[/]: "
                f"{escape(error.message)}"
            )
    out.print(
        f"\nexecution [bold]{record.execution_id}[/]: {styled_status(record.status.value)} "
        f"in {duration(record.duration_ms)}"
    )
    if record.error is not None:
        where = f" (node {record.error.node})" if record.error.node else ""
        out.print(f"[red]{escape(f'{record.error.type}{where}: {record.error.message}')}[/]")
    else:
        out.print("output:")
        sys.stdout.flush()
        print_json(record.output)


def problems(path: str, found: list[Problem], *, stderr: bool = False) -> None:
    """`FILE: N problems` and one indented `place: message` line per problem."""
    from rich.markup import escape

    out = console(stderr=stderr)
    count = f"{len(found)} problem{'s' if len(found) != 1 else ''}"
    out.print(f"[red]{escape(path)}: invalid, {count}[/]")
    width = max((len(p.where) for p in found), default=0)
    for problem in found:
        place = problem.where.ljust(min(width, 40))
        out.print(f"  [bold]{escape(place)}[/]  {escape(problem.message)}")
