"""How a failed JavaScript call becomes the node's BlockError: a message that says what went
wrong and where in the user's code, and details holding the stack, the position and the console
output of the call."""

from typing import Any

from conv3n.blocks.custom.js.worker import WorkerFailure
from conv3n.sdk import BlockError

MAX_CONSOLE_LINES = 200


def console_texts(console: list[list[str]]) -> list[str]:
    """The captured console lines as text, the last MAX_CONSOLE_LINES of them."""
    return [entry[1] for entry in console[-MAX_CONSOLE_LINES:] if len(entry) == 2]


def _position(error: dict[str, Any]) -> str:
    line, column = error.get("line"), error.get("column")
    if line is None:
        return ""
    return f" at line {line}" + (f", column {column}" if column is not None else "")


def from_reply(error: dict[str, Any], console: list[list[str]], runtime: str) -> BlockError:
    """The error for a call that ran but failed (syntax, exception, export, result)."""
    kind = str(error.get("kind", "exception"))
    message = str(error.get("message", "unknown error"))
    details: dict[str, Any] = {"kind": kind, "runtime": runtime, "console": console_texts(console)}
    for key in ("line", "column", "source", "stack"):
        if error.get(key) is not None:
            details[key] = error[key]
    if kind == "syntax":
        text = f"the code does not parse{_position(error)}: {message}"
    elif kind == "exception":
        text = f"main() threw {message}{_position(error)}"
    else:
        text = message
    return BlockError(text, retryable=False, details=details)


def from_failure(failure: WorkerFailure) -> BlockError:
    """The error for a call whose worker was stopped (time, memory, exit, crash)."""
    details: dict[str, Any] = {"kind": failure.reason, "console": console_texts(failure.console)}
    if failure.runtime:
        details["runtime"] = failure.runtime
    if failure.exit_code is not None:
        details["exit_code"] = failure.exit_code
    if failure.stderr:
        details["stderr"] = failure.stderr[-2000:]
    return BlockError(
        f"{failure.message}; the worker was stopped",
        retryable=failure.reason in ("timeout", "start"),
        details=details,
    )
