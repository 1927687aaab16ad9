"""Fault injection: make an operation fail with an AWS error, or crash the caller right after AWS applied it."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from localaws.calls import normalise_service


class SimulatedCrash(BaseException):
    """The calling process died right after AWS applied the call (say, a Lambda timeout or OOM).

    It subclasses ``BaseException`` so that ``except Exception`` in the code under test does not catch it, just
    as nothing in a dead process gets to run.
    """

    def __init__(self, service: str, operation: str) -> None:
        super().__init__(f"simulated crash after {service}:{operation} was applied")
        self.service = service
        self.operation = operation


@dataclass(frozen=True)
class Injected:
    """What ``Faults.take`` decided for one call."""

    kind: str  # "error" or "crash"
    code: str = ""
    status: int = 0
    message: str = ""


@dataclass
class _Rule:
    service: str
    operation: str
    kind: str
    code: str
    status: int
    message: str
    remaining: int | None  # None: unbounded
    rate: float | None
    rng: random.Random = field(repr=False)
    skip: int = 0  # matching calls to let through untouched first

    def fires(self) -> bool:
        if self.skip > 0:
            self.skip -= 1
            return False
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.rate is not None and self.rng.random() >= self.rate:
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True


_DEFAULT_MESSAGES = {
    "RequestLimitExceeded": "Request limit exceeded.",
    "Throttling": "Rate exceeded",
    "InternalError": "An internal error has occurred",
    "UnauthorizedOperation": "You are not authorized to perform this operation.",
}


class Faults:
    """Rules are checked in the order they were added; the first that fires decides the call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []

    def fail(
        self,
        service: str,
        operation: str,
        *,
        code: str,
        status: int = 400,
        message: str | None = None,
        times: int | None = None,
        rate: float | None = None,
        seed: int | None = None,
        skip: int = 0,
    ) -> None:
        """Fail ``operation`` with the AWS error ``code``/``status`` (not applied by AWS).

        ``times``: for the next N matching calls (with ``rate``: at most N times). ``rate``: each matching call
        fails with this probability, drawn from ``random.Random(seed)``. Neither: every call fails until
        ``clear``. ``skip``: let that many matching calls through normally first.
        """
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError("rate is a probability between 0 and 1")
        self._add(
            _Rule(
                service=normalise_service(service),
                operation=operation,
                kind="error",
                code=code,
                status=status,
                message=message or _DEFAULT_MESSAGES.get(code, code),
                remaining=times,
                rate=rate,
                rng=random.Random(seed),  # noqa: S311 - fault schedules, not cryptography
                skip=skip,
            )
        )

    def crash_after(self, service: str, operation: str, *, times: int = 1, skip: int = 0) -> None:
        """AWS applies the next ``times`` matching calls, then the caller gets ``SimulatedCrash``.

        ``skip``: let that many matching calls through normally first (crash after the second create, say).
        """
        self._add(
            _Rule(
                service=normalise_service(service),
                operation=operation,
                kind="crash",
                code="",
                status=0,
                message="",
                remaining=times,
                rate=None,
                rng=random.Random(0),  # noqa: S311
                skip=skip,
            )
        )

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, service: str, operation: str, kind: str) -> Injected | None:
        """The first rule of ``kind`` that fires for the call. Error rules are asked before AWS applies a call;
        crash rules after AWS applied it successfully (a call AWS refused is not one it applied)."""
        service = normalise_service(service)
        with self._lock:
            for rule in self._rules:
                if rule.service == service and rule.operation == operation and rule.kind == kind and rule.fires():
                    return Injected(kind=rule.kind, code=rule.code, status=rule.status, message=rule.message)
            return None

    def _add(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)
