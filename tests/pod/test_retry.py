"""Throttling is retried a bounded number of times with jittered backoff; nothing else is retried."""

from __future__ import annotations

import random

import pytest

from pod_ip_manager.errors import AwsError, Throttled
from pod_ip_manager.retry import RetryPolicy, call_with_retry, delays

POLICY = RetryPolicy(max_attempts=4, base_seconds=0.5, max_seconds=1.5)


def test_given_a_policy_then_each_delay_is_jittered_within_a_capped_exponential_window() -> None:
    rng = random.Random(7)
    schedule = list(delays(POLICY, rng))
    assert len(schedule) == 3
    for delay, window in zip(schedule, (0.5, 1.0, 1.5), strict=True):
        assert 0.0 <= delay <= window


def test_given_throttling_twice_when_calling_then_the_third_attempt_succeeds_after_two_sleeps() -> None:
    outcomes: list[Exception | str] = [Throttled("Op", "RequestLimitExceeded", "slow"), Throttled("Op", "x", "y"), "ok"]
    slept: list[float] = []

    def fn() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert call_with_retry(fn, POLICY, sleep=slept.append, rng=random.Random(1)) == "ok"
    assert len(slept) == 2


def test_given_throttling_every_time_when_calling_then_it_gives_up_after_max_attempts() -> None:
    calls = 0

    def fn() -> None:
        nonlocal calls
        calls += 1
        raise Throttled("Op", "RequestLimitExceeded", "slow down")

    with pytest.raises(Throttled):
        call_with_retry(fn, POLICY, sleep=lambda _: None, rng=random.Random(1))
    assert calls == 4


def test_given_another_aws_error_when_calling_then_it_is_not_retried() -> None:
    calls = 0

    def fn() -> None:
        nonlocal calls
        calls += 1
        raise AwsError("Op", "UnauthorizedOperation", "no")

    with pytest.raises(AwsError):
        call_with_retry(fn, POLICY, sleep=lambda _: None, rng=random.Random(1))
    assert calls == 1


def test_given_a_retryable_predicate_when_in_use_persists_then_it_is_retried_within_the_bound_only() -> None:
    calls: list[int] = []
    slept: list[float] = []

    def in_use() -> str:
        calls.append(1)
        raise AwsError("AssignIpv6Addresses", "InvalidIPAddress.InUse", "in use")

    with pytest.raises(AwsError, match="InUse"):
        call_with_retry(
            in_use,
            POLICY,
            sleep=slept.append,
            rng=random.Random(1),
            retryable=lambda error: error.code == "InvalidIPAddress.InUse",
        )
    assert len(calls) == POLICY.max_attempts
    assert len(slept) == POLICY.max_attempts - 1
