"""One JavaScript worker process (`worker.mjs` on Bun or Node) and its limits.

The host writes one request line and reads one reply line (newline-delimited JSON, see the
protocol at the top of `worker.mjs`). A call runs under a wall-clock limit and a memory
watchdog that reads the process's resident set size every few milliseconds: RLIMIT_AS does not
fit these runtimes (Bun reserves about 10 GB of address space up front and crashes when a
reservation fails; V8 aborts with `std::bad_alloc`), so the watchdog kills the worker instead.
Node also gets `--max-old-space-size` as a backstop for its heap.
"""

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import psutil

from conv3n.blocks.custom.js.runtime import Runtime

START_TIMEOUT_S = 30.0
WATCH_INTERVAL_S = 0.02
RUNTIME_ALLOWANCE_MB = 64  # the runtime's own resident memory, on top of config.memory_mb
MAX_RESULT_BYTES = 256 * 1024 * 1024
READ_LIMIT = MAX_RESULT_BYTES + 16 * 1024 * 1024
STDERR_TAIL_BYTES = 8192
# The worker sees none of the server's environment (no secrets in process.env).
WORKER_ENV = {"NODE_ENV": "production", "LANG": "C.UTF-8", "BUN_RUNTIME_TRANSPILER_CACHE_PATH": "0"}

FailureReason = Literal["timeout", "memory", "exit", "crash", "too_large", "start"]


@dataclass
class WorkerFailure(Exception):
    """The worker could not answer a call; it has been stopped."""

    reason: FailureReason
    message: str
    exit_code: int | None = None
    console: list[list[str]] = field(default_factory=list)
    stderr: str = ""
    runtime: str = ""

    def __str__(self) -> str:
        return self.message


