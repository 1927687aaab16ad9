"""Bound botocore's own retries by the time the calling thread has left.

botocore's standard retry mode retries throttling and 5xx answers up to ``max_attempts`` times with a backoff of
``rand * min(2^(n-1), 20)`` s before attempt n+1 (``botocore/retries/standard.py``, ``ExponentialBackoff``): one
call can spend well over a minute retrying, far past the moment the engine must stop to roll back and complete
the lifecycle action. The engine binds a deadline per phase (:class:`multus_ipam.ports.CallDeadline`); here a
``needs-retry`` handler stops retrying as soon as another retry could end after it.

How botocore asks (``botocore/endpoint.py``, ``Endpoint._needs_retry``): after each attempt it emits
``needs-retry.<service>.<operation>`` with ``attempts`` (made so far), ``response`` (``(http, parsed)``) or
``caught_exception``; the first handler to answer something other than None decides: a number is the delay before
retrying, ``False`` means "do not retry" and stops the later handlers (the standard retry handler answers
``False`` the same way when its quota is spent). Registered first on the service's own event name, this handler
runs before the standard one. When it answers ``False``, the call ends with the answer AWS gave (the client raises
its ``ClientError``), so the adapters translate it as usual (``AwsCallFailed`` naming the operation and code).

**Throttling is retried here, until the deadline.** Under a burst, EC2's buckets are the bottleneck and a
throttled call is the normal case, not a fault: botocore's standard handler would give up after ``max_attempts``
and take 5 units of its retry quota per retry (500 per client: 100 throttled retries drain it, and then no call
of the execution environment is retried at all). botocore emits ``needs-retry`` to every handler (the first
answer wins, but all run), so answering first is not enough to keep the standard handler from taking quota:
``install`` takes the standard handler off the client and calls it itself, for what is not throttling. A
throttled answer, while a deadline is bound, gets its delay here (``rand * min(2^(n-1), THROTTLE_BACKOFF_CAP)``
s, botocore's own jittered backoff, shortened to fit before the deadline), with no attempt limit and no quota.
Other failures (5xx, timeouts) are the standard handler's, as configured, unless another retry could end past
the deadline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.retries.standard import ExponentialBackoff, RetryContext, RetryHandler, register_retry_handler

from multus_ipam.errors import THROTTLING_CODES
from multus_ipam.ports import Clock

if TYPE_CHECKING:
    from botocore.client import BaseClient

#: botocore standard mode's cap on one backoff delay, in seconds (``ExponentialBackoff._MAX_BACKOFF``).
MAX_BACKOFF_SECONDS = 20.0
#: What one more attempt is counted to take on top of its backoff. EC2 and Auto Scaling answer in well under a
#: second; counting the worst case instead (connect + read timeouts, 25 s) would forbid every retry in the last
#: half minute of a phase, so one throttled CompleteLifecycleAction after a rollback would leave the action
#: uncompleted. A hung connection is bounded by the client's timeouts all the same.
ATTEMPT_SECONDS = 2.0
#: Cap of one delay before retrying a throttled call. Short: the bucket refills every second, and a caller that
#: waits 20 s leaves tokens unused while the burst is still waiting.
THROTTLE_BACKOFF_CAP = 8

_log = logging.getLogger(__name__)


def retry_cost(attempts: int, attempt_seconds: float = ATTEMPT_SECONDS) -> float:
    """What another retry can take after ``attempts`` attempts: the largest backoff botocore may draw (throttling
    scale, 1 s * 2^(attempts-1), capped at 20 s), then an attempt answered in ``attempt_seconds``."""
    backoff = min(2.0 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    return backoff + attempt_seconds


class SdkRetryDeadline:
    """Implements :class:`multus_ipam.ports.CallDeadline` for boto3 clients it is installed on."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._local = threading.local()
        self._backoff = ExponentialBackoff(
            max_backoff=THROTTLE_BACKOFF_CAP,
            throttling_detector=_AlwaysThrottling(),  # type: ignore[arg-type]  # duck-typed: one method is read
        )
        self.throttled_retries = 0
        """Throttled answers this handler retried (for tests and metrics)."""

    @contextmanager
    def within(self, until: datetime | None) -> Iterator[None]:
        previous: datetime | None = getattr(self._local, "until", None)
        self._local.until = until
        try:
            yield
        finally:
            self._local.until = previous

    def seconds_left(self) -> float | None:
        """Seconds until the calling thread's deadline; None when none is bound."""
        until: datetime | None = getattr(self._local, "until", None)
        if until is None:
            return None
        return (until - self._clock.now()).total_seconds()

    def install(self, client: BaseClient) -> None:
        """Register on ``client`` (idempotent per client): its calls on a thread with a deadline stop retrying
        when another retry could end after it."""
        service = client.meta.service_model.service_id.hyphenize()
        standard = _take_over_standard_handler(client, service)

        def needs_retry(
            attempts: int, caught_exception: Exception | None = None, **kwargs: object
        ) -> bool | float | None:
            response = kwargs.get("response")
            http = response[0] if isinstance(response, tuple) and response else None
            failed = caught_exception is not None or getattr(http, "status_code", 200) >= 400
            if not failed:
                return None  # nothing to retry: botocore's own handlers carry on as usual
            left = self.seconds_left()
            if left is not None and _error_code(response) in THROTTLING_CODES:
                delay = float(self._backoff.delay_amount(RetryContext(attempt_number=attempts)))
                delay = min(delay, left - ATTEMPT_SECONDS)
                if delay >= 0:
                    self.throttled_retries += 1
                    return delay  # a number: botocore sleeps it and retries
            elif left is None or left >= retry_cost(attempts):
                if standard is None:
                    return None  # botocore's own handler (not standard mode) decides
                answer: bool | float | None = standard.needs_retry(
                    attempts=attempts, caught_exception=caught_exception, **kwargs
                )
                return answer
            _log.warning(
                "not retrying an AWS call: another retry could end after this phase's deadline",
                extra={
                    "operation": getattr(kwargs.get("operation"), "name", "?"),
                    "attempts": attempts,
                    "seconds_left": round(left, 1),
                },
            )
            return False

        client.meta.events.register_first(
            f"needs-retry.{service}",
            needs_retry,  # type: ignore[arg-type]  # the stubs say handlers return None; botocore reads the value
            unique_id=f"multus-ipam-retry-deadline-{id(self)}",
        )


def _take_over_standard_handler(client: BaseClient, service: str) -> RetryHandler | None:
    """Take botocore's standard retry handler off the client's needs-retry event and return it (None when the
    client is not in standard mode). A fresh one, built by botocore for the client's configuration, replaces the
    one the client was created with; the quota release botocore registers with it stays on the client."""
    retries: dict[str, object] = getattr(client.meta.config, "retries", None) or {}
    if retries.get("mode") != "standard":
        return None
    event, unique_id = f"needs-retry.{service}", f"retry-config-{service}"
    client.meta.events.unregister(event, unique_id=unique_id)
    total = retries.get("total_max_attempts")
    handler: RetryHandler = register_retry_handler(client, max_attempts=total if isinstance(total, int) else None)
    client.meta.events.unregister(event, unique_id=unique_id)
    return handler


class _AlwaysThrottling:
    """Tells botocore's backoff to use its throttling scale (1 s): this handler computes delays only for
    throttled answers."""

    def is_throttling_error_from_context(self, context: object) -> bool:
        return True


def _error_code(response: object) -> str | None:
    if not isinstance(response, tuple) or len(response) < 2 or not isinstance(response[1], dict):
        return None
    error = response[1].get("Error")
    return str(error.get("Code")) if isinstance(error, dict) else None
