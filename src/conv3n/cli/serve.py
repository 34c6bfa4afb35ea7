"""`conv3n serve`: the HTTP API and webhooks on uvicorn, with storage, triggers, timers and
retention."""

import asyncio
import contextlib
import functools
import gc
import ipaddress
import math
import time
from typing import TYPE_CHECKING

import typer

from conv3n.errors import InvalidInput

if TYPE_CHECKING:
    from fastapi import FastAPI

    from conv3n.runtime import Settings
    from conv3n.runtime.service import Runtime


def serve(
    host: str | None = typer.Option(
        None, help="Interface to listen on (CONV3N_HOST).", metavar="HOST"
    ),
    port: int | None = typer.Option(
        None, min=0, max=65535, help="Port (CONV3N_PORT, 5680).", metavar="PORT"
    ),
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json), webhooks and /health.

    Executions are stored in CONV3N_DATA_DIR (SQLite) or CONV3N_DATABASE_URL; executions a
    crash interrupted are resumed at start, and parked ones when they are due. The cron,
    interval, file and queue triggers of active workflows run. A host other than loopback
    needs CONV3N_API_TOKEN. On SIGTERM or Ctrl+C, running executions get
    CONV3N_SHUTDOWN_GRACE_SECONDS (10) to finish; the rest resume at the next start.
    Limits, logs and stopping: docs/server.md.

    Example:

    ```
    conv3n serve --port 5680
    curl -s localhost:5680/health
    ```
    """
    from conv3n.runtime import Settings

    settings = Settings.from_env()
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if overrides:
        settings = Settings.from_env(dict(settings.environ), **overrides)
    if not _is_loopback(settings.host) and not settings.api_token:
        raise InvalidInput(
            f"refusing to listen on {settings.host} without CONV3N_API_TOKEN: set a token, "
            "or listen on 127.0.0.1"
        )
    try:  # uvloop comes with uvicorn[standard]: libuv's loop roughly halves the I/O overhead
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - a minimal install
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve(settings))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settle_heap() -> None:
    """Move everything start-up made (modules, plans, the app: none of it is ever garbage)
    out of the cyclic garbage collector's reach (`gc.freeze`), so a full collection walks
    only what requests made since. On this machine a full collection of a serving process
    took ~76 ms with the start-up heap and ~3 ms without it, once every few seconds under the
    load of bench/peers workflow (d): the p99 tail. Start-up leaves no cyclic garbage to
    speak of (a full collection right then finds a few objects), so there is no collect first
    (it would cost the start ~70 ms)."""
    gc.freeze()


def _management_api(runtime: "Runtime", api_token: str | None) -> "FastAPI":
    from conv3n.api import create_app

    return create_app(runtime, api_token=api_token)


async def _serve(settings: "Settings") -> None:
    import logging

    import uvicorn

    from conv3n.api.front import Front
    from conv3n.cli.graceful import GracefulServer
    from conv3n.observability import Metrics
    from conv3n.observability import logging as logs
    from conv3n.runtime.service import Runtime

    logs.configure(format=settings.log_format, level=settings.log_level)
    log = logging.getLogger("conv3n.serve")
    async with Runtime(settings, metrics=Metrics()) as runtime:
        logs.use_redactor(runtime.secrets.redactor.value)
        app = Front(runtime, functools.partial(_management_api, runtime, settings.api_token))
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            log_config=None,  # uvicorn's loggers go through ours
            loop="none",
            lifespan="off",
            ws="none",  # no WebSocket endpoints: not importing `websockets` saves start-up
            access_log=False,
            # requests still running after the grace are cancelled (their executions park)
            timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds),
        )
        server = GracefulServer(config)
        await runtime.triggers.start()
        settle_heap()
        background = [
            asyncio.create_task(runtime.resume_interrupted(), name="resume-interrupted"),
            asyncio.create_task(runtime.run_timers(), name="timers"),
            asyncio.create_task(runtime.run_retention(), name="retention"),
        ]
        log.info(
            "conv3n listening on http://%s:%s",
            settings.host,
            settings.port,
            extra={
                "host": settings.host,
                "port": settings.port,
                "database": runtime.db.dialect,
                "persist": settings.persist,
            },
        )
        try:
            await server.serve()
        finally:
            await runtime.triggers.close()  # nothing new starts while stopping
            resuming, loops = background[0], background[1:]
            for task in loops:  # no new timers fire and nothing is pruned while stopping
                task.cancel()
            for task in loops:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            grace = settings.shutdown_grace_seconds
            if server.stop_requested_at is not None:
                grace -= time.monotonic() - server.stop_requested_at
            # resumed executions get the same grace as the rest
            parked = await runtime.shutdown(max(grace, 0.0), also=[resuming])
            log.info("conv3n stopped", extra={"left_to_resume": parked})
        logs.use_redactor(None)
