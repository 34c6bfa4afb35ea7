"""Helpers for the block tests: strict JSON equality, literal config strings, a test clock and
a journal that records retries."""

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conv3n.engine import NullJournal
from conv3n.model import JSON, ErrorInfo


def json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON means it: `true` is not `1`, `1` is `1.0`, lists keep their order."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(v, right[k]) for k, v in left.items())
    return type(left) is type(right) and bool(left == right)


def literal(value: JSON) -> JSON:
    """`value` with every `{{` escaped, so a config holding it renders to exactly `value`."""
    if isinstance(value, str):
        return value.replace("{{", "\\{{")
    if isinstance(value, list):
        return [literal(item) for item in value]
    if isinstance(value, dict):
        return {key: literal(item) for key, item in value.items()}
    return value


@dataclass
class StepClock:
    """A Clock whose time moves only when the engine sleeps; every sleep is recorded."""

    start: datetime = field(default_factory=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    slept: list[float] = field(default_factory=list)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=sum(self.slept))

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)


@dataclass(frozen=True)
class FailedAttempt:
    """One `attempt_failed` event."""

    node_id: str
    attempt: int
    error: ErrorInfo
    retry_in_s: float


class RetryJournal(NullJournal):
    """A Journal that keeps the `attempt_failed` events (the retries and their delays)."""

    def __init__(self) -> None:
        self.failed: list[FailedAttempt] = []

    def attempt_failed(
        self, execution_id: str, node_id: str, attempt: int, error: ErrorInfo, retry_in_s: float
    ) -> None:
        self.failed.append(FailedAttempt(node_id, attempt, error, retry_in_s))


@pytest.fixture
def clock() -> StepClock:
    """A clock that never waits for real."""
    return StepClock()


@pytest.fixture
def journal() -> RetryJournal:
    """A journal recording failed attempts."""
    return RetryJournal()
