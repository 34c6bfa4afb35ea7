"""`BlockProcess`: one running process of a process block, and one request/answer exchange.

Owned by `pool.ProcessPool`, which bounds each exchange with the manifest's timeout and kills
the process when anything goes wrong. stderr is read all along and goes to the log of the node
being served (or the pool's logger between requests); its last lines explain a crash.
"""

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from pathlib import Path

import psutil

from conv3n.blocks.process import protocol
from conv3n.blocks.process.manifest import Manifest

log = logging.getLogger("conv3n.blocks.process")

PASSED_ENV = ("PATH", "HOME", "LANG", "TZ", "TMPDIR", "SYSTEMROOT")
"""The only variables of conv3n's own environment a block process sees (plus `LC_*`)."""
MAX_STDERR_LINE = 8 * 1024
MAX_STDERR_LINES = 1000
"""stderr lines logged per request; the rest are counted, not logged."""
KEPT_STDERR_LINES = 20
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
EXIT_GRACE_S = 2.0
"""How long a process may take to exit once its stdin is closed, before it is killed."""


class ProcessDied(protocol.ProtocolError):
    """The process exited (or closed stdout) before answering."""


class CannotStart(protocol.ProtocolError):
    """The program cannot be started (not found, not executable)."""


def child_env(manifest: Manifest, folder: Path) -> dict[str, str]:
    """The process's environment: a few plumbing variables of ours, then the manifest's `env`.

    Not the whole environment: conv3n's own (CONV3N_SECRET_KEY, database URLs) and the
    operator's secrets stay out of block processes. This reads `os.environ` outside
    `runtime/settings.py` on purpose: the names are fixed here, not configuration.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if name in PASSED_ENV or name.startswith("LC_")
    }
    env.update({name: expand(value, folder) for name, value in manifest.env.items()})
    env["CONV3N_BLOCK_TYPE"] = manifest.type
    env["CONV3N_BLOCK_MODE"] = manifest.mode
    return env


def expand(text: str, folder: Path) -> str:
    """`${BLOCK_DIR}` replaced by the manifest's folder."""
    return text.replace("${BLOCK_DIR}", str(folder))


def argv(manifest: Manifest, folder: Path) -> list[str]:
    """The command to start: a program holding a `/` is relative to the manifest's folder."""
    args = [expand(arg, folder) for arg in manifest.command]
    if "/" in args[0] or (os.sep != "/" and os.sep in args[0]):
        args[0] = str((folder / args[0]).resolve())
    return args


