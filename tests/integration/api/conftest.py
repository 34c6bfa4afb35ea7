"""An app on a real Runtime (temporary SQLite), called in-process through httpx's ASGI transport."""

from collections.abc import AsyncIterator

import httpx
import pytest

from conv3n.api import create_app
from conv3n.runtime import Settings
from conv3n.runtime.service import Runtime


@pytest.fixture
async def runtime(tmp_path) -> AsyncIterator[Runtime]:
    async with Runtime(Settings.from_env({"CONV3N_DATA_DIR": str(tmp_path)})) as rt:
        yield rt


@pytest.fixture
async def client(runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://conv3n") as http:
        yield http
