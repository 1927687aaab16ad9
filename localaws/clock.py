"""Local AWS time: a clock that only moves when something waits on it, and a scheduler that runs concurrent
callers one at a time on it, deterministically.

Outside a simulation, ``clock.sleep(s)`` simply moves time on by ``s`` (one caller: nothing else to wait for)
and ``clock.advance(s)`` moves it by hand. Inside ``clock.run_concurrently(tasks)`` each task runs in its own
thread, but only one of them holds the *baton* at any moment: a task runs until it waits on the clock (an API
call's latency, botocore's backoff, the engine's own sleeps), then the task whose wait ends first gets the baton
and time jumps to that moment. Nothing ever sleeps in wall time, so a burst of hundreds of launches that would
take minutes of AWS time runs in seconds, and the interleaving depends only on the seeded draws of the local AWS,
not on the operating system's thread scheduling: the same seed gives the same run.

Scheduled work (``call_at``: an attach completing, a new resource becoming visible, a VPC CNI actor's next
step) runs when time passes its moment, in order, under the local AWS's request lock, and never waits itself.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

Listener = Callable[[datetime], None]
T = TypeVar("T")

#: How long (wall time) a simulation may go without any task taking the baton before it is declared stuck: a
#: task that blocks on something other than the clock (a lock another task holds across a wait) would hang
#: the run forever. Generous: one step is one API call.
STUCK_AFTER_WALL_SECONDS = 120.0


@dataclass
class Outcome(Generic[T]):
    """What one task of ``run_concurrently`` ended with: a value or the exception it raised."""

    value: T | None = None
    error: BaseException | None = None
    finished_at: datetime | None = None

    def get(self) -> T:
        """The value, or re-raise the task's exception."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


@dataclass
class _Task:
    index: int
    turn: threading.Event = field(default_factory=threading.Event)
    done: bool = False


@dataclass(order=True)
class _Timer:
    when: datetime
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class StuckSimulation(RuntimeError):
    """A task blocked on something other than the local AWS clock."""


class Clock:
    """Local AWS time. Listeners (lifecycle timeouts) run whenever time moves; timers at their moment."""

    def __init__(self, lock: threading.RLock, start: datetime | None = None) -> None:
        start = start or datetime.now(UTC).replace(microsecond=0)
        if start.tzinfo is None:
            raise ValueError("the clock's start time must be timezone-aware")
        self._lock = lock
        self._now = start
        self._listeners: list[Listener] = []
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        # the running simulation: which threads are its tasks, who waits until when
        self._tasks: dict[int, _Task] = {}  # thread ident -> task
        self._waiting: list[tuple[datetime, int, _Task]] = []
        self._progress = 0
        self._errors: list[BaseException] = []  # raised by timers or listeners; re-raised to the caller

    # --- reading and moving time ------------------------------------------------------------------------

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move time forward by ``seconds``, running what fell due on the way. Returns the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._advance_to(self._now + timedelta(seconds=seconds))
            if self._errors and not self._tasks:
                self._raise_errors()
            return self._now

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of local AWS time. A task of ``run_concurrently`` yields to the others meanwhile;
        any other caller simply moves time on."""
        seconds = max(seconds, 0.0)
        task = self._tasks.get(threading.get_ident())
        if task is None:
            self.advance(seconds)
            return
        with self._lock:
            heapq.heappush(self._waiting, (self._now + timedelta(seconds=seconds), next(self._seq), task))
            task.turn.clear()
            self._hand_on()
        task.turn.wait()

    def on_advance(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def call_at(self, when: datetime, callback: Callable[[], None]) -> _Timer:
        """Run ``callback`` (under the request lock; it must not wait) once time reaches ``when``."""
        with self._lock:
            timer = _Timer(max(when, self._now), next(self._seq), callback)
            heapq.heappush(self._timers, timer)
            return timer

    def call_later(self, seconds: float, callback: Callable[[], None]) -> _Timer:
        with self._lock:
            return self.call_at(self._now + timedelta(seconds=max(seconds, 0.0)), callback)

    def _advance_to(self, target: datetime) -> None:
        """Run due timers in time order (time stands at each one's moment while it runs), then the listeners."""
        while self._timers and self._timers[0].when <= target:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            if timer.when > self._now:
                self._now = timer.when
                self._notify()
            try:
                timer.callback()
            except Exception as error:  # noqa: BLE001 - kept and re-raised to the caller, never to a bystander task
                self._errors.append(error)
        self._now = max(self._now, target)
        self._notify()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self._now)
            except Exception as error:  # noqa: BLE001 - as for timers
                self._errors.append(error)

    def _raise_errors(self) -> None:
        errors, self._errors = self._errors, []
        raise RuntimeError(f"{len(errors)} scheduled callback(s) of the local AWS failed") from errors[0]

    # --- concurrent callers -------------------------------------------------------------------------------

    def run_concurrently(self, tasks: Sequence[Callable[[], T]]) -> list[Outcome[T]]:
        """Run ``tasks`` as concurrent callers of the local AWS, one at a time on the clock (see the module
        docstring). Returns one outcome per task, in order; a task's exception is kept in its outcome."""
        if not tasks:
            return []
        with self._lock:
            if self._tasks or self._waiting:
                raise RuntimeError("a simulation is already running on this clock")
        outcomes: list[Outcome[T]] = [Outcome() for _ in tasks]
        all_done = threading.Event()
        states = [_Task(i) for i in range(len(tasks))]
        remaining = [len(tasks)]
        started = threading.Barrier(len(tasks) + 1)

        def body(state: _Task, task: Callable[[], T]) -> None:
            with self._lock:
                self._tasks[threading.get_ident()] = state
            started.wait()
            state.turn.wait()
            try:
                outcomes[state.index].value = task()
            except BaseException as error:  # noqa: BLE001 - a task's failure is its outcome, reported to the caller
                outcomes[state.index].error = error
            with self._lock:
                outcomes[state.index].finished_at = self._now
                state.done = True
                self._tasks.pop(threading.get_ident(), None)
                remaining[0] -= 1
                if remaining[0] == 0:
                    all_done.set()
                else:
                    self._hand_on()

        threads = [
            threading.Thread(target=body, args=(state, task), name=f"sim-task-{state.index}", daemon=True)
            for state, task in zip(states, tasks, strict=True)
        ]
        for thread in threads:
            thread.start()
        started.wait()
        with self._lock:
            for state in states:  # everyone starts now, in task order
                heapq.heappush(self._waiting, (self._now, next(self._seq), state))
            self._hand_on()
        self._watch(all_done)
        for thread in threads:
            thread.join()
        with self._lock:
            if self._errors:
                self._raise_errors()
        return outcomes

    def _hand_on(self) -> None:
        """Give the baton to the task whose wait ends first, moving time to that moment (lock held)."""
        self._progress += 1
        if not self._waiting:
            return
        when, _, task = heapq.heappop(self._waiting)
        if when > self._now:
            self._advance_to(when)
        task.turn.set()

    def _watch(self, all_done: threading.Event) -> None:
        seen, since = -1, time.monotonic()
        while not all_done.wait(1.0):
            with self._lock:
                progress = self._progress
            if progress != seen:
                seen, since = progress, time.monotonic()
            elif time.monotonic() - since > STUCK_AFTER_WALL_SECONDS:
                raise StuckSimulation(
                    "no task of the simulation has moved for "
                    f"{STUCK_AFTER_WALL_SECONDS:.0f}s of wall time: one is blocked outside the local AWS clock"
                )
