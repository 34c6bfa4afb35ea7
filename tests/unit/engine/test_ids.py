"""Execution ids: UUID version 7, unique, and sorted in the order they were made."""

import os
import time
import uuid

import pytest

from conv3n.engine import new_execution_id


def test_id_is_a_version_7_rfc_9562_uuid():
    value = uuid.UUID(new_execution_id())
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_id_is_the_canonical_lowercase_text_form():
    text = new_execution_id()
    assert text == str(uuid.UUID(text))


def test_id_starts_with_the_unix_milliseconds_it_was_made_at():
    before = time.time_ns() // 1_000_000
    value = uuid.UUID(new_execution_id())
    after = time.time_ns() // 1_000_000
    assert before <= value.int >> 80 <= after


def test_ids_are_unique():
    ids = [new_execution_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)


def test_ids_made_one_after_another_sort_in_that_order():
    # Thousands per millisecond: ordering within one millisecond matters too.
    ids = [new_execution_id() for _ in range(10_000)]
    assert ids == sorted(ids)


def test_ids_stay_ordered_when_the_wall_clock_steps_back(monkeypatch: pytest.MonkeyPatch):
    first = new_execution_id()
    earlier = time.time_ns() - 60 * 1_000_000_000
    monkeypatch.setattr(time, "time_ns", lambda: earlier)
    second = new_execution_id()
    assert first < second
    assert uuid.UUID(second).version == 7


def test_a_forked_child_draws_other_random_bits_than_its_parent():
    new_execution_id()  # the parent holds a pool of random bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_execution_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = new_execution_id()
    low_bits = (1 << 62) - 1
    assert uuid.UUID(child).int & low_bits != uuid.UUID(parent).int & low_bits
