"""custom/code in Python: `main(ctx)` runs in a fresh fork of a warm, limited worker, or
(`isolation: warm`) in a limited process kept for the node and reused call after call.

The pieces live in `sandbox/`: `pool` (the warm workers, one pool per interpreter, shared by
the process through `ctx.shared`), `worker` (the worker and call processes), `call` (running the
user's code inside the call process), `warm_pool` and `warm` (the reused processes of
`isolation: warm`, the server's side and theirs), `capture` (the capped output), `limits`
(rlimits and the no-new-processes filter), `envs` (cached virtual environments for
`requirements`) and `outcome` (reply -> data or error).
"""

import hashlib
import math
from typing import TYPE_CHECKING

import orjson

from conv3n.blocks.custom import code
from conv3n.blocks.custom.sandbox import envs, outcome, pool, warm_pool
from conv3n.model import JSON
from conv3n.sdk import BlockError, Context

if TYPE_CHECKING:
    from conv3n.blocks.custom.code import CodeConfig

POOL_SIZE = 2
"""Warm workers per interpreter (the default environment and each requirements environment)."""
MAX_RESULT_BYTES = 64 * 1024 * 1024
"""The largest JSON value `main` may return."""
MAX_OUTPUT_BYTES = 1024 * 1024
"""How much of what the code prints is kept."""
SHARED_KEY = "custom/code:python"


def _pool(ctx: Context, python: str | None, key: str) -> pool.WorkerPool:
    return ctx.shared(key, lambda: pool.WorkerPool(python, size=POOL_SIZE))


def _warm_pool(ctx: Context, python: str | None, key: str) -> warm_pool.WarmPool:
    return ctx.shared(f"{key}:warm", lambda: warm_pool.WarmPool(python))


def _warm_key(ctx: Context, config: "CodeConfig") -> str | None:
    """`isolation: warm`: calls of the same node with the same code and memory limit share a
    warm process (a changed code or limit gets a new one)."""
    if config.isolation != "warm":
        return None
    identity = f"{ctx.node_id}\0{config.memory_mb}\0{config.code}".encode()
    return hashlib.blake2b(identity, digest_size=16).hexdigest()


def _request(ctx: Context, config: "CodeConfig") -> bytes:
    view = code.code_context(ctx)
    try:
        return orjson.dumps({"code": config.code, "ctx": view})
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise BlockError(f"the node's input cannot be sent to the code: {exc}") from None


async def run(ctx: Context, config: "CodeConfig") -> JSON:
    """Run `config.code`'s `main(ctx)` in a pooled worker and return its value.

    `ctx.vars` changes made by the code are written back to `$vars`; what the code prints is
    logged on success and kept in the error's details on failure.
    """
    python: str | None = None
    key = SHARED_KEY
    if config.requirements:
        python = str(await envs.ensure(ctx.cache_dir, config.requirements))
        key = f"{SHARED_KEY}:{envs.env_key(config.requirements)}"
    cpu_ms = config.cpu_ms if config.cpu_ms is not None else config.timeout_ms
    limits = pool.Limits(
        timeout_ms=config.timeout_ms,
        cpu_s=max(1, math.ceil(cpu_ms / 1000)),
        memory_mb=config.memory_mb,
        max_result=MAX_RESULT_BYTES,
        max_output=MAX_OUTPUT_BYTES,
        warm=_warm_key(ctx, config),
    )
    runner = _warm_pool(ctx, python, key) if limits.warm else _pool(ctx, python, key)
    try:
        reply = await runner.run(_request(ctx, config), limits)
    except pool.WorkerDied as exc:
        raise BlockError(f"the Python worker failed: {exc.reason}", retryable=True) from None
    value, new_vars = outcome.result(reply, limits)
    if reply.output:
        ctx.log.info("custom/code output:\n%s", reply.output)
    if new_vars is not None:
        code.apply_vars(ctx, new_vars)
    return value
