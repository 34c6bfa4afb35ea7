"""`ProcessPool`: the processes of one process block, shared by every execution of an engine.

Made through `ctx.shared(...)`, so the engine closes it (`aclose()`) when it shuts down. At most
`pool_size` processes run at once. In `once` mode each call starts a process and lets it exit;
in `worker` mode an idle process is reused, and one that failed in any way (timeout, crash,
garbage) is killed and replaced by a fresh one on the next call.
"""

import asyncio
import logging
from pathlib import Path

from conv3n.blocks.process import protocol
from conv3n.blocks.process.manifest import Manifest
from conv3n.blocks.process.process import EXIT_GRACE_S, BlockProcess, ProcessDied
from conv3n.errors import BlockError, NodeTimeout


class ProcessPool:
    """Runs requests of one block on its processes."""

    def __init__(self, manifest: Manifest, folder: Path):
        self.manifest = manifest
        self.folder = folder
        self._slots = asyncio.Semaphore(manifest.pool_size)
        self._idle: list[BlockProcess] = []
        self._running: set[BlockProcess] = set()
        self._closed = False

    @property
    def processes(self) -> int:
        """How many processes are alive or not yet reaped (busy and idle)."""
        return len(self._running)

    async def call(self, request: protocol.Request, logger: logging.Logger) -> protocol.Answer:
        """Send `request` to a process and return its answer.

        Raises:
            NodeTimeout: no answer within the manifest's `timeout_ms` (the process is killed).
            BlockError: the process could not start, died, or broke the protocol.
        """
        manifest = self.manifest
        async with self._slots:
            if self._closed:
                raise BlockError(f"{manifest.type}: the engine is shutting down", retryable=True)
            process: BlockProcess | None = None
            answered = False
            try:
                async with asyncio.timeout(manifest.timeout_ms / 1000):
                    process = await self._take()
                    answer = await process.exchange(request, logger)
                answered = True
                return answer
            except TimeoutError:
                raise NodeTimeout(
                    f"{manifest.type}: no answer within {manifest.timeout_ms} ms; the process "
                    "was killed",
                    details={"timeout_ms": manifest.timeout_ms, **self._facts(process)},
                ) from None
            except ProcessDied as exc:
                raise BlockError(
                    f"{manifest.type}: the process {exc}",
                    retryable=True,
                    details=self._facts(process),
                ) from None
            except protocol.ProtocolError as exc:
                raise BlockError(
                    f"{manifest.type}: the process {exc}",
                    retryable=False,
                    details=self._facts(process),
                ) from None
            finally:
                if process is not None:
                    await self._release(process, answered=answered)

    async def _take(self) -> BlockProcess:
        while self._idle:
            process = self._idle.pop()
            if process.alive:
                return process
            await self._end(process)
        process = await BlockProcess.start(self.manifest, self.folder)
        self._running.add(process)
        return process

    async def _release(self, process: BlockProcess, *, answered: bool) -> None:
        if answered and self.manifest.mode == "worker" and process.alive and not self._closed:
            self._idle.append(process)
            return
        if answered:
            # a once-mode process exits by itself once its stdin is closed
            await self._end(process, grace_s=EXIT_GRACE_S)
        else:
            process.kill()
            await self._end(process)

    async def _end(self, process: BlockProcess, *, grace_s: float = 0.0) -> None:
        await process.reap(grace_s=grace_s)
        self._running.discard(process)

    def _facts(self, process: BlockProcess | None) -> dict[str, object]:
        facts: dict[str, object] = {"type": self.manifest.type, "mode": self.manifest.mode}
        if process is not None:
            facts["pid"] = process.pid
            tail = [line for line in process.stderr_tail if line.strip()]
            if tail:
                facts["stderr"] = "\n".join(tail)
        return facts

    async def aclose(self) -> None:
        """Let idle workers exit (stdin closed), kill the rest, and wait for all of them."""
        self._closed = True
        idle, self._idle = self._idle, []
        for process in list(self._running):
            if process not in idle:
                process.kill()
        await asyncio.gather(*(self._end(p, grace_s=EXIT_GRACE_S) for p in idle))
        await asyncio.gather(*(self._end(p) for p in list(self._running)))