class BlockProcess:
    """One started process. `exchange()` one request at a time; `kill()` and `reap()` end it."""

    def __init__(self, manifest: Manifest, folder: Path, process: asyncio.subprocess.Process):
        self.manifest = manifest
        self.folder = folder
        self._process = process
        self._logger: logging.Logger = log
        self._stderr_lines = 0
        self.stderr_tail: deque[str] = deque(maxlen=KEPT_STDERR_LINES)
        self._pump = asyncio.create_task(self._read_stderr(), name=f"{manifest.type}:stderr")

    @classmethod
    async def start(cls, manifest: Manifest, folder: Path) -> "BlockProcess":
        """Start the manifest's command in its folder.

        Raises:
            CannotStart: the program is not found or not executable.
        """
        command = argv(manifest, folder)
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=folder,
                env=child_env(manifest, folder),
                limit=manifest.max_line_bytes,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise CannotStart(
                f"cannot be started: the program {command[0]!r} was not found"
            ) from None
        except PermissionError:
            raise CannotStart(f"cannot be started: {command[0]!r} is not executable") from None
        except OSError as exc:
            raise CannotStart(f"cannot be started: {exc.strerror or exc}") from None
        return cls(manifest, folder, process)

    @property
    def alive(self) -> bool:
        """The process has not exited. Also asks the OS: a process killed while idle is dead
        (a zombie) a moment before asyncio's child watcher reports it."""
        if self._process.returncode is not None:
            return False
        stdout = self._process.stdout
        if stdout is not None and stdout.at_eof():
            return False
        try:
            return psutil.Process(self._process.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    @property
    def pid(self) -> int:
        """The process id."""
        return self._process.pid

    async def exchange(self, request: protocol.Request, logger: logging.Logger) -> protocol.Answer:
        """Send one request and read lines until its answer; log lines go to `logger`.

        Raises:
            ProtocolError: garbage, a line over the limit, an answer to another request.
            ProcessDied: the process exited before answering.
        """
        self._logger = logger
        self._stderr_lines = 0
        stdin, stdout = self._process.stdin, self._process.stdout
        if stdin is None or stdout is None:
            raise ProcessDied("has no stdin or stdout pipe")
        try:
            stdin.write(request.line())
            await stdin.drain()
            if self.manifest.mode == "once":
                stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            raise await self._died("before reading its request") from None
        while True:
            try:
                line = await stdout.readline()
            except ValueError:
                # asyncio's limit overrun: the process wrote a line longer than the limit
                raise protocol.ProtocolError(
                    f"wrote a line longer than {self.manifest.max_line_bytes:,} bytes "
                    "(max_line_bytes)"
                ) from None
            if not line:
                raise await self._died("before answering")
            if not line.strip():
                continue
            message = protocol.read_line(line, request.id)
            if isinstance(message, protocol.Log):
                level = _LEVELS.get(message.level.lower(), logging.INFO)
                logger.log(level, "%s", message.log)
                continue
            self._logger = log
            return message

    async def _died(self, when: str) -> ProcessDied:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(EXIT_GRACE_S):
                await self._process.wait()
        code = self._process.returncode
        if code is None:
            self.kill()
            what = f"closed its stdout {when}"
        elif code < 0:
            what = f"was killed by signal {_signal_name(-code)} {when}"
        else:
            what = f"exited with code {code} {when}"
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(EXIT_GRACE_S):
                await asyncio.shield(self._pump)
        tail = [line for line in self.stderr_tail if line.strip()]
        return ProcessDied(f"{what}{': ' + tail[-1] if tail else ''}")

    def kill(self) -> None:
        """Kill the process and everything it started (its own process group), also when the
        process itself has exited and left children behind."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if hasattr(os, "killpg"):
                os.killpg(self._process.pid, signal.SIGKILL)
            elif self._process.returncode is None:
                self._process.kill()

    async def reap(self, *, grace_s: float = 0.0) -> None:
        """End the process: close stdin, give it `grace_s` to exit, kill it, wait for it."""
        stdin = self._process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        if grace_s > 0 and self.alive:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await self._process.wait()
        self.kill()
        await self._process.wait()
        try:
            async with asyncio.timeout(EXIT_GRACE_S):
                await self._pump
        except TimeoutError:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    async def _read_stderr(self) -> None:
        stderr = self._process.stderr
        assert stderr is not None  # noqa: S101 - a pipe
        pending = b""
        while True:
            chunk = await stderr.read(64 * 1024)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > MAX_STDERR_LINE:
                lines.append(pending)
                pending = b""
            for line in lines:
                self._stderr_line(line)
        if pending:
            self._stderr_line(pending)

    def _stderr_line(self, raw: bytes) -> None:
        text = raw[:MAX_STDERR_LINE].decode("utf-8", errors="replace").rstrip("\r")
        if len(raw) > MAX_STDERR_LINE:
            text += f"... ({len(raw):,} bytes)"
        self.stderr_tail.append(text)
        self._stderr_lines += 1
        if self._stderr_lines <= MAX_STDERR_LINES:
            self._logger.info("%s", text, extra={"stream": "stderr", "pid": self._process.pid})
        elif self._stderr_lines == MAX_STDERR_LINES + 1:
            self._logger.warning(
                "more stderr than %d lines; the rest is not logged", MAX_STDERR_LINES
            )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
