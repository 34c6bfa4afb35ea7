"""`WorkerPool`: a fixed number of warm sandbox workers for one Python interpreter.

Created once per process and interpreter through `ctx.shared(...)`; the engine awaits its
`aclose()` at shutdown, which terminates the workers. A call takes a free worker (waiting in
line when all are busy), sends one request and reads one reply: one request at a time per
worker. A worker is started when its slot is first used and replaced when it dies or has to be
killed (a call cancelled half-way, a worker that stopped answering).
"""

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from conv3n.blocks.custom.sandbox import fdio

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
_START_TIMEOUT_S = 30.0
_GRACE_S = 5.0
"""How long past a call's own timeout the parent waits before it kills the worker itself."""
_ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")


class WorkerDied(Exception):
    """The worker process ended or broke the protocol; `reason` says how."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits of one call."""

    timeout_ms: int
    cpu_s: int
    memory_mb: int
    max_result: int
    max_output: int
    warm: str | None = None
    """`isolation: warm`: the key of the warm processes to run in (`warm_pool.WarmPool`);
    None: a fresh fork of a worker (`WorkerPool`)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """What the worker reports about one call.

    Attributes:
        status: `exited`, `signaled` or `timeout`.
        code: the call process's exit status (status `exited`).
        signal: the signal's name (status `signaled`), e.g. `SIGSEGV`, `SIGXCPU` (`SIGPROF`:
            a warm process's CPU timer).
        output: what the call printed (stdout and stderr, capped).
        truncated: the output went past the cap.
        body: the call's reply (`{"ok": ...}`), None when it wrote none.
        ms: how long the call process ran.
    """

    status: str
    code: int | None
    signal: str | None
    output: str
    truncated: bool
    body: Any
    ms: float


def environment() -> dict[str, str]:
    """The variables user code sees: a short allow-list, never the server's secrets."""
    env = {key: os.environ[key] for key in _ENV_KEYS if key in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    return env


class Worker:
    """One warm worker process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process, pid: int, seccomp: bool):
        self.process = process
        self.pid = pid
        self.seccomp = seccomp

    @classmethod
    async def start(cls, python: str) -> "Worker":
        """Start a worker on `python` and wait until it is ready."""
        process = await asyncio.create_subprocess_exec(
            python,
            "-I",
            str(WORKER_SCRIPT),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=environment(),
            start_new_session=True,
            limit=1 << 20,
        )
        worker = cls(process, process.pid, False)
        try:
            async with asyncio.timeout(_START_TIMEOUT_S):
                hello, _ = await worker._read()
        except BaseException:
            await worker.kill()
            raise
        worker.seccomp = bool(hello.get("seccomp"))
        return worker

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.returncode is None

    async def _read(self) -> tuple[dict[str, Any], bytes]:
        stdout = self.process.stdout
        assert stdout is not None  # noqa: S101 - set by create_subprocess_exec
        try:
            (length,) = fdio.LENGTH.unpack(await stdout.readexactly(fdio.LENGTH.size))
            header = orjson.loads(await stdout.readexactly(length))
            size = int(header.get("size") or 0)
            body = await stdout.readexactly(size) if size else b""
        except asyncio.IncompleteReadError:
            code = await self.process.wait()
            raise WorkerDied(f"the worker process ended (exit status {code})") from None
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            raise WorkerDied(f"the worker broke the protocol ({exc})") from None
        return header, body

    async def call(self, request: bytes, limits: Limits) -> Reply:
        """Run one request; raises WorkerDied if the worker fails."""
        stdin = self.process.stdin
        assert stdin is not None  # noqa: S101 - set by create_subprocess_exec
        header = orjson.dumps(
            {
                "timeout_ms": limits.timeout_ms,
                "cpu_s": limits.cpu_s,
                "memory_mb": limits.memory_mb,
                "max_result": limits.max_result,
                "max_output": limits.max_output,
                "body": len(request),
            }
        )
        try:
            stdin.write(b"".join((fdio.LENGTH.pack(len(header)), header, request)))
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            code = await self.process.wait()
            raise WorkerDied(f"the worker process ended (exit status {code})") from None
        reply, body = await self._read()
        parsed: Any = None
        if body:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                parsed = None
        return Reply(
            status=str(reply.get("status")),
            code=reply.get("code"),
            signal=reply.get("signal"),
            output=str(reply.get("output") or ""),
            truncated=bool(reply.get("truncated")),
            body=parsed,
            ms=float(reply.get("ms") or 0.0),
        )

    async def kill(self) -> None:
        """Kill the worker (its call process dies with it) and reap it."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()

    async def close(self) -> None:
        """Ask the worker to stop (stdin closed), then kill it if it does not."""
        stdin = self.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        try:
            async with asyncio.timeout(1.0):
                await self.process.wait()
        except TimeoutError:
            await self.kill()


class WorkerPool:
    """`size` workers on one interpreter; calls beyond `size` wait for a free worker."""

    def __init__(self, python: str | None = None, *, size: int = 2):
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.python = python or sys.executable
        self.size = size
        self._free: asyncio.Queue[list[Worker | None]] | None = None
        self._all: list[list[Worker | None]] = []
        self._closed = False
        self.started = 0
        """How many worker processes this pool started (replacements included)."""

    def _slots(self) -> "asyncio.Queue[list[Worker | None]]":
        if self._free is None:
            self._free = asyncio.LifoQueue()  # the warmest worker first
            for _ in range(self.size):
                slot: list[Worker | None] = [None]
                self._all.append(slot)
                self._free.put_nowait(slot)
        return self._free

    @property
    def workers(self) -> list[Worker]:
        """The workers started and not yet replaced."""
        return [slot[0] for slot in self._all if slot[0] is not None]

    async def run(self, request: bytes, limits: Limits) -> Reply:
        """Run one request on a free worker (starting or replacing it if needed).

        Raises:
            WorkerDied: the worker died or stopped answering; it is replaced for the next call.
        """
        if self._closed:
            raise WorkerDied("the worker pool is closed")
        free = self._slots()
        slot = await free.get()
        try:
            worker = slot[0]
            if worker is None or not worker.alive:
                slot[0] = worker = await Worker.start(self.python)
                self.started += 1
            try:
                async with asyncio.timeout(limits.timeout_ms / 1000 + _GRACE_S):
                    return await worker.call(request, limits)
            except TimeoutError:
                slot[0] = None
                await worker.kill()
                raise WorkerDied("the worker stopped answering and was killed") from None
            except WorkerDied:
                slot[0] = None
                await worker.kill()
                raise
            except BaseException:  # cancelled half-way: the reply is still in the pipe
                slot[0] = None
                await asyncio.shield(worker.kill())
                raise
        finally:
            free.put_nowait(slot)

    async def aclose(self) -> None:
        """Terminate every worker; later calls fail."""
        self._closed = True
        workers = [slot[0] for slot in self._all if slot[0] is not None]
        for slot in self._all:
            slot[0] = None
        await asyncio.gather(*(worker.close() for worker in workers), return_exceptions=True)
