"""Carrying out planned EC2 calls (``planning.Action``), shared by the pod modes and the node agent.

Two rules beyond "make the call": an IPv6 assign right after its previous holder's unassign may meet
``InvalidIPAddress.InUse`` (EC2 applies the unassign asynchronously): retried with bounded, jittered backoff; an
unassign that fails because the address already left the ENI (another node took it over) has met its goal.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv6Address
from typing import assert_never

from pod_ip_manager.errors import AwsError
from pod_ip_manager.model import IPAddress
from pod_ip_manager.planning import Action, AssignIpv4, AssignIpv6, UnassignIpv4, UnassignIpv6
from pod_ip_manager.ports import Ec2Addresses
from pod_ip_manager.retry import RetryPolicy, call_with_retry

log = logging.getLogger(__name__)

#: EC2's answer to assigning an address another ENI holds (for IPv6: until the holder's unassign took effect).
IN_USE = "InvalidIPAddress.InUse"
DEFAULT_MOVE_RETRY = RetryPolicy(max_attempts=6, base_seconds=0.2, max_seconds=5.0)


class Effects:
    """Applies actions in order through the EC2 port. Raises ``AwsError`` (``Throttled`` after the retries)."""

    def __init__(
        self,
        ec2: Ec2Addresses,
        *,
        move_retry: RetryPolicy = DEFAULT_MOVE_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._ec2 = ec2
        self._move_retry = move_retry
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, not cryptography

    def apply(self, actions: Sequence[Action]) -> None:
        released_v6: set[IPAddress] = set()
        for action in actions:
            log.debug("ec2 call", extra={"action": type(action).__name__, "eni": action.eni_id})
            match action:
                case AssignIpv4(eni_id, addresses):
                    self._ec2.assign_ipv4(eni_id, addresses)
                case AssignIpv6(eni_id, addresses) if released_v6.intersection(addresses):
                    self._assign_moved_ipv6(eni_id, addresses)
                case AssignIpv6(eni_id, addresses):
                    self._ec2.assign_ipv6(eni_id, addresses)
                case UnassignIpv4() | UnassignIpv6():
                    self._unassign(action)
                    if isinstance(action, UnassignIpv6):
                        released_v6.update(action.addresses)
                case _:
                    assert_never(action)

    def _assign_moved_ipv6(self, eni_id: str, addresses: Sequence[IPv6Address]) -> None:
        """Right after the previous holder's unassign, EC2 may still see the address in use (the unassign is
        applied asynchronously): retry ``InvalidIPAddress.InUse`` with bounded, jittered backoff."""
        call_with_retry(
            lambda: self._ec2.assign_ipv6(eni_id, addresses),
            self._move_retry,
            sleep=self._sleep,
            rng=self._rng,
            retryable=lambda error: error.code == IN_USE,
        )

    def _unassign(self, action: UnassignIpv4 | UnassignIpv6) -> None:
        """An unassign can race another node taking the address over; if the ENI no longer holds any of the
        addresses when the call fails, the goal is met. Any other failure stands."""
        try:
            if isinstance(action, UnassignIpv4):
                self._ec2.unassign_ipv4(action.eni_id, action.addresses)
            else:
                self._ec2.unassign_ipv6(action.eni_id, action.addresses)
        except AwsError:
            holders = self._ec2.holders(action.addresses)
            if any(holders.get(address) == action.eni_id for address in action.addresses):
                raise
            log.info("addresses left the ENI meanwhile", extra={"eni": action.eni_id})
