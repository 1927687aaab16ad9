"""Bounded, jittered retries for throttled calls (EC2 ``RequestLimitExceeded``, HTTP 503).

The schedule is pure (a function of the policy and a random source); the loop takes ``sleep`` so tests run
without waiting. The EC2 budget is shared with every node's VPC CNI, so we back off with full jitter rather
than retry in lock-step with other pods.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from pod_ip_manager.errors import AwsError, Throttled

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    max_seconds: float


def delays(policy: RetryPolicy, rng: random.Random) -> Iterator[float]:
    """The sleep before each retry: full jitter over an exponentially growing, capped window.
    Yields ``max_attempts - 1`` values."""
    for attempt in range(policy.max_attempts - 1):
        yield rng.uniform(0.0, min(policy.max_seconds, policy.base_seconds * 2**attempt))


def throttled(error: AwsError) -> bool:
    return isinstance(error, Throttled)


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None],
    rng: random.Random,
    retryable: Callable[[AwsError], bool] = throttled,
) -> T:
    """Call ``fn``; on an ``AwsError`` that is ``retryable`` (by default: ``Throttled``) sleep and try again,
    at most ``policy.max_attempts`` times in all."""
    schedule = delays(policy, rng)
    while True:
        try:
            return fn()
        except AwsError as error:
            if not retryable(error):
                raise
            delay = next(schedule, None)
            if delay is None:
                raise
            log.warning(
                "retrying",
                extra={"operation": error.operation, "code": error.code, "delay_seconds": round(delay, 3)},
            )
            sleep(delay)
