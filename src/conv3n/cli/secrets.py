"""`conv3n secrets set/list/delete`: secrets encrypted at rest, usable as `$secrets.NAME`."""

import sys

import typer

from conv3n.cli import output
from conv3n.cli.store import with_runtime

app = typer.Typer(help="Secrets: encrypted at rest, used as $secrets.NAME.", no_args_is_help=True)


@app.command("set")
def set_secret(
    name: str = typer.Argument(..., help="Secret name ([A-Za-z_][A-Za-z0-9_]*)."),
) -> None:
    """Store a secret; the value is read from standard input (never from the command line).

    Examples:

      printf %s "$STRIPE_KEY" | conv3n secrets set stripe_key

      conv3n secrets set github_token     (asks for it on a terminal)
    """
    if sys.stdin.isatty():
        import getpass

        value = getpass.getpass(f"value of {name}: ")
    else:
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value
    if not value:
        raise typer.BadParameter("the value is empty", param_hint="standard input")
    created = with_runtime(lambda rt: rt.secrets.set(name, value))
    output.console().print(f"secret {name} {'stored' if created else 'replaced'}")


@app.command("list")
def list_secrets(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List secret names (values are never shown)."""
    rows = with_runtime(lambda rt: rt.secrets.names())
    if as_json:
        output.print_json(
            [{"name": r["name"], "updated_at": r["updated_at"].isoformat()} for r in rows]
        )
        return
    out = output.console()
    for row in rows:
        out.print(f"{row['name']}  (updated {row['updated_at']:%Y-%m-%d %H:%M})")
    if not rows:
        out.print("no secrets")


@app.command("delete")
def delete_secret(name: str = typer.Argument(..., help="Secret name.")) -> None:
    """Delete a secret."""
    with_runtime(lambda rt: rt.secrets.delete(name))
    output.console().print(f"secret {name} deleted")
