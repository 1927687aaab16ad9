"""The engine: make the pod's Multus addresses secondary IPs of the right ENIs, follow changes, release.

It sees only the ports; decisions are delegated to ``planning``. Every failure propagates as one of our
errors: nothing here logs-and-continues.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import assert_never

from pod_ip_manager.effects import DEFAULT_MOVE_RETRY, Effects
from pod_ip_manager.errors import (
    AssignmentNotVisible,
    InterfacesMissing,
    ProtectedHolder,
    Stopped,
    UnroutableAddress,
)
from pod_ip_manager.model import AddressEvent, Binding, EventKind, IPAddress, PodInterface
from pod_ip_manager.planning import (
    Action,
    bind_all,
    manages,
    missing_interfaces,
    multus_interfaces,
    not_yet_visible,
    plan_assignments,
    plan_release,
    protected_holders,
    usable,
)
from pod_ip_manager.ports import Ec2Addresses, InstanceMetadata, PodAddresses
from pod_ip_manager.retry import RetryPolicy

log = logging.getLogger(__name__)

#: How often IMDS is read while waiting for an assignment to show (remapping is asynchronous).
CONFIRM_INTERVAL_SECONDS = 0.25
#: With PIM_ENI_LOOKUP=ec2 each poll is a DescribeNetworkInterfaces, whose account-wide rate the VPC CNI shares.
CONFIRM_INTERVAL_EC2_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Options:
    primary_interface: str
    expected_names: tuple[str, ...]
    expected_count: int
    wait_seconds: float
    confirm_seconds: float
    move_retry: RetryPolicy = DEFAULT_MOVE_RETRY
    """Bound and backoff for ``AssignIpv6Addresses`` answering ``InvalidIPAddress.InUse`` right after we
    unassigned the address from its holder (EC2 applies the unassign asynchronously)."""
    floating_ips: frozenset[IPAddress] = frozenset()
    """Addresses that move between pods (VIPs): never unassigned, since another pod on this node may hold them
    on the same ENI now, and this pod cannot see the other pods."""
    confirm_interval_seconds: float = CONFIRM_INTERVAL_SECONDS
    """How often the confirmation asks again (CONFIRM_INTERVAL_EC2_SECONDS when it asks EC2)."""
    skip_unroutable: bool = False
    """Sidecar: an address no ENI of this instance can carry (outside every Multus subnet, say a VIP from another
    network) is logged as an error and left alone, instead of ``UnroutableAddress`` (exit 4), which would only
    make the sidecar restart and fail again on the same address: a crash loop. Init keeps failing the pod start."""


class PodIpManager:
    """Holds what this pod has put on ENIs (``owned``), so that it can release exactly that."""

    def __init__(
        self,
        *,
        ec2: Ec2Addresses,
        metadata: InstanceMetadata,
        pod: PodAddresses,
        options: Options,
        stopped: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, not cryptography
        self._stopped = stopped
        self._ec2 = ec2
        self._metadata = metadata
        self._pod = pod
        self._options = options
        self._clock = clock
        self._sleep = sleep
        self._effects = Effects(ec2, move_retry=options.move_retry, sleep=sleep, rng=self._rng)
        self.owned: dict[IPAddress, Binding] = {}
        self.skipped: set[IPAddress] = set()
        """Addresses of the pod that no ENI can carry (``skip_unroutable``), each reported once."""

    # --- init --------------------------------------------------------------------------------------------

    def wait_for_interfaces(self) -> tuple[PodInterface, ...]:
        """The Multus interfaces, once every expected one has a usable address; waits on netlink
        notifications up to ``wait_seconds``, then raises ``InterfacesMissing`` naming what is missing."""
        deadline = self._clock() + self._options.wait_seconds
        while True:
            interfaces = multus_interfaces(
                self._pod.interfaces(), self._options.primary_interface, self._options.expected_names
            )
            missing = missing_interfaces(
                interfaces, expected_names=self._options.expected_names, expected_count=self._options.expected_count
            )
            if not missing:
                return interfaces
            if self._stopped():
                raise Stopped
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise InterfacesMissing(missing, self._options.wait_seconds)
            log.info("waiting for Multus interfaces", extra={"missing": list(missing), "remaining_seconds": remaining})
            self._pod.wait(remaining)

    def sync(self, interfaces: Sequence[PodInterface]) -> tuple[Binding, ...]:
        """Put every address of ``interfaces`` on its ENI and confirm it is visible; remember them as owned."""
        bindings = self._bind(interfaces)
        self._assign(bindings)
        return tuple(bindings)

    # --- sidecar -----------------------------------------------------------------------------------------

    def handle(self, events: Iterable[AddressEvent]) -> None:
        """Apply a batch of netlink notifications, in order. A LINK event (a link changed, or the kernel dropped
        notifications: ENOBUFS) ends the batch with a full resync, since individual events may be missing."""
        interfaces: dict[int, PodInterface] | None = None
        resync = False
        for event in events:
            match event.kind:
                case EventKind.ADDED:
                    if event.address is None or not usable(event.address) or event.address in self.owned:
                        continue
                    if interfaces is None:
                        interfaces = {i.index: i for i in self._pod.interfaces()}
                    interface = interfaces.get(event.index)
                    if interface is None or not manages(
                        interface.name, self._options.primary_interface, self._options.expected_names
                    ):
                        continue
                    self._added(interface, event.address)
                case EventKind.REMOVED:
                    if event.address is not None:
                        self.skipped.discard(event.address)
                    if event.address is not None and event.address in self.owned:
                        self._removed(self.owned[event.address])
                case EventKind.LINK:
                    interfaces = None
                    resync = True
                case _:
                    assert_never(event.kind)
        if resync:
            self.resync()

    def resync(self) -> None:
        """Re-read the pod's interfaces and reconcile with ``owned``: assign addresses this pod has but does not
        own yet, unassign owned ones that vanished (as ``REMOVED`` would: floating IPs stay). Tentative
        addresses count as present (not vanished) but are assigned only once usable."""
        interfaces = multus_interfaces(
            self._pod.interfaces(), self._options.primary_interface, self._options.expected_names
        )
        present = {a for i in interfaces for a in (*i.addresses, *i.tentative)}
        self.skipped &= present
        vanished = [binding for address, binding in self.owned.items() if address not in present]
        for binding in vanished:
            self._removed(binding)
        new = [
            PodInterface(i.name, i.index, i.mac, tuple(a for a in i.addresses if a not in self.owned))
            for i in interfaces
        ]
        new = [i for i in new if i.addresses]
        if new:
            self._assign(self._bind(new))
        if vanished or new:
            log.info(
                "resynced after missed notifications",
                extra={
                    "vanished": [str(b.address) for b in vanished],
                    "added": [str(a) for i in new for a in i.addresses],
                },
            )

    def release(self) -> None:
        """Unassign every owned address that its ENI still holds (a floating IP taken over elsewhere stays)."""
        if not self.owned:
            return
        bindings = list(self.owned.values())
        releasable = [b for b in bindings if not self._floating(b)]
        if releasable:
            holders = self._ec2.holders([b.address for b in releasable])
            self._apply(plan_release(releasable, holders))
        for binding in bindings:
            del self.owned[binding.address]
        log.info("released", extra={"addresses": [str(b.address) for b in releasable]})

    # --- steps -------------------------------------------------------------------------------------------

    def _added(self, interface: PodInterface, address: IPAddress) -> None:
        single = PodInterface(interface.name, interface.index, interface.mac, (address,))
        self._assign(self._bind([single]))

    def _bind(self, interfaces: Sequence[PodInterface]) -> list[Binding]:
        """The ENI of every address; an address none can carry raises ``UnroutableAddress``, or with
        ``skip_unroutable`` is reported (once) and left out."""
        bindings, refusals = bind_all(interfaces, self._metadata.enis())
        if refusals and not self._options.skip_unroutable:
            raise UnroutableAddress([str(refusal) for refusal in refusals])
        for refusal in refusals:
            if refusal.address not in self.skipped:
                log.error(
                    "address skipped: no ENI of this instance can carry it, so it stays unroutable beyond this node",
                    extra={"address": str(refusal.address), "interface": refusal.interface, "reason": refusal.reason},
                )
            self.skipped.add(refusal.address)
        return bindings

    def _floating(self, binding: Binding) -> bool:
        if binding.address not in self._options.floating_ips:
            return False
        log.info(
            "floating IP left on the ENI (another pod on this node may hold it now)",
            extra={"address": str(binding.address), "eni": binding.eni_id},
        )
        return True

    def _removed(self, binding: Binding) -> None:
        if self._floating(binding):
            del self.owned[binding.address]
            return
        holders = self._ec2.holders([binding.address])
        actions = plan_release([binding], holders)
        self._apply(actions)
        del self.owned[binding.address]
        if actions:
            log.info("unassigned", extra={"address": str(binding.address), "eni": binding.eni_id})
        else:
            log.info(
                "address left the pod and is no longer on our ENI; nothing to unassign",
                extra={"address": str(binding.address), "eni": binding.eni_id, "holder": holders.get(binding.address)},
            )

    def _assign(self, bindings: Sequence[Binding]) -> None:
        details = self._ec2.holder_enis([b.address for b in bindings])
        protected = protected_holders(bindings, details)
        if protected:
            raise ProtectedHolder(protected)
        holders = {address: holder.eni_id for address, holder in details.items()}
        for binding in bindings:
            holder = holders.get(binding.address)
            if holder is not None and holder != binding.eni_id:
                log.info(
                    "moving address from another ENI",
                    extra={"address": str(binding.address), "from_eni": holder, "to_eni": binding.eni_id},
                )
        self._apply(plan_assignments(bindings, holders))
        self._confirm(bindings)
        for binding in bindings:
            self.owned[binding.address] = binding
            log.info(
                "assigned",
                extra={
                    "address": str(binding.address),
                    "interface": binding.interface,
                    "eni": binding.eni_id,
                    "matched_by": binding.matched_by.value,
                },
            )

    def _confirm(self, bindings: Sequence[Binding]) -> None:
        deadline = self._clock() + self._options.confirm_seconds
        pending = not_yet_visible(bindings, self._metadata.enis())
        while pending:
            if self._clock() >= deadline:
                shown = [f"{b.address} on {b.eni_id}" for b in pending]
                raise AssignmentNotVisible(shown, self._options.confirm_seconds)
            self._sleep(self._options.confirm_interval_seconds)
            pending = not_yet_visible(pending, self._metadata.enis())

    def _apply(self, actions: Sequence[Action]) -> None:
        self._effects.apply(actions)
