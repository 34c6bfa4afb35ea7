"""`conv3n validate FILE...`: check workflows, listing every problem with its place."""

from pathlib import Path

import typer

from conv3n.cli import output


def validate(
    files: list[Path] = typer.Argument(..., help="Workflow files to check.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print {file: [problems]} as JSON."),
) -> None:
    """Check workflow files without running them.

    Reports unknown block types, bad ids, connections to missing nodes or ports, cycles,
    config that does not match its block's schema, expressions that do not parse and
    $node references to missing nodes, each with its exact place (nodes[2].config.url).
    Exit code 0 when every file is valid, 2 otherwise.
    """
    from conv3n.runtime import validate_files
    from conv3n.sdk import BlockRegistry

    results = validate_files(files, BlockRegistry.discover())
    invalid = {path: found for path, found in results.items() if found}
    if as_json:
        output.print_json({str(p): [x.to_json() for x in found] for p, found in results.items()})
    else:
        out = output.console()
        for path, found in results.items():
            if found:
                output.problems(str(path), found)
            else:
                out.print(f"[green]{path}: valid[/]")
    raise typer.Exit(2 if invalid else 0)
