"""Brokers the tests start themselves (own port, own data directory) to restart them for real
without touching the shared services other suites use."""

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import free_port


async def port_answers(port: int, timeout: float = 10.0) -> None:
    """Wait until 127.0.0.1:port accepts connections."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return



class OwnBroker:
    """A broker process on its own port; `restart()` stops it (by pid) and starts it again
    on the same port and data directory."""

    def __init__(self, command: list[str], port: int):
        self.command = command
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        await port_answers(self.port)

    async def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait, 10)
        self.process = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@contextlib.asynccontextmanager
async def own_broker(executable: str, command: list[str], port: int) -> AsyncIterator[OwnBroker]:
    if shutil.which(executable) is None:
        pytest.skip(f"{executable} is not installed")
    broker = OwnBroker(command, port)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


@contextlib.asynccontextmanager
async def own_mosquitto(data: Path) -> AsyncIterator[OwnBroker]:
    """A Mosquitto with persistence in `data` (sessions survive its restart)."""
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    conf = data / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {data}/\n"
    )
    async with own_broker("mosquitto", ["mosquitto", "-c", str(conf)], port) as broker:
        yield broker


@contextlib.asynccontextmanager
async def own_nats(data: Path) -> AsyncIterator[OwnBroker]:
    """A nats-server with JetStream stored in `data` (streams survive its restart)."""
    port = free_port()
    command = ["nats-server", "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(data)]
    async with own_broker("nats-server", command, port) as broker:
        yield broker


@contextlib.asynccontextmanager
async def own_redis(data: Path) -> AsyncIterator[OwnBroker]:
    """A redis-server with an append-only file in `data` (streams survive its restart)."""
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
               "--appendonly", "yes", "--dir", str(data)]
    async with own_broker("redis-server", command, port) as broker:
        yield broker
