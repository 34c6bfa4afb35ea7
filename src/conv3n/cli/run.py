"""`conv3n run FILE`: run a workflow once, no server needed."""

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from conv3n.cli import output
from conv3n.errors import InvalidInput, WorkflowInvalid, WorkflowNotFound
from conv3n.model import JSON

if TYPE_CHECKING:
    from conv3n.compiler import Plan
    from conv3n.model import ExecutionRecord
    from conv3n.sdk import BlockRegistry


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
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise InvalidInput(f"cannot read input file {path}: {reason}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    except RecursionError:
        raise InvalidInput(f"{source} nests too deeply") from None


def run(
    file: Path = typer.Argument(
        ..., help="Workflow file (.yaml, .yml or .json).", show_default=False, metavar="FILE"
    ),
    input: str | None = typer.Option(
        None,
        "--input",
        "-i",
        help="The workflow's $input: JSON text, @file.json, or - to read standard input.",
        metavar="JSON|@FILE|-",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the execution record (SPEC §6) as JSON.", metavar=""
    ),
    store: bool = typer.Option(
        False,
        "--store",
        help="Record the execution in the database (CONV3N_DATA_DIR or CONV3N_DATABASE_URL): "
        "`conv3n executions` lists it, and a crash is resumed by `conv3n executions resume`.",
        metavar="",
    ),
    idempotency_key: str | None = typer.Option(
        None,
        "--idempotency-key",
        help="Run at most once per key: a key seen before returns that execution's record "
        "(implies --store).",
        metavar="KEY",
    ),
) -> None:
    """Run a workflow once and show each node's status, duration, attempts and the output.

    No server or database is needed. Exit code 0 when the execution succeeds, 1 when it
    fails (a node failed with `on_error: fail`, a timeout), 2 when the workflow or the
    arguments are invalid (every problem is listed, with its place).

    Examples:

    ```
    conv3n run examples/hello.yaml --input '{"name": "Ada"}'
    conv3n run wf.yaml --input @payload.json
    echo '{"n": 3}' | conv3n run wf.yaml --input -
    conv3n run wf.yaml --json | jq .output
    conv3n run wf.yaml --store --idempotency-key order-42
    ```
    """
    from conv3n.runtime import Settings, block_registry, compile_file, run_plan

    payload = parse_input(input)
    settings = Settings.from_env()
    registry = block_registry(settings)
    try:
        plan = compile_file(file, registry)
    except WorkflowNotFound as exc:
        raise InvalidInput(exc.message) from None
    except WorkflowInvalid as exc:
        if as_json:
            output.print_json({"error": exc.to_info().model_dump()})
        else:
            output.problems(str(file), exc.problems, stderr=True)
        raise typer.Exit(2) from None
    if store or idempotency_key is not None:
        record = asyncio.run(_run_stored(plan, payload, idempotency_key, registry))
    else:
        record = asyncio.run(run_plan(plan, payload, settings=settings, registry=registry))
    if as_json:
        output.print_json(record.model_dump(mode="json"))
    else:
        output.record_summary(record)
    raise typer.Exit(0 if record.status.value == "success" else 1)


async def _run_stored(
    plan: "Plan", payload: JSON, idempotency_key: str | None, registry: "BlockRegistry"
) -> "ExecutionRecord":
    from conv3n.runtime.service import Runtime

    async with Runtime(registry=registry) as runtime:
        return await runtime.execute(plan, payload, idempotency_key=idempotency_key)
