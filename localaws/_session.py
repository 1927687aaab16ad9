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
from localaws.realism import Realism
from localaws.throttling import Buckets

T = TypeVar("T")


class Session:
    """Everything one ``LocalAWS`` owns. Extensions receive it when they are installed.

    ``lock`` serialises all request processing (moto is not thread-safe) and clock-driven work; extensions
    run under it already when called from a request.
    """

    def __init__(
        self, *, region: str, account_id: str, start: datetime | None, seed: int, realism: Realism | None = None
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.lock = threading.RLock()
        self.clock = Clock(self.lock, start)
        self.calls = CallLog()
        self.faults = Faults()
        self.rng = random.Random(seed)  # noqa: S311 - address choice and ids, not cryptography
        self.skipped_retry_delays: list[float] = []
        self.realism = realism or Realism()
        # the realistic behaviours draw from their own generator: switching one off leaves addresses unchanged
        self.realism_rng = random.Random(seed ^ 0x5EED)  # noqa: S311 - simulation draws, not cryptography
        self.buckets = Buckets(self.realism.throttling) if self.realism.throttling else None
        self.node_listeners: list[Callable[[Any], None]] = []
        """Called (under the lock) with each instance EC2 launches: the VPC CNI actors start from here."""
        self._local = threading.local()
        self.lifecycle = Lifecycle(self)
        self._extras: dict[str, Any] = {}

    def in_request(self) -> bool:
        """Whether the current thread is processing an API request (not the local AWS's own bookkeeping)."""
        return bool(getattr(self._local, "in_request", False))

    def set_in_request(self, value: bool) -> None:
        self._local.in_request = value

    def current_call(self) -> tuple[str, str, dict[str, Any]] | None:
        """(botocore service name, operation, parameters as passed to the client) of this thread's call."""
        call: tuple[str, str, dict[str, Any]] | None = getattr(self._local, "call", None)
        return call

    def set_current_call(self, call: tuple[str, str, dict[str, Any]] | None) -> None:
        self._local.call = call

    def state(self, key: str, factory: Callable[[], T]) -> T:
        """Extension-private state, created on first use (for example the EC2 client-token table)."""
        with self.lock:
            if key not in self._extras:
                self._extras[key] = factory()
            return cast("T", self._extras[key])
