"""`WarmPool`: the warm processes of `isolation: warm` for one Python interpreter, spoken to
directly by the server (decision 0018).

Created once per process and interpreter through `ctx.shared(...)`, like `WorkerPool`. A key
(the node, its code and its memory limit, hashed by `python._warm_key`) gets up to `PER_KEY`
processes, started on first use; a call takes a free one (waiting in line when both are busy)
and sends one request; the process answers on its own pipe (`warm.py`). The pool keeps
`MAX_KEYS` keys and ends the least recently used one's processes past that.

The server enforces the wall-clock timeout itself: past `timeout_ms` it kills the process (its
whole session) and reports `timeout`. A process that died or closed its pipe is reaped and its
wait status reported, with the output it left in its output file.
"""

import asyncio
import collections
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from conv3n.blocks.custom.sandbox import capture, fdio
from conv3n.blocks.custom.sandbox.pool import Limits, Reply, WorkerDied, environment

WARM_SCRIPT = Path(__file__).with_name("warm.py")
PER_KEY = 2
"""Processes one key may have (calls of a hot node run two at a time)."""
MAX_KEYS = 4
"""Keys a pool keeps; the least recently used one's processes end past that."""
_REPLY_MARGIN = 4096
"""A reply's own bytes around the value (at most `max_result`) and `vars`."""


class WarmProcess:
    """One warm process: its pipes and the server's descriptor of its output file."""

    def __init__(self, process: asyncio.subprocess.Process, output_fd: int):
        self.process = process
        self.output_fd = output_fd

    @classmethod
    async def start(cls, python: str, memory_mb: int) -> "WarmProcess":
        """Start a warm process on `python` (it limits itself before its first call)."""
        output_fd = os.memfd_create("conv3n-output")
        try:
            process = await asyncio.create_subprocess_exec(
                python,
                "-I",
                str(WARM_SCRIPT),
                str(output_fd),
                str(memory_mb),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=environment(),
                pass_fds=(output_fd,),
                start_new_session=True,
                limit=1 << 20,
            )
        except OSError as exc:
            os.close(output_fd)
            raise WorkerDied(f"the warm process could not start ({exc})") from None
        return cls(process, output_fd)

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.returncode is None

    async def call(self, request: bytes, limits: Limits) -> tuple[Reply, bool]:
        """Run one request: the reply, and whether the process stays for the next call."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None  # noqa: S101 - set by create_subprocess_exec
        assert stdout is not None  # noqa: S101 - set by create_subprocess_exec
        header = orjson.dumps(
            {
                "cpu_s": limits.cpu_s,
                "max_output": limits.max_output,
                "max_result": limits.max_result,
            }
        )
        frame = b"".join((fdio.LENGTH.pack(len(header)), header, request))
        started = time.monotonic()
        try:
            async with asyncio.timeout(limits.timeout_ms / 1000):
                stdin.write(fdio.LENGTH.pack(len(frame)) + frame)
                await stdin.drain()
                size, written, retire = fdio.WARM_REPLY.unpack(
                    await stdout.readexactly(fdio.WARM_REPLY.size)
                )
                if size > limits.max_result + _REPLY_MARGIN:  # not the encoder's: code wrote it
                    raise BrokenPipeError
                body = await stdout.readexactly(size)
        except TimeoutError:
            await self.end(kill=True)
            return self._died(("timeout", None, None), started, limits), False
        except (asyncio.IncompleteReadError, BrokenPipeError, ConnectionResetError):
            status = await self.end(kill=True)  # it may live on with its pipe closed
            return self._died(status, started, limits), False
        output, truncated = capture.read_output(self.output_fd, written, limits.max_output)
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed, retire = None, True
        ms = (time.monotonic() - started) * 1000
        return Reply("exited", 0, None, output, truncated, parsed, ms), not retire

    def _died(
        self, status: tuple[str, int | None, str | None], started: float, limits: Limits
    ) -> Reply:
        written = os.fstat(self.output_fd).st_size
        output, truncated = capture.read_output(self.output_fd, written, limits.max_output)
        ms = (time.monotonic() - started) * 1000
        return Reply(status[0], status[1], status[2], output, truncated, None, ms)

    async def end(self, *, kill: bool) -> tuple[str, int | None, str | None]:
        """Reap the process (SIGKILL its session first if `kill`; otherwise close its stdin,
        which ends a retiring or idle one): (state, exit code, signal name)."""
        if kill and self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.stdin is not None:
            self.process.stdin.close()
        code = await self.process.wait()
        if code >= 0:
            return "exited", code, None
        try:
            return "signaled", None, signal.Signals(-code).name
        except ValueError:  # a real-time signal has no name
            return "signaled", None, f"signal {-code}"

    def close(self) -> None:
        """Close the server's descriptor of the output file (after `end`)."""
        with contextlib.suppress(OSError):
            os.close(self.output_fd)


