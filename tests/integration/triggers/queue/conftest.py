"""The queue trigger suites' harness: a real `Fire` that records, and a trigger runner.

`Recorder` plays the runtime's side of `Fire`: it stores each payload and de-duplicates keys
as `Runtime.start_workflow` does (a repeated key starts nothing). It can fail the next fires,
before or after "storing", to show when a broker acknowledges.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import psutil
import pytest

from conv3n.errors import InvalidInput, Unavailable
from conv3n.model import JSON
from conv3n.triggers import base
from conv3n.triggers.queue import build

WAIT_S = 10.0


@dataclass
class Started:
    """One execution the recorder started."""

    payload: JSON
    key: str | None
    execution_id: str


@dataclass
class Recorder:
    """A `Fire` that stores executions in memory."""

    started: list[Started] = field(default_factory=list)
    calls: list[tuple[JSON, str | None]] = field(default_factory=list)
    fail_next: int = 0
    fail_after_store_next: int = 0
    hold: asyncio.Event | None = None
    refuse_next: int = 0
    _by_key: dict[str, str] = field(default_factory=dict)
    _queue: asyncio.Queue[Started] = field(default_factory=asyncio.Queue)
    _called: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, payload: JSON, *, key: str | None = None) -> str:
        self.calls.append((payload, key))
        self._called.set()
        if self.hold is not None:
            await self.hold.wait()  # fire has not returned: nothing may be acknowledged yet
        if self.refuse_next:
            self.refuse_next -= 1
            raise InvalidInput("the input is not accepted (test)")
        if self.fail_next:
            self.fail_next -= 1
            raise Unavailable("the database is down (test)")
        if key is not None and key in self._by_key:
            return self._by_key[key]
        execution_id = uuid.uuid4().hex
        started = Started(payload, key, execution_id)
        self.started.append(started)
        if key is not None:
            self._by_key[key] = execution_id
        self._queue.put_nowait(started)
        if self.fail_after_store_next:
            # Stored, but the caller never learns it (the reply was lost).
            self.fail_after_store_next -= 1
            raise Unavailable("the connection to the database was lost (test)")
        return execution_id

    async def next(self, timeout: float = WAIT_S) -> Started:
        """The next started execution."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def calls_reach(self, count: int, timeout: float = WAIT_S) -> None:
        """Wait until `fire` was called `count` times."""
        async with asyncio.timeout(timeout):
            while len(self.calls) < count:
                self._called.clear()
                await self._called.wait()


class Running:
    """A trigger whose `run` is a task of the test."""

    def __init__(self, trigger: base.Trigger, recorder: Recorder, task: asyncio.Task[None]):
        self.trigger = trigger
        self.recorder = recorder
        self.task = task

    @property
    def state(self) -> base.TriggerState:
        return self.trigger.state

    async def until(self, condition: Callable[[], bool], timeout: float = WAIT_S) -> None:
        waiter: Callable[[Callable[[], bool]], Awaitable[None]] = self.trigger.until  # type: ignore[attr-defined]
        await asyncio.wait_for(waiter(condition), timeout)

    async def running(self, timeout: float = WAIT_S) -> None:
        await self.until(lambda: self.state.status == "running", timeout)

    async def acked(self, count: int, timeout: float = WAIT_S) -> None:
        """Wait until the trigger acknowledged `count` messages to the broker."""
        await self.until(lambda: self.trigger.acked >= count, timeout)  # type: ignore[attr-defined]

    def entered(self, status: base.TriggerStatus) -> int:
        count: int = self.trigger.entered(status)  # type: ignore[attr-defined]
        return count

    async def reconnected(self, before: int, timeout: float = WAIT_S) -> None:
        """Wait until it went `reconnecting` (again) and is `running` once more."""
        await self.until(
            lambda: self.entered("reconnecting") > before and self.state.status == "running",
            timeout,
        )


def connections_to(port: int) -> set[int]:
    """Local ports of this process's open TCP connections to 127.0.0.1:`port`."""
    return {
        c.laddr.port for c in psutil.Process().net_connections("tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    }


Secrets = dict[str, str]


@pytest.fixture
def secrets() -> Secrets:
    """Stored secrets the triggers under test may read."""
    return {}


@pytest.fixture
def unique() -> str:
    """A name no other test uses (channels, queues, streams)."""
    return f"conv3n-t-{uuid.uuid4().hex[:10]}"


RunTrigger = Callable[..., contextlib.AbstractAsyncContextManager[Running]]


@pytest.fixture
def run_trigger(secrets: Secrets) -> RunTrigger:
    """`async with run_trigger(definition) as running:` builds the trigger, runs it until
    `running` (unless wait=False), and cancels it on exit, checking that it stopped."""

    async def secret(name: str) -> str:
        return secrets[name]

    @contextlib.asynccontextmanager
    async def run(
        definition: dict[str, JSON], recorder: Recorder | None = None, *, wait: bool = True
    ) -> AsyncIterator[Running]:
        trigger = build({"reconnect_min_ms": 50, "reconnect_max_ms": 500, **definition},
                        secret=secret)
        recorder = recorder or Recorder()
        task = asyncio.create_task(trigger.run(recorder), name="trigger under test")
        running = Running(trigger, recorder, task)
        try:
            if wait:
                await running.running()
            yield running
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, WAIT_S)
        assert task.cancelled()
        assert trigger.state.status == "stopped"

    return run
