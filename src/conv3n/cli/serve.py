"""`conv3n serve`: the HTTP API and webhooks on uvicorn, with storage, triggers, timers and
retention."""

import asyncio
import contextlib
import functools
import gc
import ipaddress
import math
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from conv3n.errors import InvalidInput

if TYPE_CHECKING:
    from fastapi import FastAPI

    from conv3n.cli.processes import Siblings
    from conv3n.runtime import Settings
    from conv3n.runtime.service import Runtime


def serve(
    host: str | None = typer.Option(
        None, help="Interface to listen on (CONV3N_HOST).", metavar="HOST"
    ),
    port: int | None = typer.Option(
        None, min=0, max=65535, help="Port (CONV3N_PORT, 5680).", metavar="PORT"
    ),
    processes: int | None = typer.Option(
        None,
        min=1,
        max=64,  # settings.MAX_PROCESSES (not imported here: `conv3n --help` stays light)
        help="Server processes answering on the port, one core each (CONV3N_PROCESSES, 1).",
        metavar="N",
    ),
    sibling: bool = typer.Option(False, "--sibling", hidden=True),
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json), webhooks and /health.

    Executions are stored in CONV3N_DATA_DIR (SQLite) or CONV3N_DATABASE_URL; executions a
    crash interrupted are resumed at start, and parked ones when they are due. The cron,
    interval, file and queue triggers of active workflows run. A host other than loopback
    needs CONV3N_API_TOKEN. On SIGTERM or Ctrl+C, running executions get
    CONV3N_SHUTDOWN_GRACE_SECONDS (10) to finish; the rest resume at the next start.
    `--processes N` runs N server processes on the port to use N cores. Limits, logs,
    processes and stopping: docs/server.md.

    Example:

    ```
    conv3n serve --port 5680 --processes 2
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
    if processes is not None:
        overrides["processes"] = processes
    if overrides:
        settings = Settings.from_env(dict(settings.environ), **overrides)
    if not _is_loopback(settings.host) and not settings.api_token:
        raise InvalidInput(
            f"refusing to listen on {settings.host} without CONV3N_API_TOKEN: set a token, "
            "or listen on 127.0.0.1"
        )
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:  # uvloop comes with uvicorn[standard]: libuv's loop roughly halves the I/O overhead
        from conv3n.cli.accept import ServeLoop

        loop_factory = ServeLoop
    except ImportError:  # pragma: no cover - a minimal install: asyncio's loop
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve(settings, sibling=sibling))


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


async def _serve(settings: "Settings", *, sibling: bool = False) -> None:
    import dataclasses
    import logging

    import uvicorn

    from conv3n.api.front import Front
    from conv3n.cli import processes
    from conv3n.cli.graceful import GracefulServer
    from conv3n.observability import Metrics
    from conv3n.observability import logging as logs
    from conv3n.runtime.service import Runtime

    logs.configure(format=settings.log_format, level=settings.log_level)
    log = logging.getLogger("conv3n.serve")
    # bound here, not by uvicorn: shared between processes with SO_REUSEPORT, accepted on
    # eagerly (cli.accept), and port 0 resolved before anything uses the port
    shared = settings.processes > 1 or sibling
    sockets = processes.listen(settings.host, settings.port, shared=shared, joining=sibling)
    settings = dataclasses.replace(settings, port=sockets[0].getsockname()[1])
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
        siblings = None
        if sibling:
            processes.stop_at_eof(lambda: server.handle_exit(signal.SIGTERM, None))
        elif settings.processes > 1:  # the schema is up to date now: the others may open it
            siblings = _siblings(settings)
            server.on_stop = siblings.request_stop
        await runtime.triggers.start()
        settle_heap()
        background = [
            asyncio.create_task(runtime.resume_interrupted(), name="resume-interrupted"),
            asyncio.create_task(runtime.run_timers(), name="timers"),
        ]
        if not sibling:  # pruning is the primary's alone
            background.append(asyncio.create_task(runtime.run_retention(), name="retention"))
        if siblings is not None:
            siblings.start()
        log.info(
            "conv3n listening on http://%s:%s",
            settings.host,
            settings.port,
            extra={
                "host": settings.host,
                "port": settings.port,
                "database": runtime.db.dialect,
                "persist": settings.persist,
                "role": "sibling" if sibling else "primary",
                "processes": settings.processes,
            },
        )
        try:
            await server.serve(sockets=sockets)
        finally:
            if siblings is not None:  # they stop alongside this one, in the same grace
                stopping = asyncio.create_task(siblings.stop(), name="serve:stop-siblings")
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
            if siblings is not None:
                await stopping
            log.info("conv3n stopped", extra={"left_to_resume": parked})
        logs.use_redactor(None)


def _siblings(settings: "Settings") -> "Siblings":
    """The other server processes: this `conv3n serve` on the port this one bound."""
    from conv3n.cli.processes import Siblings

    command = [sys.executable, "-m", "conv3n", "serve", "--host", settings.host]
    command += ["--port", str(settings.port), "--processes", "1", "--sibling"]
    env = {**settings.environ, "CONV3N_PROCESSES": "1"}
    return Siblings(
        settings.processes - 1, command, env=env, grace_s=settings.shutdown_grace_seconds
    )
