"""`ServeLoop`: uvloop whose servers on a given socket accept every pending connection at
once, with real sockets."""

import asyncio
import socket

import pytest

from conv3n.cli.accept import EagerServer, ServeLoop


class Echo(asyncio.Protocol):
    made: list["Echo"] = []

    def connection_made(self, transport):
        self.transport = transport
        Echo.made.append(self)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.upper())


@pytest.fixture
def loop():
    loop = ServeLoop()
    yield loop
    loop.close()


def listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def test_every_pending_connection_is_accepted_at_one_wake_up(loop):
    Echo.made = []
    sock = listening()

    async def scenario() -> tuple[int, list[bytes]]:
        server = await loop.create_server(Echo, sock=sock, backlog=128)
        assert isinstance(server, EagerServer)
        port = sock.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(60)]
        # the kernel has completed all 60 handshakes: one wake-up of the listener takes them
        server._accept()
        opened = len(server._opening)
        await server.wait_closed()
        for client in clients:
            client.sendall(b"ping")
        replies = []
        for client in clients:
            client.setblocking(False)
            reply = await loop.sock_recv(client, 16)
            replies.append(reply)
            client.close()
        server.close()
        return opened, replies

    opened, replies = loop.run_until_complete(scenario())
    assert opened == 60
    assert replies == [b"PING"] * 60
    assert len(Echo.made) == 60
    sock.close()


def test_a_closed_server_accepts_no_more(loop):
    sock = listening()

    async def scenario() -> bool:
        server = await loop.create_server(Echo, sock=sock)
        server.close()
        return bool(server.is_serving())

    assert loop.run_until_complete(scenario()) is False
    sock.close()


def test_servers_without_a_socket_are_uvloops_own(loop):
    async def scenario() -> str:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        server.close()
        return type(server).__module__

    assert loop.run_until_complete(scenario()).startswith("uvloop")
