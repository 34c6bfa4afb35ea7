"""The event loop `conv3n serve` runs on: uvloop, with connections accepted as they arrive.

uvloop 0.23 (libuv) is slow to accept new connections while its loop is busy with the ones
it has: on this machine, when wrk opened 50 keep-alive connections to a server already busy
with the first few, the others were accepted over 0.5-1.5 s (one every loop iteration or
so, measured at `connection_made`), and the first request of each late connection waited
that long. That was the p99 of bench/peers workflow (b) at 50 connections: 1.1-1.5 s on
3-second points, 207 ms on 10-second ones, where Node-RED's was 67 ms. asyncio's own loop
accepts up to the backlog at each wake-up of the listening socket; measured the same way,
all 50 were accepted within 2-7 ms.

`ServeLoop.create_server(sock=...)` does what asyncio does, on uvloop: a reader on the
listening socket accepts every pending connection (up to the backlog) and hands each to
`connect_accepted_socket`, which makes uvloop's TCP transport of it (TCP_NODELAY set). The
requests themselves stay on uvloop's fast path. With this the same wrk run had its 50
connections accepted within 1-6 ms, and (b)'s p99 at 50 connections was 116-164 ms.
"""

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

import uvloop

log = logging.getLogger("conv3n.serve")

RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
"""accept() failures that mean "out of descriptors or memory": pause, then accept again."""
PAUSE_ON_RESOURCE_ERROR_S = 1.0


class EagerServer:
    """What `ServeLoop.create_server` returns: the part of `asyncio.Server` uvicorn uses."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        backlog: int,
    ):
        self._loop = loop
        self._sock = sock
        self._protocol_factory = protocol_factory
        self._backlog = max(backlog, 1)
        self._serving = False
        self._opening: set[asyncio.Task[None]] = set()
        sock.setblocking(False)
        sock.listen(self._backlog)
        self._resume()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening socket."""
        return (self._sock,)

    def is_serving(self) -> bool:
        """Whether connections are being accepted."""
        return self._serving

    def _resume(self) -> None:
        if self._sock.fileno() != -1:
            self._loop.add_reader(self._sock.fileno(), self._accept)
            self._serving = True

    def _pause(self) -> None:
        if self._serving:
            self._loop.remove_reader(self._sock.fileno())
            self._serving = False

    def _accept(self) -> None:
        for _ in range(self._backlog):  # then let the requests of these run
            try:
                conn, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in RESOURCE_ERRORS:
                    raise
                log.error("cannot accept connections (%s): pausing for a second", exc)
                self._pause()
                self._loop.call_later(PAUSE_ON_RESOURCE_ERROR_S, self._resume)
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._open(conn))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)

    async def _open(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol_factory, conn)
        except Exception:  # noqa: BLE001 - the client went away before its transport existed
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        """Stop accepting (the socket is closed by its owner)."""
        self._pause()

    async def wait_closed(self) -> None:
        """Wait for connections being opened (those opened already are uvicorn's to close)."""
        if self._opening:
            await asyncio.gather(*self._opening, return_exceptions=True)


class ServeLoop(uvloop.Loop):
    """uvloop's loop whose servers on a given socket accept eagerly (see the module doc)."""

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.Protocol],
        host: Any = None,
        port: Any = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        **options: Any,
    ) -> Any:
        """`EagerServer` for a socket given without TLS; uvloop's own server otherwise."""
        if sock is None or ssl is not None or options:
            return await super().create_server(
                protocol_factory, host, port, sock=sock, backlog=backlog, ssl=ssl, **options
            )
        return EagerServer(self, sock, protocol_factory, backlog)