@dataclass(eq=False)
class _Slot:
    process: WarmProcess | None = None
    busy: bool = False


@dataclass(eq=False)
class _Key:
    free: "asyncio.LifoQueue[_Slot]" = field(default_factory=asyncio.LifoQueue)
    slots: list[_Slot] = field(default_factory=list)
    evicted: bool = False


class WarmPool:
    """Up to `per_key` warm processes per key on one interpreter."""

    def __init__(
        self, python: str | None = None, *, per_key: int = PER_KEY, keys: int = MAX_KEYS
    ) -> None:
        if per_key < 1 or keys < 1:
            raise ValueError("a warm pool needs at least one key and one process per key")
        self.python = python or sys.executable
        self.per_key = per_key
        self.max_keys = keys
        self._keys: collections.OrderedDict[str, _Key] = collections.OrderedDict()
        self._closed = False
        self._ending: set[asyncio.Task[None]] = set()
        self.started = 0
        """How many warm processes this pool started (replacements included)."""

    @property
    def processes(self) -> list[WarmProcess]:
        """The warm processes that run now."""
        return [
            slot.process
            for key in self._keys.values()
            for slot in key.slots
            if slot.process is not None and slot.process.alive
        ]

    @property
    def busy(self) -> int:
        """How many calls are in a warm process now."""
        return sum(slot.busy for key in self._keys.values() for slot in key.slots)

    def _key(self, name: str) -> _Key:
        key = self._keys.get(name)
        if key is not None:
            self._keys.move_to_end(name)
            return key
        while len(self._keys) >= self.max_keys:
            _, oldest = self._keys.popitem(last=False)
            oldest.evicted = True
            for slot in oldest.slots:
                if not slot.busy and slot.process is not None:
                    self._retire(slot)  # busy ones end when their call returns
        key = self._keys[name] = _Key()
        for _ in range(self.per_key):
            slot = _Slot()
            key.slots.append(slot)
            key.free.put_nowait(slot)
        return key

    def _retire(self, slot: _Slot) -> None:
        """End the slot's process in the background (it exits on its closed stdin)."""
        process, slot.process = slot.process, None
        if process is not None:
            task = asyncio.get_running_loop().create_task(self._end(process, kill=False))
            self._ending.add(task)
            task.add_done_callback(self._ending.discard)

    @staticmethod
    async def _end(process: WarmProcess, *, kill: bool) -> None:
        try:
            async with asyncio.timeout(1.0):
                await process.end(kill=kill)
        except TimeoutError:  # still busy with something of its own after its reply
            await process.end(kill=True)
        finally:
            process.close()

    async def run(self, request: bytes, limits: Limits) -> Reply:
        """Run one request in a warm process of `limits.warm`, starting one if needed.

        Raises:
            WorkerDied: the pool is closed or a process could not start.
        """
        if self._closed:
            raise WorkerDied("the warm process pool is closed")
        if limits.warm is None:
            raise ValueError("a warm call needs a key (Limits.warm)")
        key = self._key(limits.warm)
        slot = await key.free.get()
        slot.busy = True
        try:
            process = slot.process
            if process is None or not process.alive:
                if process is not None:
                    slot.process = None
                    await self._end(process, kill=True)
                slot.process = process = await WarmProcess.start(self.python, limits.memory_mb)
                self.started += 1
            try:
                reply, keep = await process.call(request, limits)
            except BaseException:  # cancelled half-way: the reply is still in the pipe
                slot.process = None
                await asyncio.shield(self._end(process, kill=True))
                raise
            if not keep or key.evicted or self._closed:
                self._retire(slot)
            return reply
        finally:
            slot.busy = False
            key.free.put_nowait(slot)

    async def settled(self) -> None:
        """Wait until the processes being ended (retired, evicted) have exited."""
        await asyncio.gather(*self._ending, return_exceptions=True)

    async def aclose(self) -> None:
        """End every warm process; later calls fail."""
        self._closed = True
        processes = [
            slot.process for key in self._keys.values() for slot in key.slots if slot.process
        ]
        for key in self._keys.values():
            for slot in key.slots:
                slot.process = None
        await asyncio.gather(
            *(self._end(process, kill=True) for process in processes),
            *self._ending,
            return_exceptions=True,
        )
