"""`conv3n run FILE`: run a workflow once, no server needed."""

import asyncio
import json
from pathlib import Path

import typer

from conv3n.cli import output
from conv3n.errors import InvalidInput, WorkflowInvalid
from conv3n.model import JSON


def parse_input(value: str | None) -> JSON:
    """`--input` as JSON text, or `@path` to a JSON file, or `-` for stdin."""
    if value is None:
        return None
    text = value
    source = "--input"
    if value == "-":
        text = typer.get_text_stream("stdin").read()
        source = "standard input"
    elif value.startswith("@"):
        path = Path(value[1:])
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read input file {path}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None


def run(
    file: Path = typer.Argument(
        ..., help="Workflow file (.yaml, .yml or .json).", show_default=False
    ),
    input: str | None = typer.Option(
        None, "--input", "-i", help="The workflow's $input: JSON text, @file.json, or - for stdin."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the execution record as JSON."),
) -> None:
    """Run a workflow once and show each node's status and the output.

    Exit code 0 on success, 1 when the execution fails, 2 when the workflow or the
    arguments are invalid.

    Examples:

      conv3n run examples/hello.yaml --input '{"name": "Ada"}'

      conv3n run wf.yaml --input @payload.json --json | jq .output
    """
    from conv3n.runtime import run_file

    payload = parse_input(input)
    try:
        record = asyncio.run(run_file(file, payload))
    except WorkflowInvalid as exc:
        if as_json:
            output.print_json({"error": exc.to_info().model_dump()})
        else:
            output.problems(str(file), exc.problems)
        raise typer.Exit(2) from None
    if as_json:
        output.print_json(record.model_dump(mode="json"))
    else:
        output.record_summary(record)
    raise typer.Exit(0 if record.status.value == "success" else 1)
