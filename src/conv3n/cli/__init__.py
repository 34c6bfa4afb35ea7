"""The `conv3n` command line (typer). `main()` is the one place errors become exit codes.

Exit codes: 0 success, 1 execution error or missing thing, 2 invalid workflow or usage.
A user error never shows a traceback; set CONV3N_DEBUG=1 to see one for internal errors.
"""

import os
import sys

import typer

from conv3n.cli import blocks, db, executions, run, secrets, serve, validate, workflows

app = typer.Typer(
    name="conv3n",
    help="conv3n: fast, durable workflow automation for developers.\n\n"
    "Workflows are YAML or JSON graphs of blocks (HTTP calls, transforms, branches, loops, "
    "sub-workflows). Start with:\n\n"
    "```\n"
    'conv3n run examples/hello.yaml --input \'{"name": "Ada"}\'\n'
    "conv3n validate examples/*.yaml\n"
    "conv3n blocks\n"
    "```\n\n"
    "Exit codes: 0 success, 1 execution error, 2 invalid workflow or usage.\n\n"
    "Docs: docs/workflows.md, docs/cli.md, docs/blocks.md.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.command("run")(run.run)
app.command("validate")(validate.validate)
app.command("blocks")(blocks.blocks)
app.command("schema")(blocks.schema)
app.command("serve")(serve.serve)
app.add_typer(executions.app, name="executions")
app.add_typer(workflows.app, name="workflows")
app.add_typer(secrets.app, name="secrets")
app.add_typer(db.app, name="db")
app.command("backup")(db.backup)


def _print_version(value: bool) -> None:
    if value:
        from conv3n import __version__

        typer.echo(f"conv3n {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        is_eager=True,
        callback=_print_version,
        metavar="",
    ),
) -> None:
    """conv3n: fast, durable workflow automation for developers."""


def main() -> None:
    """Entry point of the `conv3n` console script."""
    from conv3n.errors import Conv3nError

    try:
        app(standalone_mode=True)
    except Conv3nError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("CONV3N_DEBUG"):
            raise
        typer.echo(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "(set CONV3N_DEBUG=1 to see the traceback)",
            err=True,
        )
        sys.exit(1)
