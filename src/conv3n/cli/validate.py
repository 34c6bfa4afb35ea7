"""`conv3n validate FILE...`: check workflows, listing every problem with its place."""

from pathlib import Path

import typer

from conv3n.cli import output


def validate(
    files: list[Path] = typer.Argument(
        ..., help="Workflow files to check.", show_default=False, metavar="FILE..."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print {file: [{path, message}]} as JSON.", metavar=""
    ),
) -> None:
    """Check workflow files without running them, listing every problem at once.

    Reports unknown block types, bad or duplicate ids, connections to missing nodes or
    ports, cycles, config that does not match its block's schema, expressions that do not
    parse, $node references to missing nodes and $item/$index outside a std/loop body,
    each with its exact place (`nodes[2].config.url`). Exit code 0 when every file is
    valid, 2 otherwise.

    Examples:

    ```
    conv3n validate examples/*.yaml
    conv3n validate wf.yaml --json | jq '.["wf.yaml"][].path'
    ```
    """
    from conv3n.runtime import Settings, block_registry, validate_files

    results = validate_files(files, block_registry(Settings.from_env()))
    invalid = {path: found for path, found in results.items() if found}
    if as_json:
        output.print_json({str(p): [x.to_json() for x in found] for p, found in results.items()})
        raise typer.Exit(2 if invalid else 0)
    from rich.markup import escape

    out = output.console()
    for path, found in results.items():
        if found:
            output.problems(str(path), found)
        else:
            out.print(f"[green]{escape(str(path))}: valid[/]")
    if len(results) > 1:
        total = sum(len(found) for found in invalid.values())
        out.print(
            f"\n{len(results)} files: {len(results) - len(invalid)} valid, "
            f"{len(invalid)} invalid ({total} problem{'s' if total != 1 else ''})"
        )
    raise typer.Exit(2 if invalid else 0)
