"""Per-LocalAWS state shared by the dispatch layer and the extensions."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

from localaws.calls import CallLog
from localaws.clock import Clock
from localaws.faults import Faults
from localaws.lifecycle import Lifecycle

T = TypeVar("T")


class Session:
    """Everything one ``LocalAWS`` owns. Extensions receive it when they are installed.

    ``lock`` serialises all request processing (moto is not thread-safe) and clock-driven work; extensions
    run under it already when called from a request.
    """

    def __init__(self, *, region: str, account_id: str, start: datetime | None, seed: int) -> None:
        self.region = region
        self.account_id = account_id
        self.lock = threading.RLock()
        self.clock = Clock(self.lock, start)
        self.calls = CallLog()
        self.faults = Faults()
        self.rng = random.Random(seed)  # noqa: S311 - address choice and ids, not cryptography
        self.skipped_retry_delays: list[float] = []
        self.lifecycle = Lifecycle(self)
        self._extras: dict[str, Any] = {}

    def state(self, key: str, factory: Callable[[], T]) -> T:
        """Extension-private state, created on first use (for example the EC2 client-token table)."""
        with self.lock:
            if key not in self._extras:
                self._extras[key] = factory()
            return cast("T", self._extras[key])
