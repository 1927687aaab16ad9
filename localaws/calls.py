"""The call log: every AWS call that reached the local AWS, with its outcome."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

OK = "ok"
CRASH = "crash"


@dataclass(frozen=True)
class Call:
    """One HTTP attempt (a retried call appears once per attempt).

    ``outcome`` is ``"ok"``, the AWS error code returned, or ``"crash"`` (applied, then ``SimulatedCrash``).
    ``params`` are the request parameters as sent on the wire (query protocol keys such as
    ``PrivateIpAddresses.1.PrivateIpAddress``), without ``Action`` and ``Version``.
    """

    seq: int
    service: str
    operation: str
    params: Mapping[str, str]
    outcome: str
    status: int
    at: datetime
    thread: str

    @property
    def ok(self) -> bool:
        return self.outcome == OK


class CallLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []

    def record(
        self, *, service: str, operation: str, params: Mapping[str, str], outcome: str, status: int, at: datetime
    ) -> Call:
        with self._lock:
            call = Call(
                seq=len(self._calls),
                service=service,
                operation=operation,
                params=MappingProxyType(dict(params)),
                outcome=outcome,
                status=status,
                at=at,
                thread=threading.current_thread().name,
            )
            self._calls.append(call)
            return call

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def to(self, service: str, operation: str) -> list[Call]:
        wanted = normalise_service(service)
        return [c for c in self.snapshot() if c.service == wanted and c.operation == operation]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


def normalise_service(name: str) -> str:
    """``autoscaling``, ``auto-scaling`` and ``Auto Scaling`` all name the same service."""
    return name.replace("-", "").replace(" ", "").lower()
