"""`conv3n workflows import/export/list`: stored workflows as a folder of YAML files."""

from pathlib import Path

import typer

from conv3n.cli import output
from conv3n.cli.store import with_runtime

app = typer.Typer(help="Stored workflows: import, export, list.", no_args_is_help=True)


@app.command("import")
def import_folder(
    folder: Path = typer.Argument(..., help="A folder of .yaml/.yml/.json workflows."),
) -> None:
    """Store every workflow of a folder (a changed document becomes a new version).

    The workflow id is the document's `id`, else the file name without extension.
    """
    stored = with_runtime(lambda rt: rt.import_folder(folder))
    out = output.console()
    for item in stored:
        out.print(f"{item.id}: version {item.version}")
    out.print(f"imported {len(stored)} workflow{'s' if len(stored) != 1 else ''}")


@app.command("export")
def export_folder(
    folder: Path = typer.Argument(..., help="Where to write <id>.yaml files."),
) -> None:
    """Write every stored workflow (latest version) to a folder; importing it back is exact."""
    written = with_runtime(lambda rt: rt.export_folder(folder))
    output.console().print(
        f"exported {len(written)} workflow{'s' if len(written) != 1 else ''} to {folder}"
    )


@app.command("list")
def list_workflows(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List stored workflows with their latest version."""
    from conv3n.storage import workflows

    items = with_runtime(lambda rt: workflows.list_page(rt.db, limit=1000))
    if as_json:
        output.print_json(
            [
                {"id": w.id, "name": w.workflow.name, "version": w.version, "active": w.active}
                for w in items
            ]
        )
        return
    out = output.console()
    for item in items:
        out.print(f"{item.id}  v{item.version}  {item.workflow.name or ''}")
