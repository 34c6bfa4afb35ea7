"""One custom/code call in JavaScript or TypeScript: pick the runtime, prepare the npm
environment, write the code file, run it on a pooled worker, turn the reply into the node's data
or error, and log what the code wrote to the console."""

import asyncio
import itertools
import json
import logging
from typing import TYPE_CHECKING, Any

import orjson

from conv3n.blocks.custom import code
from conv3n.blocks.custom.js import failures, npm, runtime
from conv3n.blocks.custom.js.pool import JsRunners
from conv3n.blocks.custom.js.worker import WorkerFailure
from conv3n.model import JSON
from conv3n.sdk import BlockError, Context

if TYPE_CHECKING:
    from conv3n.blocks.custom.code import CodeConfig

SHARED_KEY = "custom/code:js"
_LEVELS = {"warn": logging.WARNING, "error": logging.WARNING, "debug": logging.DEBUG}
_ids = itertools.count(1)


def _request(ctx: Context, path: str) -> bytes:
    payload: dict[str, Any] = {
        "id": next(_ids),
        "path": path,
        "ctx": code.code_context(ctx),
    }
    try:
        return orjson.dumps(payload) + b"\n"
    except orjson.JSONEncodeError:  # integers beyond 64 bits
        pass
    try:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode() + b"\n"
    except (TypeError, ValueError) as exc:
        raise BlockError(f"the node's input cannot be sent to the code: {exc}") from None


def _log_console(ctx: Context, console: list[list[str]]) -> None:
    for entry in console:
        if len(entry) == 2:
            ctx.log.log(_LEVELS.get(entry[0], logging.INFO), "console.%s: %s", *entry)


async def run(ctx: Context, config: "CodeConfig") -> JSON:
    """Run `config.code`'s default export `main(ctx)` and return its value."""
    if not runtime.discovered():
        await asyncio.to_thread(runtime.discover)
    chosen = runtime.choose(config.language, config.runtime)
    runners = ctx.shared(SHARED_KEY, JsRunners)
    if config.requirements:
        folder = await npm.environment(runners, config.requirements, ctx.cache_dir)
    else:
        folder = runners.root / "code"
    suffix = ".mts" if config.language == "typescript" else ".mjs"
    path = await runners.module_file(folder, config.code, suffix)
    pool = runners.pool(chosen, config.memory_mb)
    try:
        reply, version = await pool.call(_request(ctx, str(path)), config.timeout_ms / 1000)
    except WorkerFailure as failure:
        _log_console(ctx, failure.console)
        raise failures.from_failure(failure) from None
    console = reply.get("console") or []
    _log_console(ctx, console)
    if reply.get("ok") is True:
        new_vars = reply.get("vars")
        if isinstance(new_vars, dict):
            code.apply_vars(ctx, new_vars)
        value: JSON = reply.get("value")
        return value
    error = reply.get("error")
    if not isinstance(error, dict):
        raise BlockError(f"the {version} worker sent a malformed reply")
    raise failures.from_reply(error, console, version)
