"""Execution ids: UUIDv7-style (time-ordered, so storage indexes stay append-only)."""

import os
import time
import uuid


def new_execution_id() -> str:
    """A new time-ordered id: 48 bits of Unix milliseconds, then random bits (RFC 9562 v7)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | rand & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return str(uuid.UUID(int=value))
