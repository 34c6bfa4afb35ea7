"""`next_delay`: exponential backoff, its cap, jitter and Retry-After. Pure arithmetic."""

import pytest

from conv3n.engine import next_delay
from conv3n.model import RetryPolicy


def policy(**fields: float) -> RetryPolicy:
    values: dict[str, float] = {
        "max_attempts": 10,
        "backoff_ms": 100,
        "factor": 2.0,
        "max_backoff_ms": 30_000,
        "jitter": 0.0,
    }
    values.update(fields)
    return RetryPolicy.model_validate(values)


def test_no_policy_means_no_retry():
    assert next_delay(None, 1) is None


def test_first_retry_waits_the_base_backoff_in_seconds():
    assert next_delay(policy(), 1) == pytest.approx(0.1)


def test_delay_grows_by_the_factor_per_attempt():
    delays = [next_delay(policy(factor=3.0), attempt) for attempt in (1, 2, 3, 4)]
    assert delays == pytest.approx([0.1, 0.3, 0.9, 2.7])


def test_delay_is_capped_by_max_backoff():
    p = policy(max_backoff_ms=500)
    assert [next_delay(p, a) for a in (3, 4, 8)] == pytest.approx([0.4, 0.5, 0.5])


def test_none_when_the_attempts_are_used_up():
    p = policy(max_attempts=3)
    assert next_delay(p, 2) is not None
    assert next_delay(p, 3) is None
    assert next_delay(p, 4) is None


def test_a_single_attempt_policy_never_retries():
    assert next_delay(policy(max_attempts=1), 1) is None


def test_jitter_takes_its_share_off_with_the_largest_draw():
    assert next_delay(policy(jitter=0.5), 1, rand=0.999999) == pytest.approx(0.05, rel=1e-4)


def test_jitter_takes_nothing_off_with_a_zero_draw():
    assert next_delay(policy(jitter=0.5), 1, rand=0.0) == pytest.approx(0.1)


@pytest.mark.parametrize("rand", [0.0, 0.25, 0.5, 0.75, 0.99])
def test_jittered_delay_stays_between_its_bounds(rand: float):
    p = policy(jitter=0.2, max_backoff_ms=1_000)
    for attempt in range(1, 9):
        full = min(0.1 * 2 ** (attempt - 1), 1.0)
        delay = next_delay(p, attempt, rand=rand)
        assert delay is not None
        assert full * 0.8 - 1e-12 <= delay <= full + 1e-12


def test_drawn_jitter_stays_between_its_bounds():
    p = policy(jitter=0.3)
    for _ in range(200):
        delay = next_delay(p, 2)
        assert delay is not None
        assert 0.2 * 0.7 - 1e-12 <= delay <= 0.2 + 1e-12


def test_retry_after_wins_when_longer():
    assert next_delay(policy(), 1, retry_after_ms=2_000) == pytest.approx(2.0)


def test_backoff_wins_when_retry_after_is_shorter():
    assert next_delay(policy(backoff_ms=1_000), 1, retry_after_ms=10) == pytest.approx(1.0)


def test_retry_after_is_capped_by_max_backoff():
    assert next_delay(policy(max_backoff_ms=1_000), 1, retry_after_ms=60_000) == pytest.approx(1.0)


def test_retry_after_does_not_grant_attempts_beyond_the_policy():
    assert next_delay(policy(max_attempts=2), 2, retry_after_ms=1_000) is None
