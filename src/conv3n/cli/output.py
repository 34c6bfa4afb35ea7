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


def print_json(value: JSON) -> None:
    """Plain JSON on stdout (for pipes and --json)."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def record_summary(record: ExecutionRecord) -> None:
    """A table of nodes (status, duration, attempts), the output or the error."""
    from rich.table import Table

    out = console()
    table = Table(title=None, show_edge=False, pad_edge=False, box=None)
    table.add_column("node")
    table.add_column("status")
    table.add_column("duration", justify="right")
    table.add_column("attempts", justify="right")
    for node_id, node in record.nodes.items():
        style = _STATUS_STYLE.get(node.status.value, "")
        duration = f"{node.duration_ms:.1f} ms" if node.duration_ms is not None else "-"
        table.add_row(
            node_id,
            f"[{style}]{node.status.value}[/]",
            duration,
            str(node.attempts) if node.attempts else "-",
        )
        if node.error is not None:
            table.add_row("", f"[red]  {node.error.type}: {node.error.message}[/]", "", "")
    out.print(table)
    style = _STATUS_STYLE.get(record.status.value, "")
    total = f"{record.duration_ms:.1f} ms" if record.duration_ms is not None else "-"
    out.print(
        f"\nexecution [bold]{record.execution_id}[/]: [{style}]{record.status.value}[/] in {total}"
    )
    if record.error is not None:
        where = f" (node {record.error.node})" if record.error.node else ""
        out.print(f"[red]{record.error.type}{where}: {record.error.message}[/]")
    else:
        out.print("output:")
        print_json(record.output)


def problems(path: str, found: list[Problem]) -> None:
    """`FILE: invalid` and one line per problem, on stderr."""
    err = console(stderr=True)
    err.print(f"[red]{path}: {len(found)} problem{'s' if len(found) != 1 else ''}[/]")
    for problem in found:
        err.print(f"  [bold]{problem.where}[/]: {problem.message}", markup=True)
