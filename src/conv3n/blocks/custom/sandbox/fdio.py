"""Whole reads and writes on file descriptors, for the sandbox's pipes and memory files.

Standard library only: the sandbox worker and warm processes import this module by path,
without conv3n.
"""

import os
import struct

LENGTH = struct.Struct(">I")
"""A frame's head: the length of what follows."""
WARM_REPLY = struct.Struct(">IIB")
"""The head of a warm process's reply: its length, the bytes of output the call left, and 1
if the process retires after it (`warm.py`)."""


def read_exact(fd: int, size: int) -> bytes | None:
    """Exactly `size` bytes from `fd`, or None at end of file."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, min(size - len(chunks), 1 << 20))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def write_all(fd: int, data: bytes) -> None:
    """All of `data` to `fd` (a pipe may take it in parts)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
