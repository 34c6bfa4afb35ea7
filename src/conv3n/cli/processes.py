"""`conv3n serve --processes N`: N server processes answering on one port.

One Python process runs one event loop on one core; past that a server's throughput stops
growing (bench/peers/PROFILE.md). `listen` binds the port for every `conv3n serve`; with
N > 1 the first process (the primary) binds it with SO_REUSEPORT, opens the database (and
upgrades its schema), and starts N-1 siblings: the same `conv3n serve`, each with its own
event loop, database connections and writer, binding the same port, so the kernel spreads
new connections across them. Everything that must happen once is already safe across
processes (decisions 0008 and 0015): triggers run under leases, queue triggers are
competing consumers, timers and resumes claim their executions. Only the primary prunes
history.

The primary restarts a sibling that dies, and on SIGTERM or Ctrl+C passes the stop on and
waits for the siblings through the same grace period. A sibling's stdin is a pipe from the
primary: when it reads end-of-file (the primary is gone, even by SIGKILL) it stops as if
it got SIGTERM, so no sibling outlives its primary.
"""

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from conv3n.errors import InvalidInput

log = logging.getLogger("conv3n.serve")

RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Waits before restarting a sibling that died, by how many times it died in a row."""

STEADY_S = 30.0
"""A sibling that ran this long before dying starts the backoff again from its first step."""

KILL_AFTER_S = 5.0
"""How long past the grace period the primary waits for a stopping sibling before SIGKILL."""


def listen(host: str, port: int, *, shared: bool, joining: bool = False) -> list[socket.socket]:
    """TCP sockets bound to (host, port) for uvicorn to listen on: one per address the host
    resolves to (`localhost` may be ::1 and 127.0.0.1), all on the same port (port 0: the
    one the first got).

    `shared` sets SO_REUSEPORT, so sibling processes can bind the same port (`joining`: this
    is one, binding its primary's port). A port some other program holds is refused first:
    SO_REUSEPORT would otherwise let a second `conv3n serve` of the same user split the
    traffic of the first without a word.

    Raises:
        InvalidInput: the host does not resolve, or the port is taken (the message says).
    """
    if shared and not hasattr(socket, "SO_REUSEPORT"):
        raise InvalidInput("--processes above 1 needs SO_REUSEPORT, which this system lacks")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidInput(f"cannot listen on {host!r}: {exc.strerror}") from None
    addresses = list(dict.fromkeys((family, address) for family, *_, address in infos))
    sockets: list[socket.socket] = []
    try:
        for family, address in addresses:
            if sockets:  # the port the first one got
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            try:
                sockets.append(_bind(family, address, shared=shared, check=not joining))
            except OSError as exc:
                if sockets and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    continue  # e.g. ::1 on a machine without IPv6, beside 127.0.0.1
                if exc.errno == errno.EADDRINUSE:
                    raise InvalidInput(
                        f"cannot listen on {host}:{port}: the port is in use"
                    ) from None
                raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind(family: int, address: tuple[Any, ...], *, shared: bool, check: bool) -> socket.socket:
    if shared and check and address[1] != 0:
        # nobody may hold the port, not even with SO_REUSEPORT (TIME_WAIT is no owner)
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            probe.bind(address)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def stop_at_eof(stop: Callable[[], None]) -> None:
    """Call `stop` once stdin reaches end-of-file: a sibling's primary has gone away."""
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            log.info("the primary server process is gone: stopping")
            stop()

    os.set_blocking(fd, False)
    loop.add_reader(fd, readable)


class Siblings:
    """The other N-1 server processes of `conv3n serve --processes N`, kept running.

    Each runs `command` with stdin a pipe from this process, in a session of its own (so a
    Ctrl+C in the terminal reaches the primary alone, which passes one SIGTERM on: two
    signals would tell a sibling to stop waiting for its running executions).
    """

    def __init__(self, count: int, command: list[str], *, env: dict[str, str], grace_s: float):
        self.command = command
        self.env = env
        self.grace_s = grace_s
        self.restarts = 0
        self._count = count
        self._live: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    def start(self) -> None:
        """Start every sibling (in the background: each takes as long to start as the first)."""
        self._tasks = [
            asyncio.create_task(self._keep(index), name=f"serve:sibling-{index + 1}")
            for index in range(self._count)
        ]

    @property
    def pids(self) -> list[int]:
        """The process ids of the siblings running now."""
        return [process.pid for process in self._live.values()]

    async def _keep(self, index: int) -> None:
        failures = 0
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                process = await asyncio.create_subprocess_exec(
                    *self.command, stdin=asyncio.subprocess.PIPE, env=self.env,
                    start_new_session=True,
                )  # fmt: skip
            except OSError as exc:
                log.error("cannot start server process %d: %s", index + 2, exc)
                code: int | None = None
            else:
                self._live[index] = process
                if self._stopping.is_set():  # stop() ran while this one was starting
                    _signal(process, signal.SIGTERM)
                code = await process.wait()
                del self._live[index]
                if process.stdin is not None:  # the pipe it watched: closed with it
                    process.stdin.close()
            if self._stopping.is_set():
                return
            failures = 1 if time.monotonic() - began >= STEADY_S else failures + 1
            delay = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S)) - 1]
            log.warning(
                "server process %d exited (code %s); restarting it in %.1f s",
                index + 2,
                code,
                delay,
                extra={"server_process": index + 2, "exit_code": code, "restart_in_s": delay},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            self.restarts += 1

    def request_stop(self) -> None:
        """Pass a stop on to every sibling (SIGTERM) and restart none from now on."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for process in self._live.values():
            _signal(process, signal.SIGTERM)

    async def stop(self) -> None:
        """Stop every sibling: SIGTERM, then SIGKILL for those still running after the grace
        period (plus KILL_AFTER_S for their own shutdown)."""
        self.request_stop()
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=self.grace_s + KILL_AFTER_S)
        if late:
            for process in self._live.values():
                log.warning("server process %d did not stop in time: killed", process.pid)
                _signal(process, signal.SIGKILL)
            await asyncio.wait(late)


def _signal(process: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
