"""Request throttling as EC2 documents it, on the local AWS clock.

EC2 developer guide, "Request throttling": every API action has its own token bucket per account and region;
each request takes one token; the bucket refills at a fixed rate up to its size; a request that finds it
empty fails with ``RequestLimitExceeded`` (HTTP 503) and takes nothing. Bucket sizes follow the action's
category: non-mutating (Describe*, Get*, List*, Search*) 100 / 20 per s, unless the request has neither a
filter nor pagination ("unfiltered and unpaginated", 50 / 10); mutating 50 / 5, with per-action figures
for the ENI calls (``localaws.realism.EC2_ACTIONS``). Auto Scaling answers ``Throttling`` "Rate exceeded"
(HTTP 400) and publishes no figures: its bucket is an assumption (``Throttling.autoscaling``).

Other callers in the account take ``others_share`` of every refill. The local AWS's VPC CNI actors take their
tokens from the same buckets (``Buckets.take`` without a request).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from localaws.realism import Bucket, Throttling

_NON_MUTATING_PREFIXES = ("Describe", "Get", "List", "Search")
#: Parameters that make a non-mutating EC2 request filtered or paginated (ids narrow it as a filter does).
_NARROWING = ("Filters", "Filter", "MaxResults", "NextToken")


@dataclass(frozen=True)
class Refusal:
    code: str
    status: int
    message: str


_REFUSALS = {
    "ec2": Refusal("RequestLimitExceeded", 503, "Request limit exceeded."),
    "autoscaling": Refusal("Throttling", 400, "Rate exceeded"),
}


class _State:
    __slots__ = ("level", "stamp")

    def __init__(self, level: float, stamp: datetime) -> None:
        self.level = level
        self.stamp = stamp


class Buckets:
    """The account's buckets. ``take`` is called once per request attempt; thread-safe."""

    def __init__(self, config: Throttling) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], _State] = {}
        self.refused: dict[tuple[str, str], int] = {}
        """(service, operation) -> requests refused."""
        self.taken: dict[tuple[str, str], int] = {}
        """(service, operation) -> tokens taken (requests let through)."""

    def bucket_for(self, service: str, operation: str, params: Mapping[str, Any] | None) -> tuple[str, Bucket]:
        """The bucket's key and figures for a request (``params`` None: a request made with ids or filters)."""
        config = self._config
        if service == "autoscaling":
            return operation, config.autoscaling
        if operation in config.ec2_actions:
            return operation, config.ec2_actions[operation]
        if operation.startswith(_NON_MUTATING_PREFIXES):
            narrowed = (
                params is None
                or any(key in params for key in _NARROWING)
                or any(key.endswith("Ids") and params[key] for key in params)
            )
            if narrowed:
                return operation, config.ec2_non_mutating
            return f"{operation}:unfiltered", config.ec2_unfiltered_unpaginated
        return operation, config.ec2_mutating

    def take(self, service: str, operation: str, params: Mapping[str, Any] | None, now: datetime) -> Refusal | None:
        """Take one token for the request; the refusal AWS answers with when the bucket is empty."""
        if service not in _REFUSALS:
            return None
        key, bucket = self.bucket_for(service, operation, params)
        with self._lock:
            state = self._states.get((service, key))
            if state is None:
                state = self._states[(service, key)] = _State(bucket.size, now)
            state.level = self._refilled(state, bucket, now)
            state.stamp = max(now, state.stamp)
            if state.level >= 1.0:
                state.level -= 1.0
                self.taken[(service, operation)] = self.taken.get((service, operation), 0) + 1
                return None
            self.refused[(service, operation)] = self.refused.get((service, operation), 0) + 1
            return _REFUSALS[service]

    def level(self, service: str, operation: str, params: Mapping[str, Any] | None, now: datetime) -> float:
        """Tokens in the request's bucket at ``now`` (for tests)."""
        key, bucket = self.bucket_for(service, operation, params)
        with self._lock:
            state = self._states.get((service, key))
            return bucket.size if state is None else self._refilled(state, bucket, now)

    def _refilled(self, state: _State, bucket: Bucket, now: datetime) -> float:
        """The bucket's level at ``now``: what was left, plus the refill since, less other callers' share."""
        elapsed = max((now - state.stamp).total_seconds(), 0.0)
        return min(bucket.size, state.level + elapsed * bucket.refill * (1.0 - self._config.others_share))
