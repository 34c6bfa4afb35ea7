"""One call of user code, inside the forked call process: compile, run `main(ctx)`, encode.

Standard library only (the worker imports it by path). `run(body)` returns the reply bytes:
`{"ok": true, "value": ..., "vars": {...}?}` or `{"ok": false, "error": {"kind", "message",
"details"}}`. Kinds: syntax, no_main, exception, memory, not_json, too_large, bad_request.
"""

import json
import math
import types
from typing import Any

FILENAME = "<code>"


def _error(kind: str, message: str, **details: Any) -> bytes:
    reply = {"ok": False, "error": {"kind": kind, "message": message, "details": details}}
    return json.dumps(reply, ensure_ascii=False, default=repr).encode()


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if key.isidentifier() and key.isascii():
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key, ensure_ascii=False)}]"


def find_non_json(value: Any, path: str, depth: int = 0) -> tuple[str, str] | None:
    """The path and type name of the first value JSON cannot hold, or None."""
    if depth > 900:
        return path, "nesting deeper than 900 levels"
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, f"float {value!r}")
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_non_json(item, _path(path, index), depth + 1)
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}[{key!r}]", f"key of type {type(key).__name__}"
            found = find_non_json(item, _path(path, key), depth + 1)
            if found:
                return found
        return None
    return path, type(value).__name__


def encode(value: Any, root: str) -> bytes | tuple[str, str]:
    """`value` as UTF-8 JSON, or (path, type) of what JSON cannot hold."""
    try:
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        found = find_non_json(value, root)
        return found if found else (root, f"unencodable value ({exc})")


def _user_traceback(exc: BaseException) -> types.TracebackType | None:
    """The traceback from the first frame of the user's code on (the sandbox's frames cut)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != FILENAME:
        tb = tb.tb_next
    return tb


def _frames(tb: types.TracebackType | None) -> list[dict[str, Any]]:
    traceback = _traceback()
    return [
        {"file": frame.filename, "line": frame.lineno, "function": frame.name, "text": frame.line}
        for frame in traceback.extract_tb(tb)
    ]


def _exception_error(exc: BaseException) -> bytes:
    traceback = _traceback()
    tb = _user_traceback(exc)
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    frames = _frames(tb)
    user = [frame for frame in frames if frame["file"] == FILENAME]
    where = f" (line {user[-1]['line']}, in {user[-1]['function']})" if user else ""
    name = type(exc).__qualname__
    message = f"{name}: {exc}{where}" if str(exc) else f"{name}{where}"
    return _error("exception", message, type=name, traceback=text, frames=frames)


def _syntax_error(exc: SyntaxError) -> bytes:
    traceback = _traceback()
    line = exc.lineno
    where = f" at line {line}" if line else ""
    if line and exc.offset:
        where += f", column {exc.offset}"
    text = (exc.text or "").rstrip("\n")
    return _error(
        "syntax",
        f"{type(exc).__name__} in the code{where}: {exc.msg}",
        line=line,
        offset=exc.offset,
        text=text,
        traceback="".join(traceback.format_exception_only(type(exc), exc)),
    )


_SOURCE: list[Any] = []


def _remember_source(code: str, lines: list[str]) -> None:
    _SOURCE[:] = [code, lines]


def _traceback() -> types.ModuleType:
    """The traceback module (imported on the first error only), knowing the user's lines."""
    import linecache
    import traceback

    if _SOURCE:
        code, lines = _SOURCE
        linecache.cache[FILENAME] = (len(code), None, lines, FILENAME)
    return traceback


class _Ctx(types.SimpleNamespace):
    """What `main(ctx)` gets: input, inputs, node, vars, execution_id, node_id."""


def _invoke(main: Any, ctx: _Ctx) -> Any:
    result = main(ctx)
    if isinstance(result, types.CoroutineType):  # `async def main`: asyncio only when needed
        import asyncio

        return asyncio.run(result)
    return result