class Worker:
    """A started worker process; one call at a time."""

    def __init__(self, process: asyncio.subprocess.Process, runtime: Runtime, memory_mb: int):
        if process.stdin is None or process.stdout is None or process.stderr is None:
            raise ValueError("a worker needs pipes for stdin, stdout and stderr")
        self.process = process
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._stderr_stream = process.stderr
        self.runtime = runtime
        self.version = ""
        self.calls = 0
        self.heap = 0
        self.spent = False  # the code changed built-ins: serve no other call
        self._rss_limit = (memory_mb + RUNTIME_ALLOWANCE_MB) * 1024 * 1024
        self._over_memory = False
        self._watched: psutil.Process | None = None
        self._stderr = bytearray()
        self._stderr_task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, runtime: Runtime, memory_mb: int, cwd: Path) -> "Worker":
        """Start a worker and wait until it says it is ready."""
        command = runtime.worker_command(memory_mb + RUNTIME_ALLOWANCE_MB, MAX_RESULT_BYTES)
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=cwd,
                env=WORKER_ENV,
                limit=READ_LIMIT,
                start_new_session=True,
            )
        except OSError as exc:
            raise WorkerFailure("start", f"{runtime.kind} could not be started: {exc}") from exc
        worker = cls(process, runtime, memory_mb)
        worker._stderr_task = asyncio.create_task(worker._drain_stderr())
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                line = await worker._stdout.readline()
            ready = orjson.loads(line) if line else {}
        except (TimeoutError, orjson.JSONDecodeError, ValueError):
            ready = {}
        except BaseException:  # cancelled while starting: leave no process behind
            worker.kill()
            await asyncio.shield(worker.stop())
            raise
        if not isinstance(ready, dict) or ready.get("ready") is not True:
            await worker.stop()
            raise WorkerFailure(
                "start",
                f"the {runtime.kind} worker did not start: {worker.stderr_tail() or 'no output'}",
                stderr=worker.stderr_tail(),
            )
        worker.version = str(ready.get("runtime", runtime.kind))
        return worker

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.returncode is None

    async def call(self, request: bytes, timeout_s: float) -> dict[str, Any]:
        """Send one request line and return the reply; raise WorkerFailure (and stop the
        worker) on a timeout, too much memory, a crash or an oversized reply."""
        self.calls += 1
        watchdog = asyncio.create_task(self._watch_memory())
        try:
            async with asyncio.timeout(timeout_s):
                self._stdin.write(request)
                await self._stdin.drain()
                line = await self._stdout.readline()
        except TimeoutError:
            self.kill()
            if self._over_memory:
                raise self._memory_failure() from None
            raise WorkerFailure(
                "timeout", f"main() did not finish within {round(timeout_s * 1000)} ms"
            ) from None
        except ValueError:  # the reply line is longer than READ_LIMIT
            self.kill()
            raise WorkerFailure(
                "too_large", f"the reply is larger than {READ_LIMIT // 1024 // 1024} MiB"
            ) from None
        except ConnectionError:  # the worker is gone; its exit is looked at below
            line = b""
        finally:
            watchdog.cancel()
        if not line.endswith(b"\n"):
            raise await self._died()
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            self.kill()
            await self._wait_exit()
            raise WorkerFailure(
                "crash",
                f"the {self.runtime.kind} worker sent something that is not a reply (does the "
                "code write to file descriptor 1 directly? use console.log)",
            )
        if "exit" in message:
            await self._wait_exit()
            raise WorkerFailure(
                "exit",
                f"the code ended the worker process with process.exit({message['exit']})",
                exit_code=message["exit"],
                console=message.get("console") or [],
            )
        self.heap = int(message.get("heap") or 0)
        self.spent = bool(message.get("retire"))
        return message

    async def _died(self) -> WorkerFailure:
        """The failure for a worker whose output ended in the middle of a call."""
        code = await self._wait_exit()
        stderr = self.stderr_tail()
        if self._over_memory or "heap out of memory" in stderr or "Reached heap limit" in stderr:
            return self._memory_failure()
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return WorkerFailure(
            "crash",
            f"the {self.runtime.kind} worker died during the call ({how})",
            code,
            stderr=stderr,
        )

    def _memory_failure(self) -> WorkerFailure:
        limit = self._rss_limit // 1024 // 1024 - RUNTIME_ALLOWANCE_MB
        return WorkerFailure(
            "memory", f"the code used more than its memory limit of {limit} MB (config.memory_mb)"
        )

    async def _watch_memory(self) -> None:
        try:
            if self._watched is None:
                self._watched = psutil.Process(self.process.pid)
            watched = self._watched
            while True:
                await asyncio.sleep(WATCH_INTERVAL_S)
                if watched.memory_info().rss > self._rss_limit:
                    self._over_memory = True
                    self.kill()
                    return
        except psutil.Error:
            return

    async def _drain_stderr(self) -> None:
        while chunk := await self._stderr_stream.read(65536):
            self._stderr += chunk
            del self._stderr[:-STDERR_TAIL_BYTES]

    def stderr_tail(self) -> str:
        """The last few KB the process wrote to stderr."""
        return self._stderr.decode("utf-8", "replace").strip()

    def kill(self) -> None:
        """Kill the worker and whatever it started (its own process group) now; `stop()` reaps
        it. Not `Process.kill()`: that polls the child first and so may reap it under asyncio's
        child watcher, which then reports exit code 255 ("Unknown child process pid")."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    async def _wait_exit(self) -> int | None:
        try:
            async with asyncio.timeout(5):
                await self.process.wait()
        except TimeoutError:
            self.kill()
            await self.process.wait()
        if self._stderr_task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    await self._stderr_task
        return self.process.returncode

    async def stop(self, *, graceful: bool = False) -> None:
        """End the process (closing stdin lets it finish by itself) and reap it."""
        if not self._stdin.is_closing():
            self._stdin.close()
        if not graceful:
            self.kill()
        await self._wait_exit()
        if self._stderr_task is not None and not self._stderr_task.done():
            self._stderr_task.cancel()
