"""conv3n_block: write a conv3n process block in Python (zero dependencies).

    import conv3n_block

    def uppercase(request):
        return request.input.upper()

    if __name__ == "__main__":
        conv3n_block.run(uppercase)

`run(handler)` reads one request per line from stdin and answers each on stdout until stdin
closes, so the same program serves both manifest modes: `once` (conv3n closes stdin after one
request) and `worker` (stdin stays open). While a handler runs, `print()` goes to stderr, which
conv3n puts in the node's log. The protocol is described in conv3n's docs/process-blocks.md.
"""

from __future__ import annotations

import json
import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any

    Handler = Callable[["Request"], Any]

# Only json, os and sys at start-up (annotations are not evaluated): a `once` block starts a
# process per call, so every import counts (asyncio alone costs more than the interpreter);
# the rest load when first needed.

__all__ = ["BlockError", "Port", "Request", "handler", "run"]
__version__ = "0.1.0"


class BlockError(Exception):
    """Fail the node with this message. `retryable=True` lets the node's retry policy try
    again; `details` (JSON) is kept in the node's error."""

    def __init__(
        self, message: str, *, retryable: bool = False, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.details = dict(details or {})


class Port:
    """Return `Port("name", data)` to send the data to one of the block's named ports."""

    __slots__ = ("data", "port")

    def __init__(self, port: str, data: Any = None) -> None:
        self.port = port
        self.data = data

    def __repr__(self) -> str:
        return f"Port({self.port!r}, {self.data!r})"


class Request:
    """One run of the block: its config, its input and where it runs."""

    __slots__ = (
        "_out",
        "attempt",
        "config",
        "execution_id",
        "id",
        "idempotency_key",
        "input",
        "node_id",
    )

    def __init__(
        self,
        id: str,
        config: dict[str, Any],
        input: Any,
        node_id: str = "",
        execution_id: str = "",
        idempotency_key: str = "",
        attempt: int = 1,
        _out: IO[str] | None = None,
    ) -> None:
        self.id = id
        self.config = config
        self.input = input
        self.node_id = node_id
        self.execution_id = execution_id
        self.idempotency_key = idempotency_key
        self.attempt = attempt
        self._out = _out

    def __repr__(self) -> str:
        return f"Request(id={self.id!r}, node_id={self.node_id!r}, attempt={self.attempt})"

    def log(self, message: str, level: str = "info") -> None:
        """A line in the node's log (level: debug, info, warning or error)."""
        if self._out is not None:
            _write(self._out, {"id": self.id, "log": str(message), "level": level})


def handler(function: Handler) -> Handler:
    """Mark a function as the block's handler and, when its module is run as a program, serve
    requests with it (`@handler` on top of `def main(request)` replaces the `__main__` check)."""
    if getattr(function, "__module__", None) == "__main__":
        run(function)
    return function


def run(function: Handler, *, stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> None:
    """Answer requests from stdin with `function(request)` until stdin closes.

    The handler returns the node's data (any JSON value) or a `Port`; it may be `async def`.
    A `BlockError` fails the node with its message; any other exception fails it too, with the
    traceback on stderr.
    """
    source = stdin if stdin is not None else _utf8(sys.stdin)
    out = stdout if stdout is not None else _protocol_stdout()
    saved = sys.stdout
    # the protocol owns stdout: a handler's print() must not break it, so it goes to stderr
    sys.stdout = sys.stderr
    loop: Any = None
    try:
        for line in source:
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                sys.stderr.write("conv3n_block: ignored a request that is not JSON\n")
                continue
            if not isinstance(message, dict) or not isinstance(message.get("id"), str):
                sys.stderr.write("conv3n_block: ignored a request without an id\n")
                continue
            if message.get("type", "run") != "run":
                _fail(out, message["id"], f"unknown request type {message.get('type')!r}")
                continue
            request = Request(
                id=message["id"],
                config=message.get("config") or {},
                input=message.get("input"),
                node_id=str(message.get("node_id", "")),
                execution_id=str(message.get("execution_id", "")),
                idempotency_key=str(message.get("idempotency_key", "")),
                attempt=int(message.get("attempt", 1)),
                _out=out,
            )
            try:
                result = function(request)
                if hasattr(result, "__await__"):
                    if loop is None:
                        import asyncio

                        loop = asyncio.new_event_loop()
                    result = loop.run_until_complete(_awaited(result))
            except BlockError as exc:
                _fail(out, request.id, exc.message, exc.retryable, exc.details)
                continue
            except Exception as exc:  # noqa: BLE001 - any error of the handler fails the node
                import traceback

                traceback.print_exc(file=sys.stderr)
                name = type(exc).__name__
                _fail(out, request.id, f"{name}: {exc}", False, {"exception": name})
                continue
            answer: dict[str, Any] = {"id": request.id, "ok": True}
            if isinstance(result, Port):
                answer["data"] = result.data
                answer["port"] = result.port
            else:
                answer["data"] = result
            try:
                _write(out, answer)
            except (TypeError, ValueError) as exc:
                _fail(out, request.id, f"the handler's result is not JSON: {exc}")
    finally:
        sys.stdout = saved
        if loop is not None:
            loop.close()


def _utf8(stream: Any) -> Any:
    if hasattr(stream, "reconfigure"):
        stream.reconfigure(encoding="utf-8")
    return stream


def _protocol_stdout() -> IO[str]:
    """The protocol's own copy of stdout; file descriptor 1 then points at stderr, so that
    neither print() nor a program the handler starts can write into the protocol."""
    sys.stdout.flush()
    try:
        fd = os.dup(1)
        os.dup2(2, 1)
    except OSError:
        return _utf8(sys.stdout)  # type: ignore[no-any-return]
    return os.fdopen(fd, "w", encoding="utf-8", newline="\n")


async def _awaited(value: Any) -> Any:
    return await value


def _fail(
    out: IO[str],
    request_id: str,
    message: str,
    retryable: bool = False,
    details: dict[str, Any] | None = None,
) -> None:
    error = {"message": message or "failed", "retryable": bool(retryable), "details": details or {}}
    try:
        _write(out, {"id": request_id, "ok": False, "error": error})
    except (TypeError, ValueError):
        error["details"] = {}
        _write(out, {"id": request_id, "ok": False, "error": error})


def _write(out: IO[str], message: dict[str, Any]) -> None:
    text = json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    out.write(text + "\n")
    out.flush()
