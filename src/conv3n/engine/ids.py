"""Execution ids: UUIDv7 (time-ordered, so storage indexes stay append-only).

Called by `Engine.execute` and `Engine.run_child` for every new execution.
"""

import os
import threading
import time

_RAND_BITS = 74
"""rand_a (12 bits) and rand_b (62 bits) of RFC 9562, used here as one monotonic field."""
_RAND_MASK = (1 << _RAND_BITS) - 1
_MS_MASK = (1 << 48) - 1

_lock = threading.Lock()
_last_ms = 0
_last_rand = 0
_POOL_IDS = 256
"""Ids whose random bytes come from one os.urandom call (a system call per id was 3 % of a
webhook's cost)."""
_pool = b""
_taken = 0


def new_execution_id() -> str:
    """A new time-ordered id: 48 bits of Unix milliseconds, then random bits (RFC 9562 v7).

    Ids sort in the order they were made, also within one millisecond and when the wall
    clock steps back: the random field then counts up from the previous id (RFC 9562 §6.2,
    method 2, as uuid7 libraries do).
    """
    global _last_ms, _last_rand, _pool, _taken
    ms = time.time_ns() // 1_000_000 & _MS_MASK
    with _lock:
        if _taken >= len(_pool):
            _pool, _taken = os.urandom(10 * _POOL_IDS), 0
        rand = int.from_bytes(_pool[_taken : _taken + 10], "big") & _RAND_MASK
        _taken += 10
        if ms <= _last_ms:
            ms = _last_ms
            # Keep most of the randomness: step up by a random amount below 2**32.
            rand = _last_rand + 1 + (rand & 0xFFFF_FFFF)
            if rand > _RAND_MASK:
                ms, rand = ms + 1, rand & 0xFFFF_FFFF
        _last_ms, _last_rand = ms, rand
    value = ms << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0x2 << 62 | (rand & ((1 << 62) - 1))
    text = f"{value:032x}"  # str(uuid.UUID(int=value)), without building the object
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _forget_pool() -> None:
    """A forked child draws its own random bytes, never its parent's."""
    global _pool, _taken
    _pool, _taken = b"", 0


os.register_at_fork(after_in_child=_forget_pool)
