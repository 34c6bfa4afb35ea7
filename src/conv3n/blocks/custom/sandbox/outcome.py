"""What a sandbox reply means: the node's data, or a BlockError that says what went wrong.

Pure: no I/O. `result(reply, limits)` returns the value and the new `$vars` (None if the code
left them alone) or raises. Every error's details carry what the code printed (`output`).
"""

from typing import Any

from conv3n.blocks.custom.sandbox import pool
from conv3n.errors import NodeTimeout
from conv3n.model import JSON
from conv3n.sdk import BlockError


def _details(reply: pool.Reply, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    details = dict(extra or {})
    details["output"] = reply.output
    if reply.truncated:
        details["output_truncated"] = True
    return details


def _died(reply: pool.Reply, limits: pool.Limits) -> BlockError:
    if reply.status == "timeout":
        return NodeTimeout(
            f"the code did not finish within timeout_ms={limits.timeout_ms} ms; its process "
            "was killed",
            details=_details(reply, {"limit": "timeout_ms", "timeout_ms": limits.timeout_ms}),
        )
    if reply.signal in ("SIGXCPU", "SIGPROF"):  # the rlimit of a fork, a warm process's timer
        return BlockError(
            f"the code used more than its CPU time limit of {limits.cpu_s} s (cpu_ms); its "
            "process was killed",
            details=_details(reply, {"limit": "cpu_ms", "cpu_s": limits.cpu_s}),
        )
    if reply.signal is not None:
        cause = (
            f" (possibly for exceeding memory_mb={limits.memory_mb})"
            if reply.signal == "SIGKILL"
            else ""
        )
        return BlockError(
            f"the code's process died from {reply.signal}{cause} before returning a result; "
            "the next call gets a fresh process",
            details=_details(reply, {"signal": reply.signal}),
        )
    return BlockError(
        f"the code's process exited with status {reply.code} before returning a result",
        details=_details(reply, {"exit_code": reply.code}),
    )


def result(reply: pool.Reply, limits: pool.Limits) -> tuple[JSON, dict[str, JSON] | None]:
    """The value `main` returned and the `$vars` it left (None: unchanged).

    Raises:
        NodeTimeout: the wall-clock limit was reached.
        BlockError: any other failure, with a message naming the limit, the error and the
            user's line, and details holding the traceback and the output.
    """
    body = reply.body
    if not isinstance(body, dict) or reply.status != "exited":
        raise _died(reply, limits)
    if body.get("ok") is True:
        new_vars = body.get("vars")
        if new_vars is not None and not isinstance(new_vars, dict):
            raise BlockError(
                f"ctx.vars must stay a dict, the code left a {type(new_vars).__name__}",
                details=_details(reply),
            )
        return body.get("value"), new_vars
    error = body.get("error")
    if not isinstance(error, dict):
        raise BlockError("the sandbox sent a malformed reply", details=_details(reply))
    kind = str(error.get("kind"))
    message = str(error.get("message"))
    raw = error.get("details")
    extra: dict[str, Any] = raw if isinstance(raw, dict) else {}
    extra["kind"] = kind
    if kind == "memory":
        message = f"the code exceeded memory_mb={limits.memory_mb} (MemoryError)"
        extra["limit"] = "memory_mb"
    raise BlockError(message, retryable=False, details=_details(reply, extra))
