"""An invocation's phases on the engine's clock, and bounded patience for eventual consistency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from multus_ipam.budget import COMPLETION_RESERVE_SECONDS, VISIBILITY_WAITS, Budget, Patience
from multus_ipam.errors import DeadlineExceeded

START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


class ManualClock:
    def __init__(self) -> None:
        self.at = START
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += timedelta(seconds=seconds)


def test_given_180s_and_a_30s_margin_then_launch_rollback_and_completion_end_in_that_order() -> None:
    budget = Budget.starting_now(ManualClock(), 180_000, 30)
    assert budget.end == START + timedelta(seconds=180)
    assert budget.launch_until == START + timedelta(seconds=150)
    assert budget.rollback_until == START + timedelta(seconds=180 - COMPLETION_RESERVE_SECONDS)
    assert budget.launch_until < budget.rollback_until < budget.sweep_until < budget.end


def test_given_a_margin_smaller_than_twice_the_reserve_then_the_rollback_gets_half_of_it() -> None:
    budget = Budget.starting_now(ManualClock(), 60_000, 6)
    assert budget.rollback_until == START + timedelta(seconds=57)


def test_given_the_launch_phase_is_over_when_checking_then_deadline_exceeded() -> None:
    clock = ManualClock()
    budget = Budget.starting_now(clock, 60_000, 30)
    budget.check("creating")
    clock.sleep(30)
    with pytest.raises(DeadlineExceeded, match="stopped before creating"):
        budget.check("creating")


def test_given_patience_when_spent_then_it_waited_the_whole_schedule_and_says_so() -> None:
    clock = ManualClock()
    patience = Patience(clock, START + timedelta(minutes=5))
    while patience.wait():
        pass
    assert clock.slept == list(VISIBILITY_WAITS)
    assert patience.waited == sum(VISIBILITY_WAITS)
    assert 15 <= patience.waited <= 20


def test_given_patience_when_the_next_wait_would_cross_the_deadline_then_deadline_exceeded() -> None:
    clock = ManualClock()
    patience = Patience(clock, START + timedelta(seconds=2.5))
    assert patience.wait()
    assert patience.wait()
    with pytest.raises(DeadlineExceeded):
        patience.wait()
    assert clock.slept == [0.5, 1.0]
