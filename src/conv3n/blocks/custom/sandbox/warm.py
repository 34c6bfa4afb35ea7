"""A warm process (`isolation: warm`): one limited interpreter that runs one node's code call
after call, started and spoken to by the server itself (`warm_pool.py`), with no worker between.

Run as `python -I <this file> OUTPUT_FD MEMORY_MB` (standard library only, like the worker: a
requirements environment may not have conv3n). OUTPUT_FD is a memory file the server made and
passed down; the process moves its stdin and stdout pipes out of the way, points fds 0 at
/dev/null and 1 and 2 at the output file, limits itself once (RLIMIT_DATA = its own baseline +
MEMORY_MB, the seccomp filter refusing new processes, death with the server), then answers:

    server -> process  4-byte length, then: 4-byte header length, the JSON header
                       {"cpu_s", "max_output", "max_result"}, the body (`{"code", "ctx"}`)
    process -> server  REPLY (reply length, output bytes, retire flag), then the reply

Each call re-arms a CPU timer (ITIMER_PROF: SIGPROF, whose default action ends the process,
past `cpu_s`); its output is what the output file holds after it (emptied before the next
call that follows output), which the server also reads when the process died half-way.

A warm process retires (exits right after its reply, flag set) after `MAX_CALLS` calls, after
any call that did not succeed (an exception may leave its module half-changed, a MemoryError
leaves the heap full), and when a call left a thread running.
"""

import json
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING or __package__:  # part of conv3n (tests, type checks)
    from conv3n.blocks.custom.sandbox import call, capture, fdio, limits
else:  # run by path, without conv3n (see the module docstring)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import call
    import capture
    import fdio
    import limits

    sys.path.pop(0)

MAX_CALLS = 10_000
"""Calls a warm process answers before it retires (bounds what a slow leak can accumulate)."""

LENGTH, REPLY = fdio.LENGTH, fdio.WARM_REPLY
_OK = b'{"ok":true'


def _threads_left() -> bool:
    threading = sys.modules.get("threading")
    return threading is not None and threading.active_count() > 1


def serve_calls(
    request_fd: int,
    reply_fd: int,
    writer: capture.CappedWriter,
    run: Callable[[bytes, int], bytes],
) -> None:
    """Answer calls on `request_fd` until it closes or the process retires."""
    calls = 0
    written = 0
    while True:
        length = fdio.read_exact(request_fd, LENGTH.size)
        if length is None:
            return
        frame = fdio.read_exact(request_fd, LENGTH.unpack(length)[0])
        if frame is None:
            return
        header_size = LENGTH.unpack_from(frame)[0]
        header = json.loads(frame[LENGTH.size : LENGTH.size + header_size])
        body = frame[LENGTH.size + header_size :]
        writer.reset(header["max_output"], written)
        signal.setitimer(signal.ITIMER_PROF, header["cpu_s"])
        reply = run(body, header["max_result"])
        signal.setitimer(signal.ITIMER_PROF, 0)
        calls += 1
        retire = calls >= MAX_CALLS or not reply.startswith(_OK) or _threads_left()
        written = os.fstat(writer.fileno()).st_size
        fdio.write_all(reply_fd, REPLY.pack(len(reply), written, retire) + reply)
        if retire:
            return


def _enter(output_fd: int) -> tuple[int, int, capture.CappedWriter]:
    """The pipes moved off fds 0 and 1; stdin from /dev/null, stdout and stderr to the output
    file. Returns (request fd, reply fd, the writer of sys.stdout and sys.stderr)."""
    request_fd, reply_fd = os.dup(0), os.dup(1)
    return request_fd, reply_fd, capture.redirect(output_fd, 0)


def main() -> None:
    """The warm process: never returns."""
    code = 70
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        output_fd, memory_mb = int(sys.argv[1]), int(sys.argv[2])
        request_fd, reply_fd, writer = _enter(output_fd)
        limits.die_with_parent()
        limits.apply(memory_mb, None, limits.data_size())
        limits.forbid_processes()
        serve_calls(
            request_fd,
            reply_fd,
            writer,
            lambda body, max_result: call.run(body, max_result, keep=True),
        )
        code = 0
    except BaseException:  # noqa: BLE001 - what went wrong goes to the output file
        capture.report_crash()
    finally:
        os._exit(code)


if __name__ == "__main__":
    main()
