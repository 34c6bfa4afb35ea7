"""The sandbox worker: a warm process that forks one short-lived call process per request.

Run as `python -I <this file>` (standard library only: it must start fast and must not import
conv3n, which may not even be installed in a requirements environment). It talks to its parent
over stdin/stdout in frames: a 4-byte big-endian length and a JSON header, optionally followed
by raw bytes whose length the header gives.

    parent -> worker   {"timeout_ms", "cpu_s", "memory_mb", "max_result", "max_output",
                        "body"} + body (the JSON request `{"code", "ctx"}`)
    worker -> parent   {"ready", "pid", "seccomp"} once, at start
                       {"status": "exited" | "signaled" | "timeout", "code", "signal",
                        "output", "truncated", "size", "ms"} + size bytes (the call's reply)

Each call runs in a fresh fork of this process (no state survives a call). The call process
stays in the worker's process group (the parent kills the group when it kills the worker, so
the call dies with it; it cannot start processes of its own), sends its output (stdout and
stderr, capped) and its reply to memory files the worker created, limits itself
(`limits.apply`, `limits.forbid_processes`) and runs `call.run`. The worker enforces the
wall-clock timeout by killing the call process, and reads the output and reply files even
when the call process crashed.
"""

import asyncio  # noqa: F401 - warm for `async def main`: importing it per call costs ~10x a call
import contextlib
import gc
import io
import json
import os
import select
import signal
import struct
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conv3n.blocks.custom.sandbox import call, limits
else:  # imported by path, without conv3n: see the module docstring
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import call
    import limits

    sys.path.pop(0)

_LENGTH = struct.Struct(">I")
_TRUNCATED = "\n[output truncated: more than {} bytes]\n"
_MARGIN = 200


def _read_exact(fd: int, size: int) -> bytes | None:
    """Exactly `size` bytes from `fd`, or None at end of file."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, min(size - len(chunks), 1 << 20))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _send(header: dict[str, Any], body_fd: int | None = None, size: int = 0) -> None:
    data = json.dumps(header, ensure_ascii=False).encode()
    _write_all(1, _LENGTH.pack(len(data)) + data)
    offset = 0
    while body_fd is not None and offset < size:
        sent = os.sendfile(1, body_fd, offset, size - offset)
        if sent == 0:
            raise OSError("the reply file ended early")
        offset += sent


class _CappedWriter(io.TextIOBase):
    """sys.stdout and sys.stderr of a call: writes to fd 1 until `cap` bytes, then a marker."""

    def __init__(self, fd: int, cap: int):
        self._fd = fd
        self._left = cap
        self._cap = cap
        self._full = False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, text: str) -> int:
        if self._full:
            return len(text)
        data = text.encode("utf-8", "backslashreplace")
        if len(data) > self._left:
            data = data[: self._left] + _TRUNCATED.format(self._cap).encode()
            self._full = True
        self._left -= len(data)
        _write_all(self._fd, data)
        return len(text)


def _child(header: dict[str, Any], body: bytes, output_fd: int, reply_fd: int) -> None:
    """The call process: never returns."""
    code = 70
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(null)
        os.close(output_fd)
        writer = _CappedWriter(1, header["max_output"])
        sys.stdout = sys.stderr = writer
        limits.apply(header["memory_mb"], header["cpu_s"], header["baseline"])
        limits.forbid_processes()
        reply = call.run(body, header["max_result"])
        _write_all(reply_fd, reply)
        code = 0
    except BaseException:  # noqa: BLE001 - a sandbox failure ends the call, never the worker
        try:
            import traceback

            os.write(2, traceback.format_exc().encode())
        except BaseException:  # noqa: BLE001, S110 - nothing else can be done here
            pass
    finally:
        os._exit(code)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _reap_orphans() -> None:
    """Reap whatever descendants were handed to this subreaper."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _handle(header: dict[str, Any], body: bytes) -> None:
    output_fd = os.memfd_create("conv3n-output")
    reply_fd = os.memfd_create("conv3n-reply")
    header["baseline"] = limits.data_size()
    started = time.monotonic()
    try:
        pid = os.fork()
        if pid == 0:
            _child(header, body, output_fd, reply_fd)
        pidfd = os.pidfd_open(pid)
        try:
            ready, _, _ = select.select([pidfd], [], [], header["timeout_ms"] / 1000)
        finally:
            os.close(pidfd)
        timed_out = not ready
        _kill(pid)  # the call is over either way: nothing it started may outlive it
        _, status = os.waitpid(pid, 0)
        _reap_orphans()
        elapsed = (time.monotonic() - started) * 1000
        cap = header["max_output"]
        output_size = os.fstat(output_fd).st_size
        output = os.pread(output_fd, min(output_size, cap + _MARGIN), 0)
        text = output.decode("utf-8", "replace")
        truncated = output_size > cap
        if output_size > cap + _MARGIN:
            text += _TRUNCATED.format(cap)
        size = os.fstat(reply_fd).st_size
        if size > header["max_result"] + 4096:
            size = 0  # written around the reply encoder: not a reply
        if timed_out:
            state, exit_code, signal_name = "timeout", None, None
        elif os.WIFSIGNALED(status):
            state, exit_code = "signaled", None
            signal_name = signal.Signals(os.WTERMSIG(status)).name
        else:
            state, exit_code, signal_name = "exited", os.waitstatus_to_exitcode(status), None
        reply = {
            "status": state,
            "code": exit_code,
            "signal": signal_name,
            "output": text,
            "truncated": truncated,
            "size": size,
            "ms": elapsed,
        }
        _send(reply, reply_fd, size)
    finally:
        os.close(output_fd)
        os.close(reply_fd)


def serve() -> None:
    """Answer requests until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limits.become_subreaper()
    limits.die_with_parent()
    gc.collect()
    gc.freeze()  # the call processes then share the warm heap instead of copying it
    _send({"ready": True, "pid": os.getpid(), "seccomp": limits.seccomp_supported()})
    while True:
        length = _read_exact(0, _LENGTH.size)
        if length is None:
            return
        raw = _read_exact(0, _LENGTH.unpack(length)[0])
        if raw is None:
            return
        header = json.loads(raw)
        body = _read_exact(0, header["body"])
        if body is None:
            return
        _handle(header, body)


if __name__ == "__main__":
    serve()
