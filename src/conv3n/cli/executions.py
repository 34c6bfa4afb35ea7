"""`conv3n executions list/show/retry/resume/prune`: the stored execution history."""

from datetime import datetime
from typing import TYPE_CHECKING

import typer

from conv3n.cli import output
from conv3n.cli.store import with_runtime
from conv3n.errors import InvalidInput

if TYPE_CHECKING:
    from conv3n.model import ExecutionRecord
    from conv3n.runtime.service import Runtime

app = typer.Typer(help="Stored executions: list, show, retry, resume.", no_args_is_help=True)


@app.command("list")
def list_executions(
    workflow: str | None = typer.Option(None, "--workflow", "-w", help="Only this workflow."),
    status: list[str] = typer.Option([], "--status", "-s", help="Only these statuses."),
    since: datetime | None = typer.Option(None, help="Created at or after (ISO 8601)."),
    limit: int = typer.Option(20, min=1, max=1000, help="How many (newest first)."),
    before: str | None = typer.Option(None, help="Page: executions older than this id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List executions, newest first."""
    from conv3n.model import ExecutionStatus

    try:
        statuses = [ExecutionStatus(s) for s in status]
    except ValueError:
        known = ", ".join(s.value for s in ExecutionStatus)
        raise typer.BadParameter(f"statuses are {known}", param_hint="--status") from None
    items = with_runtime(
        lambda rt: rt.list_executions(
            workflow_id=workflow, status=statuses or None, since=since, limit=limit, before=before
        )
    )
    if as_json:
        output.print_json([item.model_dump(mode="json") for item in items])
        return
    from rich.table import Table

    table = Table(box=None, show_edge=False)
    for column in ("execution", "workflow", "status", "mode", "started", "duration"):
        table.add_column(column)
    for item in items:
        duration = f"{item.duration_ms:.1f} ms" if item.duration_ms is not None else "-"
        started = f"{item.started_at:%Y-%m-%d %H:%M:%S}" if item.started_at else "-"
        table.add_row(
            item.execution_id,
            item.workflow_id or "-",
            output.styled_status(item.status.value),
            item.mode,
            started,
            duration,
        )
    output.console().print(table)


@app.command("show")
def show(
    execution_id: str = typer.Argument(..., help="Execution id."),
    as_json: bool = typer.Option(False, "--json", help="Print the full record as JSON."),
) -> None:
    """Show one execution: every node's status, duration and attempts, and the output."""
    record = with_runtime(lambda rt: rt.record(execution_id))
    if as_json:
        output.print_json(record.model_dump(mode="json"))
    else:
        output.record_summary(record)


@app.command("retry")
def retry(
    execution_id: str = typer.Argument(..., help="A failed execution's id."),
    as_json: bool = typer.Option(False, "--json", help="Print the new record as JSON."),
) -> None:
    """Re-run a failed execution from its failed nodes (earlier results are reused).

    Exit code 0 when the new execution succeeds, 1 when it fails again.
    """
    _finish(with_runtime(lambda rt: rt.retry(execution_id)), as_json)


@app.command("fork")
def fork(
    execution_id: str = typer.Argument(..., help="The execution to fork."),
    node: str = typer.Argument(..., help="Re-run from this node (it and everything after it)."),
    latest: bool = typer.Option(
        False, "--latest", help="Run on the workflow's newest version, not the one it ran."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the new record as JSON."),
) -> None:
    """Re-run an execution from a chosen node, reusing every earlier result.

    Handy after fixing a step: `conv3n executions fork ID transform --latest`.
    Exit code 0 when the new execution succeeds, 1 when it fails.
    """
    _finish(with_runtime(lambda rt: rt.fork(execution_id, node, latest=latest)), as_json)


@app.command("resume")
def resume(
    execution_id: str | None = typer.Argument(
        None, help="Resume this `waiting` execution now (std/wait gets --payload)."
    ),
    payload: str | None = typer.Option(
        None, help="The resume payload for std/wait: JSON text, @file.json, or - for stdin."
    ),
    node: str | None = typer.Option(None, help="Resume only this waiting std/wait node."),
    as_json: bool = typer.Option(False, "--json", help="Print the record as JSON."),
) -> None:
    """Without an id: finish executions a crash or restart interrupted, re-running only
    unfinished nodes, and executions parked by a long std/delay whose time has come.
    With an id: resume that `waiting` execution now, handing `--payload` to its std/wait.

    `conv3n serve` does the first by itself; run it by hand after a `conv3n run --store` was
    killed or parked. Example: `conv3n executions resume ID --payload '{"approved": true}'`.
    """
    if execution_id is not None:
        from conv3n.cli.run import parse_input

        data = parse_input(payload)
        _finish(with_runtime(lambda rt: rt.resume_now(execution_id, data, node=node)), as_json)
    if payload is not None or node is not None:
        raise InvalidInput("--payload and --node need an execution id")

    async def both(rt: "Runtime") -> list["ExecutionRecord"]:
        return [*await rt.resume_interrupted(), *await rt.resume_due()]

    records = with_runtime(both)
    out = output.console()
    for record in records:
        out.print(f"{record.execution_id}: {output.styled_status(record.status.value)}")
    out.print(f"resumed {len(records)} execution{'s' if len(records) != 1 else ''}")


@app.command("prune")
def prune() -> None:
    """Delete history past the retention settings (CONV3N_RETENTION_DAYS,
    CONV3N_RETENTION_PER_WORKFLOW) and shrink the SQLite file."""
    deleted = with_runtime(lambda rt: rt.prune())
    output.console().print(f"pruned {deleted} execution{'s' if deleted != 1 else ''}")


def _finish(record: "ExecutionRecord", as_json: bool) -> None:
    """Show a new execution's record and exit 0 if it succeeded, else 1."""
    if as_json:
        output.print_json(record.model_dump(mode="json"))
    else:
        output.record_summary(record)
    raise typer.Exit(0 if record.status.value == "success" else 1)
