"""A clock the tests move by hand, so lifecycle timeouts fire without wall-clock sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Listener = Callable[[datetime], None]


class Clock:
    """Local AWS time. It only moves when ``advance`` is called; listeners (lifecycle timeouts) run then.

    ``advance`` holds the local AWS's request lock while listeners run, so a timeout never interleaves with
    an API call being processed.
    """

    def __init__(self, lock: threading.RLock, start: datetime | None = None) -> None:
        start = start or datetime.now(UTC).replace(microsecond=0)
        if start.tzinfo is None:
            raise ValueError("the clock's start time must be timezone-aware")
        self._lock = lock
        self._now = start
        self._listeners: list[Listener] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move time forward by ``seconds`` and run what fell due (lifecycle timeouts). Returns the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            for listener in list(self._listeners):
                listener(self._now)
            return self._now

    def on_advance(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)
