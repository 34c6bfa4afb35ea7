"""Structured logs: every stdlib `logging` record rendered by structlog (SPEC §9).

conv3n logs through the standard library (`logging.getLogger("conv3n.…")`; a node's
`ctx.log` is `conv3n.node.<id>`), and so do uvicorn and the libraries it uses. `configure()`
puts one handler on the root logger whose `structlog.stdlib.ProcessorFormatter` turns each
record into an event dict, adds what the runtime bound for the current execution
(`execution_id`, `workflow_id`, via `bind_execution`), the node id of node loggers and any
`extra={...}` fields, masks secret values, and renders it: JSON lines, or colourful console
lines on a terminal.

Without `configure()` (the `conv3n run` CLI, tests) nothing changes: stdlib's defaults apply.
"""

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, MutableMapping
from contextvars import ContextVar, Token
from typing import Any, TextIO


@contextlib.contextmanager
def _hidden(module: str) -> Iterator[None]:
    """Imports of `module` inside fail (a `None` in `sys.modules`), unless it is loaded already."""
    hide = module not in sys.modules
    if hide:
        sys.modules[module] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if hide and module in sys.modules and sys.modules[module] is None:
            del sys.modules[module]


# structlog's `dev` and `tracebacks` modules import rich, when it is installed, for rich
# tracebacks and pretty-printed locals: about 100 ms and 5 MiB at every start of a server or
# a `conv3n run`. conv3n asks for neither: `format_exc_info` turns a traceback into plain
# text before any renderer sees it (so that the secrets in it are masked too). So structlog
# is imported with rich hidden and falls back to its plain formatting; the CLI imports rich
# itself, later, when it draws a table.
with _hidden("rich"):
    import structlog

NODE_LOGGER_PREFIX = "conv3n.node."
_STDLIB_KEYS = {"_record", "_from_structlog"}


class _Redaction:
    """The secret-masking function in use (set once the Runtime has loaded its secrets)."""

    value: Callable[[Any], Any] | None = None


_redaction = _Redaction()


def use_redactor(value: Callable[[Any], Any] | None) -> None:
    """Mask secret values in every log line with `value`, a function that masks every string
    in a JSON value (the Runtime's `redactor.value`); None stops masking."""
    _redaction.value = value


_execution: ContextVar[tuple[str, str | None] | None] = ContextVar("conv3n_execution", default=None)


class bind_execution:  # lower case: used like a function, `with bind_execution(...)`
    """Log lines inside (and in tasks started inside) carry these ids.

    One context variable for both ids, set and reset by a plain context manager: structlog's
    `bound_contextvars` costs about ten times more, on every execution.
    """

    __slots__ = ("_ids", "_token")

    def __init__(self, execution_id: str, workflow_id: str | None):
        self._ids = (execution_id, workflow_id)
        self._token: Token[tuple[str, str | None] | None] | None = None

    def __enter__(self) -> None:
        self._token = _execution.set(self._ids)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _execution.reset(self._token)
            self._token = None


def _execution_ids(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    """`execution_id` and `workflow_id` of the execution the line was logged in."""
    bound = _execution.get()
    if bound is not None:
        event.setdefault("execution_id", bound[0])
        event.setdefault("workflow_id", bound[1])
    return event


def _node_id(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    """`node_id` from a node's logger name (`conv3n.node.<id>`)."""
    name = event.get("logger")
    if isinstance(name, str) and name.startswith(NODE_LOGGER_PREFIX) and "node_id" not in event:
        event["node_id"] = name[len(NODE_LOGGER_PREFIX) :]
    return event


def _drop_noise(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    """uvicorn's duplicate `color_message` field."""
    event.pop("color_message", None)
    return event


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    """Mask secret values in every string of the event (message, fields, traceback); values
    that are not JSON become their `str()` first, so a secret cannot hide in a repr."""
    mask = _redaction.value
    if mask is None:
        return event
    for key, value in event.items():
        if key in _STDLIB_KEYS or isinstance(value, int | float | bool | None):
            continue
        if not isinstance(value, str | list | dict):
            value = str(value)
        event[key] = mask(value)
    return event


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        _execution_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _node_id,
        _drop_noise,
    ]


def configure(
    *, format: str | None = None, level: str = "info", stream: TextIO | None = None
) -> logging.Handler:
    """Route every log record through structlog to `stream` (stderr by default).

    Args:
        format: `json` or `console`; None picks console on a terminal and JSON otherwise.
        level: the least severe level written (`debug`, `info`, `warning`, `error`).

    Returns:
        The handler installed on the root logger (it replaces earlier ones).
    """
    out = stream or sys.stderr
    if format is None:
        format = "console" if _is_terminal(out) else "json"
    renderer: Any
    if format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_is_terminal(out))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # the traceback as text, so it is masked too
            _redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for chatty in ("alembic", "httpx", "httpcore"):  # a line per migration step or request
        logging.getLogger(chatty).setLevel(max(root.level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return handler


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
