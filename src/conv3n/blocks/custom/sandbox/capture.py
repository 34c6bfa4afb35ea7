"""What user code prints: written to a memory file with a cap, read back by whoever reports it.

Standard library only: the sandbox worker and warm processes import this module by path,
without conv3n; the server reads a warm process's output file with `read_output` too.
"""

import io
import os
import sys

TRUNCATED = "\n[output truncated: more than {} bytes]\n"
MARGIN = 200
"""Bytes read past the cap: the truncation marker the writer appended."""


class CappedWriter(io.TextIOBase):
    """sys.stdout and sys.stderr of a call: writes to `fd` until `cap` bytes, then a marker."""

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

    def reset(self, cap: int, written: int) -> None:
        """Start a new call's output (a warm process): the file emptied if the last call
        wrote `written` > 0 bytes to it (through this writer or straight to the descriptor)."""
        if written:
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)
        self._left = self._cap = cap
        self._full = False

    def write(self, text: str) -> int:
        if self._full:
            return len(text)
        data = text.encode("utf-8", "backslashreplace")
        if len(data) > self._left:
            data = data[: self._left] + TRUNCATED.format(self._cap).encode()
            self._full = True
        self._left -= len(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        return len(text)


def read_output(fd: int, size: int, cap: int) -> tuple[str, bool]:
    """The text of an output file holding `size` bytes, and whether it passed `cap`."""
    if size <= 0:
        return "", False
    output = os.pread(fd, min(size, cap + MARGIN), 0)
    text = output.decode("utf-8", "replace")
    if size > cap + MARGIN:
        text += TRUNCATED.format(cap)
    return text, size > cap


def redirect(output_fd: int, cap: int) -> CappedWriter:
    """In a call or warm process: stdin from /dev/null, fds 1 and 2 to the output file (closed
    at `output_fd`), and sys.stdout and sys.stderr a writer capped at `cap`, which it returns."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(null)
    os.close(output_fd)
    writer = CappedWriter(1, cap)
    sys.stdout = sys.stderr = writer
    return writer


def report_crash() -> None:
    """The exception being handled, as a traceback on fd 2 (the output file): what a sandbox
    process that fails outside the user's code leaves for its parent to read."""
    try:
        import traceback

        os.write(2, traceback.format_exc().encode())
    except BaseException:  # noqa: BLE001, S110 - nothing else can be done here
        pass
