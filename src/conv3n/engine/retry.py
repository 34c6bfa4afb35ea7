"""Retry arithmetic: a policy and an attempt number -> the delay before the next one. Pure."""

import random

from conv3n.model import RetryPolicy


def next_delay(
    policy: RetryPolicy | None,
    attempt: int,
    *,
    retry_after_ms: float | None = None,
    rand: float | None = None,
) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None when attempts are used up.

    The delay grows as `backoff_ms * factor ** (attempt - 1)`, capped by `max_backoff_ms`; the
    jitter takes a random share of it off (so retries of many executions spread out). A server's
    `Retry-After` wins when it asks for longer.

    Args:
        policy: the node's policy (None means a single attempt).
        attempt: the attempt that just failed, 1-based.
        retry_after_ms: what the remote side asked for, if anything.
        rand: a number in [0, 1) for the jitter; drawn when not given.
    """
    if policy is None or attempt >= policy.max_attempts:
        return None
    delay = min(policy.backoff_ms * policy.factor ** (attempt - 1), policy.max_backoff_ms)
    if policy.jitter:
        draw = random.random() if rand is None else rand  # noqa: S311 - not cryptographic
        delay *= 1 - policy.jitter * draw
    if retry_after_ms is not None:
        delay = max(delay, min(retry_after_ms, policy.max_backoff_ms or retry_after_ms))
    return delay / 1000
