"""Warm call processes (`isolation: warm`): one long-lived call process per code, reused.

Standard library only: the sandbox worker imports this module by path, without conv3n.

The worker forks a warm process the first time it sees a key (the parent's hash of the node,
the code and its memory limit). The process limits itself once (memory, no new processes), runs
the code's module on its first call and then answers calls one after another on a pipe: each
call re-arms a CPU timer (ITIMER_PROF: SIGPROF, whose default action ends the process, past
`cpu_s`), and writes its output and reply to the two memory files the worker created for it, as
a forked call does. The worker enforces the wall-clock timeout as it does for a fork, and
reads the files even when the process died.

A warm process retires (exits right after its reply) after `MAX_CALLS` calls, after any call
that did not succeed (an exception may leave its module half-changed, a MemoryError leaves the
heap full), and when a call left a thread running. The worker keeps at most `MAX_PROCESSES`
warm processes and ends the least recently used one past that.
"""

import collections
import contextlib
import json
import os
import select
import signal
import struct
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING or __package__:  # part of conv3n (tests, type checks)
    from conv3n.blocks.custom.sandbox import fdio
else:  # imported by path by the worker, without conv3n (see worker.py)
    import fdio

MAX_CALLS = 10_000
"""Calls a warm process answers before it retires (bounds what a slow leak can accumulate)."""
MAX_PROCESSES = 4
"""Warm processes one worker keeps; the least recently used one ends past that."""

_LENGTH = struct.Struct(">I")
_OK = b'{"ok":true'
KEEP, RETIRE = b"k", b"r"


def _threads_left() -> bool:
    threading = sys.modules.get("threading")
    return threading is not None and threading.active_count() > 1


def serve_calls(
    request_fd: int,
    done_fd: int,
    reset_output: Callable[[int], None],
    reply_fd: int,
    run: Callable[[bytes, int], bytes],
) -> None:
    """The warm process's loop (after its limits are set): answer calls until told to stop.

    Each request is a 4-byte length, a JSON header (`cpu_s`, `max_output`, `max_result`) and
    the body. After writing the reply the process writes one byte to `done_fd`: KEEP, or
    RETIRE just before it exits.
    """
    calls = 0
    while True:
        length = fdio.read_exact(request_fd, _LENGTH.size)
        if length is None:
            return
        frame = fdio.read_exact(request_fd, _LENGTH.unpack(length)[0])
        if frame is None:
            return
        header_size = _LENGTH.unpack_from(frame)[0]
        header = json.loads(frame[_LENGTH.size : _LENGTH.size + header_size])
        body = frame[_LENGTH.size + header_size :]
        reset_output(header["max_output"])
        signal.setitimer(signal.ITIMER_PROF, header["cpu_s"])
        reply = run(body, header["max_result"])
        signal.setitimer(signal.ITIMER_PROF, 0)
        fdio.pwrite_all(reply_fd, reply)
        calls += 1
        retire = calls >= MAX_CALLS or not reply.startswith(_OK) or _threads_left()
        os.write(done_fd, RETIRE if retire else KEEP)
        if retire:
            return


class WarmProcess:
    """The worker's side of one warm process: its pid, pipes and memory files."""

    def __init__(self, pid: int, request_fd: int, done_fd: int, output_fd: int, reply_fd: int):
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        self.request_fd = request_fd
        self.done_fd = done_fd
        self.output_fd = output_fd
        self.reply_fd = reply_fd

    def send(self, header: dict[str, Any], body: bytes) -> bool:
        """Start a call (after emptying the memory files); False if the process is gone."""
        os.ftruncate(self.output_fd, 0)
        os.ftruncate(self.reply_fd, 0)
        data = json.dumps(
            {key: header[key] for key in ("cpu_s", "max_output", "max_result")}
        ).encode()
        frame = _LENGTH.pack(len(data)) + data + body
        try:
            fdio.write_all(self.request_fd, _LENGTH.pack(len(frame)) + frame)
        except BrokenPipeError:
            return False
        return True

    def wait(self, timeout_s: float) -> bytes | None:
        """KEEP or RETIRE once the call replied; b"" if the process ended without a reply;
        None on timeout."""
        ready, _, _ = select.select([self.done_fd, self.pidfd], [], [], timeout_s)
        if self.done_fd in ready:
            return os.read(self.done_fd, 1)
        return b"" if ready else None

    def reap(self, kill: bool) -> int:
        """Wait for the process to end (SIGKILL it first if `kill`); its wait status."""
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        return status

    @property
    def descriptors(self) -> tuple[int, ...]:
        """The worker's descriptors of this process (closed in every other call process)."""
        return (self.request_fd, self.done_fd, self.pidfd, self.output_fd, self.reply_fd)

    def close(self) -> None:
        """Close the worker's descriptors of this (ended) process."""
        for fd in self.descriptors:
            os.close(fd)


class WarmSet:
    """A worker's warm processes by key, least recently used first."""

    def __init__(self, start: Callable[[dict[str, Any]], WarmProcess]):
        self._start = start
        self._processes: collections.OrderedDict[str, WarmProcess] = collections.OrderedDict()

    def get(self, key: str, header: dict[str, Any]) -> WarmProcess:
        """The warm process of `key`, started if there is none."""
        process = self._processes.get(key)
        if process is not None:
            self._processes.move_to_end(key)
            return process
        while len(self._processes) >= MAX_PROCESSES:
            _, oldest = self._processes.popitem(last=False)
            oldest.reap(kill=True)
            oldest.close()
        process = self._processes[key] = self._start(header)
        return process

    def drop(self, key: str) -> None:
        """Forget `key`'s process (the caller has ended and closed it)."""
        self._processes.pop(key, None)

    def descriptors(self) -> list[int]:
        """Every descriptor the worker holds for its warm processes."""
        return [fd for process in self._processes.values() for fd in process.descriptors]
