"""Pools of pre-started JavaScript workers, one pool per runtime and memory limit.

`JsRunners` is the process-wide object custom/code keeps under `ctx.shared("custom/code:js")`:
it owns the pools, the folder the code files are written to and the npm environments, and its
`aclose()` stops every worker. A pool lends each worker to one call at a time, keeps a spare
worker started ahead, replaces workers that were killed and retires old ones.
"""

import asyncio
import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from conv3n.blocks.custom.js.runtime import Runtime
from conv3n.blocks.custom.js.worker import Worker, WorkerFailure

POOL_SIZE = min(16, max(4, os.cpu_count() or 1))
MAX_CALLS_PER_WORKER = 500  # every call imports a new module instance; retire before they pile up
MAX_HEAP_BYTES_FRACTION = 0.5


class WorkerPool:
    """Up to `size` workers of one runtime and memory limit."""

    def __init__(self, runtime: Runtime, memory_mb: int, cwd: Path, size: int = POOL_SIZE):
        self.runtime = runtime
        self.memory_mb = memory_mb
        self.size = size
        self._cwd = cwd
        self._idle: list[Worker] = []
        self._live = 0  # idle + busy + starting
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def call(self, request: bytes, timeout_s: float) -> tuple[dict[str, Any], str]:
        """Run one request on a worker: the reply and the runtime's version."""
        worker = await self._acquire()
        healthy = False
        try:
            reply = await worker.call(request, timeout_s)
            healthy = True
            return reply, worker.version
        except WorkerFailure as failure:
            failure.runtime = worker.version
            raise
        finally:
            self._release(worker, healthy=healthy)

    async def _acquire(self) -> Worker:
        async with self._changed:
            await self._changed.wait_for(
                lambda: self._closed or bool(self._idle) or self._live < self.size
            )
            if self._closed:
                raise WorkerFailure("start", "the JavaScript workers are shutting down")
            if self._idle:
                worker = self._idle.pop()
            else:
                self._live += 1
                worker = None
        if worker is None:
            try:
                worker = await Worker.start(self.runtime, self.memory_mb, self._cwd)
            except BaseException:
                await self._lost()
                raise
        self._start_spare()
        return worker

    def _start_spare(self) -> None:
        """Start one worker ahead when none is idle, so the next call does not wait for it."""
        if self._idle or self._live >= self.size or self._closed:
            return
        self._live += 1
        task = asyncio.create_task(self._spare())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _spare(self) -> None:
        try:
            worker = await Worker.start(self.runtime, self.memory_mb, self._cwd)
        except (WorkerFailure, asyncio.CancelledError):
            await self._lost()
            return
        async with self._changed:
            if self._closed:
                self._live -= 1
                self._retire(worker)
                return
            self._idle.append(worker)
            self._changed.notify()

    async def _lost(self) -> None:
        async with self._changed:
            self._live -= 1
            self._changed.notify()

    def _release(self, worker: Worker, *, healthy: bool) -> None:
        spent = (
            worker.spent
            or worker.calls >= MAX_CALLS_PER_WORKER
            or (worker.heap > self.memory_mb * 1024 * 1024 * MAX_HEAP_BYTES_FRACTION)
        )
        if healthy and worker.alive and not spent and not self._closed:
            self._idle.append(worker)
        else:
            self._live -= 1
            self._retire(worker, graceful=healthy)
        task = asyncio.create_task(self._notify())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify()
        self._start_spare()

    def _retire(self, worker: Worker, *, graceful: bool = False) -> None:
        if not graceful:
            worker.kill()
        task = asyncio.create_task(worker.stop(graceful=graceful))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Stop every worker of this pool."""
        self._closed = True
        async with self._changed:
            self._changed.notify_all()
        idle, self._idle = self._idle, []
        for worker in idle:
            self._live -= 1
            self._retire(worker)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class JsRunners:
    """Everything custom/code in JavaScript keeps for the life of the process."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="conv3n-js-"))
        self.environments: dict[str, Path] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self._pools: dict[tuple[str, int], WorkerPool] = {}
        self._written: set[Path] = set()

    def pool(self, runtime: Runtime, memory_mb: int) -> WorkerPool:
        """The pool for a runtime and memory limit (made on first use)."""
        key = (runtime.path, memory_mb)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = WorkerPool(runtime, memory_mb, self.root)
        return pool

    async def module_file(self, folder: Path, code: str, suffix: str) -> Path:
        """The path of a file holding `code` in `folder`, named by its hash."""
        digest = hashlib.sha256(code.encode()).hexdigest()[:32]
        path = folder / f"{digest}{suffix}"
        if path not in self._written:
            await asyncio.to_thread(_write_atomically, path, code)
            self._written.add(path)
        return path

    async def aclose(self) -> None:
        """Stop every worker and remove the code files."""
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            with contextlib.suppress(Exception):
                await pool.aclose()
        await asyncio.to_thread(shutil.rmtree, self.root, True)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    staging.write_text(text, encoding="utf-8")
    staging.replace(path)