def run(body: bytes, max_result: int, *, keep: bool = False) -> bytes:
    """Run the request `body` (`{"code", "ctx"}`) and return the reply.

    With `keep` (a warm process, `isolation: warm`) the module is compiled and run once per
    distinct code and its `main` reused by later calls, so module-level state survives.
    """
    try:
        return _run(body, max_result, keep)
    except MemoryError:  # reading the input or encoding the result
        return _error("memory", "MemoryError")


_LOADED: dict[str, Any] = {}
"""A warm process's loaded code: source -> its `main` (one entry: the process is per code)."""


def _load(code: str) -> Any:
    """`main` of the code's module (run once), or the error reply bytes."""
    lines = code.splitlines(keepends=True)
    _remember_source(code, lines)
    try:
        compiled = compile(code, FILENAME, "exec", dont_inherit=True)
    except SyntaxError as exc:  # also IndentationError, TabError
        return _syntax_error(exc)
    except (ValueError, MemoryError, RecursionError) as exc:  # NUL bytes, absurd nesting
        return _error("syntax", f"the code cannot be compiled: {exc}")
    namespace: dict[str, Any] = {"__name__": "__code__", "__file__": FILENAME}
    try:
        exec(compiled, namespace)  # noqa: S102 - running the user's code is the point
    except BaseException as exc:  # noqa: BLE001 - every user failure becomes a reply
        namespace.clear()
        return _failure(exc)
    main = namespace.get("main")
    if not callable(main):
        found = "is not a function" if "main" in namespace else "is missing"
        return _error("no_main", f"`main` {found}: the code must define `def main(ctx)`")
    return main


def _failure(exc: BaseException) -> bytes:
    """The reply for an exception raised by the user's code."""
    if isinstance(exc, MemoryError):
        return _error("memory", "MemoryError")
    if isinstance(exc, SystemExit):
        return _error("exception", f"the code called exit({exc.code!r})", type="SystemExit")
    return _exception_error(exc)


def _run(body: bytes, max_result: int, keep: bool) -> bytes:
    try:
        request = json.loads(body)
        code, given = request["code"], request["ctx"]
    except (ValueError, KeyError, TypeError) as exc:
        return _error("bad_request", f"the sandbox got a malformed request ({exc})")
    main = _LOADED.get(code) if keep else None
    if main is None:
        main = _load(code)
        if isinstance(main, bytes):
            return main
        if keep:
            _LOADED[code] = main
    vars_before = json.dumps(given.get("vars"), sort_keys=True)
    ctx = _Ctx(**given)
    try:
        value = _invoke(main, ctx)
    except BaseException as exc:  # noqa: BLE001 - every user failure becomes a reply
        return _failure(exc)
    encoded = encode(value, "result")
    if isinstance(encoded, tuple):
        path, kind = encoded
        return _error(
            "not_json",
            f"main returned a value JSON cannot hold: {kind} at {path}",
            path=path,
            type=kind,
        )
    if len(encoded) > max_result:
        return _error(
            "too_large",
            f"main returned {len(encoded) / 2**20:.1f} MiB of JSON, more "
            f"than the limit of {max_result / 2**20:.0f} MiB",
            size=len(encoded),
        )
    head = b'{"ok":true,"value":'
    new_vars = getattr(ctx, "vars", None)
    tail = b"}"
    try:
        changed = json.dumps(new_vars, sort_keys=True) != vars_before
    except (TypeError, ValueError, RecursionError):
        changed = True
    if changed:
        vars_json = encode(new_vars, "ctx.vars")
        if isinstance(vars_json, tuple):
            path, kind = vars_json
            return _error(
                "not_json",
                f"ctx.vars holds a value JSON cannot hold: {kind} at {path}",
                path=path,
                type=kind,
            )
        tail = b',"vars":' + vars_json + b"}"
    return head + encoded + tail
