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

`isolation: warm` does not come here: the server talks to its warm processes itself (`warm.py`).
"""

import asyncio  # noqa: F401 - warm for `async def main`: importing it per call costs ~10x a call
import contextlib
import gc
import json
import os
import select
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conv3n.blocks.custom.sandbox import call, capture, fdio, limits
else:  # imported by path, without conv3n: see the module docstring
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import call
    import capture
    import fdio
    import limits

    sys.path.pop(0)


_INLINE_REPLY = 32 * 1024
"""Replies up to this size go out in the same write as their header (one wake-up of the
parent instead of two); larger ones follow by sendfile."""


def _send(header: dict[str, Any], body_fd: int | None = None, size: int = 0) -> None:
    data = json.dumps(header, ensure_ascii=False).encode()
    frame = fdio.LENGTH.pack(len(data)) + data
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


def _child(header: dict[str, Any], body: bytes, output_fd: int, reply_fd: int) -> None:
    """The call process: never returns."""
    code = 70
    try:
        capture.redirect(output_fd, header["max_output"])
        limits.apply(header["memory_mb"], header["cpu_s"], header["baseline"])
        limits.forbid_processes()
        reply = call.run(body, header["max_result"])
        fdio.write_all(reply_fd, reply)
        code = 0
    except BaseException:  # noqa: BLE001 - a sandbox failure ends the call, never the worker
        capture.report_crash()
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
    text, truncated = capture.read_output(output_fd, os.fstat(output_fd).st_size, cap)
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


def serve() -> None:
    """Answer requests until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limits.become_subreaper()
    limits.die_with_parent()
    gc.collect()
    gc.freeze()  # the call processes then share the warm heap instead of copying it
    _send({"ready": True, "pid": os.getpid(), "seccomp": limits.seccomp_supported()})
    while True:
        length = fdio.read_exact(0, fdio.LENGTH.size)
        if length is None:
            return
        raw = fdio.read_exact(0, fdio.LENGTH.unpack(length)[0])
        if raw is None:
            return
        header = json.loads(raw)
        body = fdio.read_exact(0, header["body"])
        if body is None:
            return
        _handle(header, body)


if __name__ == "__main__":
    serve()
