"""The sandbox worker: a warm process that forks one short-lived call process per request.

Run as `python -I <this file>` (standard library only: it must start fast and must not import
conv3n, which may not even be installed in a requirements environment). It talks to its parent
over stdin/stdout in frames: a 4-byte big-endian length and a JSON header, optionally followed
by raw bytes whose length the header gives.

    parent -> worker   {"timeout_ms", "cpu_s", "memory_mb", "max_result", "max_output",
                        "warm", "body"} + body (the JSON request `{"code", "ctx"}`)
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

A request with a `warm` key (`isolation: warm`) goes to that key's warm process instead, which
runs many calls of the same code one after another (`warm.py`).
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
    from conv3n.blocks.custom.sandbox import call, fdio, limits, warm
else:  # imported by path, without conv3n: see the module docstring
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import call
    import fdio
    import limits
    import warm

    sys.path.pop(0)

_LENGTH = struct.Struct(">I")
_TRUNCATED = "\n[output truncated: more than {} bytes]\n"
_MARGIN = 200


_INLINE_REPLY = 32 * 1024
"""Replies up to this size go out in the same write as their header (one wake-up of the
parent instead of two); larger ones follow by sendfile."""


def _send(header: dict[str, Any], body_fd: int | None = None, size: int = 0) -> None:
    data = json.dumps(header, ensure_ascii=False).encode()
    frame = _LENGTH.pack(len(data)) + data
    if body_fd is not None and 0 < size <= _INLINE_REPLY:
        body = os.pread(body_fd, size, 0)
        if len(body) != size:
            raise OSError("the reply file ended early")
        fdio.write_all(1, frame + body)
        return
    fdio.write_all(1, frame)
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

    def reset(self, cap: int) -> None:
        """Start a new call's output (a warm process): back to the start of the file."""
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._left = self._cap = cap
        self._full = False

    def write(self, text: str) -> int:
        if self._full:
            return len(text)
        data = text.encode("utf-8", "backslashreplace")
        if len(data) > self._left:
            data = data[: self._left] + _TRUNCATED.format(self._cap).encode()
            self._full = True
        self._left -= len(data)
        fdio.write_all(self._fd, data)
        return len(text)


def _enter_call_process(output_fd: int, max_output: int) -> _CappedWriter:
    """In a fresh fork: stdin from /dev/null, stdout and stderr to the output file, and the
    worker's descriptors of warm processes closed (a call may not write to another's pipes)."""
    for fd in _WARM.descriptors():
        os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(null)
    os.close(output_fd)
    writer = _CappedWriter(1, max_output)
    sys.stdout = sys.stderr = writer
    return writer


def _report_crash() -> None:
    try:
        import traceback

        os.write(2, traceback.format_exc().encode())
    except BaseException:  # noqa: BLE001, S110 - nothing else can be done here
        pass


def _child(header: dict[str, Any], body: bytes, output_fd: int, reply_fd: int) -> None:
    """The call process: never returns."""
    code = 70
    try:
        _enter_call_process(output_fd, header["max_output"])
        limits.apply(header["memory_mb"], header["cpu_s"], header["baseline"])
        limits.forbid_processes()
        reply = call.run(body, header["max_result"])
        fdio.write_all(reply_fd, reply)
        code = 0
    except BaseException:  # noqa: BLE001 - a sandbox failure ends the call, never the worker
        _report_crash()
    finally:
        os._exit(code)


def _warm_child(
    header: dict[str, Any], request_fd: int, done_fd: int, output_fd: int, reply_fd: int
) -> None:
    """A warm process (`isolation: warm`): answers calls until retired; never returns."""
    code = 70
    try:
        writer = _enter_call_process(output_fd, header["max_output"])
        limits.die_with_parent()
        limits.apply(header["memory_mb"], None, header["baseline"])
        limits.forbid_processes()
        warm.serve_calls(
            request_fd,
            done_fd,
            writer.reset,
            reply_fd,
            lambda body, max_result: call.run(body, max_result, keep=True),
        )
        code = 0
    except BaseException:  # noqa: BLE001 - a sandbox failure ends the process, never the worker
        _report_crash()
    finally:
        os._exit(code)


def _start_warm(header: dict[str, Any]) -> "warm.WarmProcess":
    output_fd = os.memfd_create("conv3n-output")
    reply_fd = os.memfd_create("conv3n-reply")
    request_read, request_write = os.pipe()
    done_read, done_write = os.pipe()
    header["baseline"] = limits.data_size()
    pid = os.fork()
    if pid == 0:
        os.close(request_write)
        os.close(done_read)
        _warm_child(header, request_read, done_write, output_fd, reply_fd)
    os.close(request_read)
    os.close(done_write)
    return warm.WarmProcess(pid, request_write, done_read, output_fd, reply_fd)


_WARM = warm.WarmSet(_start_warm)


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


def _status(status: int) -> tuple[str, int | None, str | None]:
    """(state, exit code, signal name) of a wait status."""
    if os.WIFSIGNALED(status):
        return "signaled", None, signal.Signals(os.WTERMSIG(status)).name
    return "exited", os.waitstatus_to_exitcode(status), None


def _report(
    header: dict[str, Any],
    outcome: tuple[str, int | None, str | None],
    started: float,
    output_fd: int,
    reply_fd: int,
) -> None:
    """Send the parent the call's outcome, its output and its reply (read from the files)."""
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
    state, exit_code, signal_name = outcome
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
        _kill(pid)  # the call is over either way: nothing it started may outlive it
        _, status = os.waitpid(pid, 0)
        _reap_orphans()
        outcome = _status(status) if ready else ("timeout", None, None)
        _report(header, outcome, started, output_fd, reply_fd)
    finally:
        os.close(output_fd)
        os.close(reply_fd)


def _handle_warm(header: dict[str, Any], body: bytes) -> None:
    key = header["warm"]
    process = _WARM.get(key, header)
    started = time.monotonic()
    answer = process.wait(header["timeout_ms"] / 1000) if process.send(header, body) else b""
    retire = answer != warm.KEEP
    if answer in (warm.KEEP, warm.RETIRE):
        outcome: tuple[str, int | None, str | None] = ("exited", 0, None)
        if answer == warm.RETIRE:
            process.reap(kill=True)
    elif answer is None:
        process.reap(kill=True)
        outcome = ("timeout", None, None)
    else:  # the process ended without a reply, or closed its end of the pipes: end it
        outcome = _status(process.reap(kill=True))  # a dead one keeps its own wait status
    try:
        _report(header, outcome, started, process.output_fd, process.reply_fd)
    finally:
        if retire:
            _WARM.drop(key)
            process.close()


def serve() -> None:
    """Answer requests until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limits.become_subreaper()
    limits.die_with_parent()
    gc.collect()
    gc.freeze()  # the call processes then share the warm heap instead of copying it
    _send({"ready": True, "pid": os.getpid(), "seccomp": limits.seccomp_supported()})
    while True:
        length = fdio.read_exact(0, _LENGTH.size)
        if length is None:
            return
        raw = fdio.read_exact(0, _LENGTH.unpack(length)[0])
        if raw is None:
            return
        header = json.loads(raw)
        body = fdio.read_exact(0, header["body"])
        if body is None:
            return
        if header.get("warm"):
            _handle_warm(header, body)
        else:
            _handle(header, body)


if __name__ == "__main__":
    serve()
