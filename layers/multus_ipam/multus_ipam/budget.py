"""An invocation's time, on the engine's clock: when each phase must stop, and patience for eventual consistency.

The function timeout is the hard bound: a run that is killed leaves the instance waiting for the hook timeout.
So an invocation's time is split into phases, each with its own deadline, and every wait (the SDK's retries
through :class:`multus_ipam.ports.CallDeadline`, the engine's own sleeps) ends before its phase's deadline:

- **launch** until ``end - SAFETY_MARGIN_SECONDS``: then it stops (DeadlineExceeded) and rolls back;
- **rollback** (and a termination's release) until ``end - reserve`` (reserve: COMPLETION_RESERVE_SECONDS, or
  half the margin if that is smaller): it stops releasing and names what it could not release;
- **completion** until ``end``: CompleteLifecycleAction always gets the reserve at least;
- **orphan sweep** (best effort) only with SWEEP_MIN_SECONDS left, until SWEEP_STOP_SECONDS before the end.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from multus_ipam.errors import DeadlineExceeded
from multus_ipam.ports import Clock

COMPLETION_RESERVE_SECONDS = 10.0
"""Time the rollback leaves to the completion (CompleteLifecycleAction and its own brief retries)."""
SWEEP_MIN_SECONDS = 5.0
SWEEP_STOP_SECONDS = 2.0
NEW_ENI_SETTLE_SECONDS = 2.0
"""How long after creating an ENI the engine first attaches it. Right after a create, EC2 answers
InvalidNetworkInterfaceID.NotFound to an attach for a moment (eventual consistency; the local AWS draws 0-2 s);
every such answer costs a token of AttachNetworkInterface's bucket, the one a burst exhausts first. Waiting
once costs a launch under two seconds (the other subnet's create overlaps it) and saves those tokens."""
VISIBILITY_WAITS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Backoff for a NotFound on an id just created or named by the event: 15.5 s in all, then the answer is final.
Short first: the lag is usually well under a second, and every new ENI meets it at its attach."""


@dataclass(frozen=True, slots=True)
class Budget:
    """The phases of one invocation (see the module docstring), as moments on ``clock``."""

    clock: Clock
    end: datetime
    margin_seconds: float
    started: datetime

    @classmethod
    def starting_now(cls, clock: Clock, remaining_ms: int, margin_seconds: float) -> Budget:
        now = clock.now()
        return cls(clock, now + timedelta(milliseconds=remaining_ms), margin_seconds, now)

    @property
    def total_seconds(self) -> float:
        """The whole invocation's time, from when the budget started."""
        return (self.end - self.started).total_seconds()

    @property
    def launch_until(self) -> datetime:
        return self.end - timedelta(seconds=self.margin_seconds)

    @property
    def rollback_until(self) -> datetime:
        return self.end - timedelta(seconds=min(COMPLETION_RESERVE_SECONDS, self.margin_seconds / 2))

    @property
    def sweep_until(self) -> datetime:
        return self.end - timedelta(seconds=SWEEP_STOP_SECONDS)

    def seconds_until(self, moment: datetime) -> float:
        return (moment - self.clock.now()).total_seconds()

    def check(self, step: str) -> None:
        """Raise DeadlineExceeded once the launch phase is over."""
        if self.seconds_until(self.launch_until) <= 0:
            raise DeadlineExceeded(
                f"stopped before {step}: less than {self.margin_seconds:.0f}s left for rollback and completion"
            )


@dataclass(slots=True)
class Patience:
    """Bounded backoff on the engine's clock for answers eventual consistency explains."""

    clock: Clock
    until: datetime
    waits: Sequence[float] = VISIBILITY_WAITS
    waited: float = 0.0
    _next: Iterator[float] = field(init=False)

    def __post_init__(self) -> None:
        self._next = iter(self.waits)

    def wait(self) -> bool:
        """Sleep the next delay and return True; False (no sleep) once the schedule is spent.

        Raises DeadlineExceeded when the next delay would end after ``until``.
        """
        delay = next(self._next, None)
        if delay is None:
            return False
        if (self.until - self.clock.now()).total_seconds() <= delay:
            raise DeadlineExceeded(
                f"stopped waiting for EC2 to show a new resource after {self.waited:g}s: the phase's time is up"
            )
        self.clock.sleep(delay)
        self.waited += delay
        return True


class NoDeadline:
    """A :class:`multus_ipam.ports.CallDeadline` that bounds nothing (clients without the retry hook)."""

    def within(self, until: datetime | None) -> AbstractContextManager[None]:
        return nullcontext()
