"""A Runtime on a temporary SQLite database with its trigger manager, and ways to await what
triggers start (polling the stored executions with a deadline, never a blind sleep)."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select

from conv3n.api import create_app
from conv3n.runtime import Settings
from conv3n.runtime.service import Runtime
from conv3n.storage import tables

T = TypeVar("T")


def settings_for(data_dir: Path) -> Settings:
    return Settings.from_env({"CONV3N_DATA_DIR": str(data_dir)})


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with Runtime(settings_for(tmp_path / "data")) as rt:
        yield rt


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://conv3n") as http:
        yield http


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 10.0) -> T:
    """The first truthy result of `check`, polled until the deadline (then the test fails)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"not reached within {timeout} s (last: {result!r})")
        await asyncio.sleep(0.02)


async def inputs(runtime: Runtime, workflow_id: str) -> list[Any]:
    """The `$input` of every stored execution of a workflow, in the order they were stored."""
    await runtime.journal.flush()
    table = tables.executions
    query = (
        select(table.c.input)
        .where(table.c.workflow_id == workflow_id)
        .order_by(table.c.created_at, table.c.id)
    )
    async with runtime.db.read() as conn:
        return list((await conn.execute(query)).scalars())


def workflow(workflow_id: str, *triggers: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "id": workflow_id,
        "triggers": list(triggers),
        "nodes": [{"id": "out", "type": "std/transform", "config": {"template": "{{ $input }}"}}],
    }


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
