"""`conv3n blocks` and `conv3n schema`: what can be written in a workflow."""

import typer

from conv3n.cli import output


def blocks(
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Every block with its type, description, ports and config JSON Schema.",
        metavar="",
    ),
) -> None:
    """List the installed block types with their output ports (with --json: config schemas).

    Examples:

    ```
    conv3n blocks
    conv3n blocks --json | jq '.[] | select(.type == "std/http_request") | .config_schema'
    ```
    """
    from rich.markup import escape

    from conv3n.runtime import Settings, discover_blocks

    registry, problems = discover_blocks(Settings.from_env())
    for problem in problems:
        output.console(stderr=True).print(
            f"[yellow]warning:[/] skipped a block manifest: {escape(problem)}"
        )
    if as_json:
        from conv3n.runtime import describe_blocks

        output.print_json(describe_blocks(registry))
        return
    from rich.table import Table

    table = Table(box=None, show_edge=False)
    table.add_column("type", style="bold")
    table.add_column("ports")
    table.add_column("description")
    for name, spec in registry:
        ports = ", ".join(spec.ports) + (" (+ per config)" if spec.ports_from_config else "")
        table.add_row(name, ports, spec.description.splitlines()[0] if spec.description else "")
    output.console().print(table)


def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of the workflow document.

    Point your editor at it for completion in workflow files, or check documents in CI.
    The schema covers the document's shape; `conv3n validate` also checks block configs,
    connections, cycles and expressions.

    Examples:

    ```
    conv3n schema > conv3n.schema.json
    # VS Code (YAML extension), first line of a workflow file:
    # yaml-language-server: $schema=./conv3n.schema.json
    ```
    """
    from conv3n.model import Workflow

    document = Workflow.model_json_schema(by_alias=True)
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "conv3n workflow"
    output.print_json(document)
