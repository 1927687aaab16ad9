"""The two address strategies the lifecycle engine can be given. They differ only in what address an ENI
asks for; everything else (adopt, create, attach, roll back, complete) is the engine's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Protocol, TypeVar

from multus_ipam.addressing import AddressSpace, IPAddress, IPNetwork, choose_worker_address, launch_rank
from multus_ipam.errors import InsufficientAddresses, MissingReservation, SubnetMisconfigured, WorkerRangeExhausted
from multus_ipam.ports import Clock, Eni, Instance, Reservation, Subnet
from multus_ipam.settings import INSTANCE_TAG, OWNER_TAG, Settings

#: How long an execution environment remembers an address EC2 refused as in use that none of our describes
#: shows (an ENI of another account in a subnet shared through AWS RAM).
HIDDEN_ADDRESS_MEMORY_SECONDS = 600
#: How long an execution environment reuses a subnet's CIDR reservations before reading them again. Pod-range
#: reservations are made before a node group launches and change rarely; one read per minute instead of one per
#: launch and subnet keeps a burst's GetSubnetCidrReservations calls off EC2's buckets. A reservation made
#: within the last minute may be missed by static mode's choice (it then avoids it from the next read on).
RESERVATION_CACHE_SECONDS = 60.0
#: A refusal this recent may still be a concurrent launch's new ENI that describes do not show yet (the engine
#: waits as long for EC2 to show what it just made: multus_ipam.budget.VISIBILITY_WAITS).
RECENT_REFUSAL_SECONDS = 15.5


@dataclass(frozen=True, slots=True)
class AddressChoice:
    """What to ask CreateNetworkInterface for. ``None`` addresses are left to EC2."""

    ipv4: IPv4Address | None
    ipv6: IPv6Address | None
    ipv6_auto: bool
    reason: str


class ReservationReader(Protocol):
    """The one EC2 read the strategies make themselves (multus_ipam.ports.Ec2 provides it)."""

    def subnet_reservations(self, subnet_id: str) -> list[Reservation]: ...


class LaunchView(Protocol):
    """What one launch has read of its subnets and its group, read once and shared by every choice it makes."""

    def enis(self, subnet: Subnet) -> list[Eni]:
        """Every ENI of the subnet, as last read."""
        ...

    def waiting(self, availability_zone: str) -> list[str]:
        """The group's instances in the AZ whose launch waits on a hook (read once per launch, when first asked)."""
        ...


class AddressStrategy(Protocol):
    name: str
    ranks_by_group: bool
    """Whether its choices read the group's waiting launches (LaunchView.waiting): the engine's verification then
    reads the group's listing, which serves both."""

    def verify(self, subnet: Subnet) -> None:
        """Check the subnet can serve this strategy before anything is created. Raises LifecycleFailure."""
        ...

    def choose(
        self, subnet: Subnet, instance: Instance, view: LaunchView, avoid: frozenset[IPAddress]
    ) -> AddressChoice:
        """``avoid``: addresses this launch already found taken (a describe may not show them yet)."""
        ...

    def refused(self, subnet: Subnet, choice: AddressChoice) -> None:
        """EC2 refused ``choice`` as in use (InvalidIPAddress.InUse)."""
        ...


@dataclass(frozen=True, slots=True)
class Remembered:
    """What an execution environment remembers of a subnet's addresses refused as in use and shown by no describe."""

    addresses: frozenset[IPAddress] = frozenset()
    recent: frozenset[IPAddress] = frozenset()
    """Refused within RECENT_REFUSAL_SECONDS: possibly a concurrent launch's new ENI that describes do not show
    yet (eventual consistency) rather than an ENI we cannot see at all."""


class HiddenAddresses:
    """Addresses EC2 refused as in use that none of our describes shows, remembered for a while.

    In a subnet shared through AWS RAM, the other participants' ENIs are invisible to our describes but hold
    their addresses all the same: every launch would choose them, be refused, and walk on, until
    MAX_ADDRESS_ATTEMPTS such addresses below its rank fail every launch. A refusal is noted; the next choice
    in the subnet drops it if a describe now shows the address (a concurrent claim, covered by the describes
    from then on) and otherwise treats it as used until it expires. Per execution environment (the strategy
    lives as long as it), thread-safe, no lock held across a call.
    """

    def __init__(self, clock: Clock, memory_seconds: float = HIDDEN_ADDRESS_MEMORY_SECONDS) -> None:
        self._clock = clock
        self._memory = timedelta(seconds=memory_seconds)
        self._recent = timedelta(seconds=RECENT_REFUSAL_SECONDS)
        self._lock = threading.Lock()
        self._refused_at: dict[tuple[str, IPAddress], datetime] = {}

    def refused(self, subnet_id: str, addresses: list[IPAddress]) -> None:
        now = self._clock.now()
        with self._lock:
            for address in addresses:
                self._refused_at[(subnet_id, address)] = now

    def hidden(self, subnet_id: str, shown: frozenset[IPAddress]) -> Remembered:
        """The remembered addresses of the subnet that ``shown`` (what a describe shows used) does not explain;
        forgets the expired ones and those a describe now shows."""
        now = self._clock.now()
        with self._lock:
            for key, at in list(self._refused_at.items()):
                if key[0] == subnet_id and (now - at >= self._memory or key[1] in shown):
                    del self._refused_at[key]
            mine = {address: at for (subnet, address), at in self._refused_at.items() if subnet == subnet_id}
        return Remembered(
            addresses=frozenset(mine),
            recent=frozenset(address for address, at in mine.items() if now - at < self._recent),
        )


class ReservationCache:
    """Each subnet's CIDR reservations, read at most once per RESERVATION_CACHE_SECONDS per execution
    environment. Thread-safe; no lock held across a call (two threads may both read: harmless)."""

    def __init__(self, ec2: ReservationReader, clock: Clock, ttl_seconds: float = RESERVATION_CACHE_SECONDS) -> None:
        self._ec2 = ec2
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._lock = threading.Lock()
        self._read: dict[str, tuple[datetime, list[Reservation]]] = {}

    def get(self, subnet_id: str) -> list[Reservation]:
        now = self._clock.now()
        with self._lock:
            cached = self._read.get(subnet_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        reservations = self._ec2.subnet_reservations(subnet_id)
        with self._lock:
            self._read[subnet_id] = (now, reservations)
        return reservations


class StaticLowestFree:
    """Workers take the lowest free addresses at the start of the subnet; pods use the rest."""

    name = "static"
    ranks_by_group = True

    def __init__(self, settings: Settings, ec2: ReservationReader, clock: Clock) -> None:
        self._settings = settings
        self._reservations = ReservationCache(ec2, clock)
        self._hidden = HiddenAddresses(clock)

    def verify(self, subnet: Subnet) -> None:
        bound = self._settings.worker_upper_bounds.get(subnet.subnet_id)
        if bound is None:
            return
        if subnet.ipv4_cidr is None or bound not in subnet.ipv4_cidr:
            raise SubnetMisconfigured(
                f"WORKER_IP_UPPER_BOUNDS: {bound} is not inside {subnet.subnet_id} ({subnet.ipv4_cidr or 'IPv6-only'})"
            )

    def choose(
        self, subnet: Subnet, instance: Instance, view: LaunchView, avoid: frozenset[IPAddress]
    ) -> AddressChoice:
        enis = view.enis(subnet)
        reservations = self._reservations.get(subnet.subnet_id)
        rank = self._rank(instance, subnet, enis, view)
        # An ENI a parallel delivery of this same launch created (not yet attached) does not make its address
        # taken for us: choosing it again gives the same request, so the client token returns that same ENI.
        others = [eni for eni in enis if not self._is_for(eni, instance)]
        shown: frozenset[IPAddress] = frozenset(
            [*(a for eni in enis for a in eni.private_ipv4s), *(a for eni in enis for a in eni.ipv6s)]
        )
        remembered = self._hidden.hidden(subnet.subnet_id, shown)
        hidden = remembered.addresses
        # Refused by EC2, shown by no describe yet: maybe a launch counted in the rank whose ENI is not shown.
        uncertain = (avoid | remembered.recent) - shown
        ipv4 = ipv6 = None
        reasons = []
        if subnet.ipv4_cidr is not None:
            space4 = AddressSpace(
                subnet.ipv4_cidr,
                used=frozenset(a for eni in others for a in eni.private_ipv4s) | avoid | hidden,
                blocked=_blocked(enis, reservations, IPv4Network),
                upper_bound=self._settings.worker_upper_bounds.get(subnet.subnet_id),
            )
            pick4 = choose_worker_address(space4, rank, uncertain=_of_version(uncertain, 4))
            if pick4 is None:
                raise self._exhausted(subnet, space4, rank)
            assert isinstance(pick4.address, IPv4Address)
            ipv4 = pick4.address
            reasons.append(pick4.reason)
        if subnet.ipv6_cidr is not None:
            space6 = AddressSpace(
                subnet.ipv6_cidr,
                used=frozenset(a for eni in others for a in eni.ipv6s) | avoid | hidden,
                blocked=_blocked(enis, reservations, IPv6Network),
            )
            pick6 = choose_worker_address(space6, rank, uncertain=_of_version(uncertain, 6))
            if pick6 is None:
                raise self._exhausted(subnet, space6, rank)
            assert isinstance(pick6.address, IPv6Address)
            ipv6 = pick6.address
            reasons.append(pick6.reason)
        if hidden:
            reasons.append(f"{len(hidden)} address(es) refused as in use earlier and shown by no describe avoided")
        return AddressChoice(ipv4=ipv4, ipv6=ipv6, ipv6_auto=False, reason="; ".join(reasons))

    def refused(self, subnet: Subnet, choice: AddressChoice) -> None:
        self._hidden.refused(subnet.subnet_id, [a for a in (choice.ipv4, choice.ipv6) if a is not None])

    def _is_for(self, eni: Eni, instance: Instance) -> bool:
        return eni.tags.get(OWNER_TAG) == self._settings.owner and eni.tags.get(INSTANCE_TAG) == instance.instance_id

    def _rank(self, instance: Instance, subnet: Subnet, enis: list[Eni], view: LaunchView) -> int:
        """The launch's rank among the group's waiting instances that have no ENI of ours in this subnet yet."""
        served = {eni.tags.get(INSTANCE_TAG) for eni in enis if eni.tags.get(OWNER_TAG) == self._settings.owner}
        waiting = view.waiting(subnet.availability_zone)
        return launch_rank(instance.instance_id, (i for i in waiting if i not in served))

    def _exhausted(
        self, subnet: Subnet, space: AddressSpace, rank: int
    ) -> InsufficientAddresses | WorkerRangeExhausted:
        """No address for this launch: the free ones (if any) go to the ``rank`` waiting launches ahead of it."""
        family = f"IPv{space.network.version}"
        free = space.count_free(at_most=rank + 1)
        bound = self._settings.worker_upper_bounds.get(subnet.subnet_id) if family == "IPv4" else None
        where = f"{subnet.subnet_id} ({space.network})" + (
            f" at or below {bound} (WORKER_IP_UPPER_BOUNDS)" if bound is not None else ""
        )
        if free == 0:
            problem = f"no free {family} address left for workers in {where}"
        else:
            problem = (
                f"{free} free {family} address(es) for workers in {where}, all taken by the {rank} waiting "
                f"launch(es) ahead of this one (it is #{rank + 1})"
            )
        if bound is not None:
            return WorkerRangeExhausted(f"{problem}; raise the bound or free addresses")
        return InsufficientAddresses(f"{problem}; use a bigger subnet or fewer workers")


class CidrReservation:
    """EC2 assigns the worker address; pod ranges are explicit CIDR reservations EC2 never assigns from."""

    name = "cidr-reservation"
    ranks_by_group = False

    def __init__(self, settings: Settings, ec2: ReservationReader, clock: Clock) -> None:
        self._settings = settings
        self._reservations = ReservationCache(ec2, clock)

    def verify(self, subnet: Subnet) -> None:
        """Every address family EC2 will assign in the subnet needs an explicit reservation for the pod range:
        the configured ones (POD_CIDR_RESERVATIONS) where given, else at least one of that family. Read at most
        once a minute (RESERVATION_CACHE_SECONDS); a reservation deleted within that minute is noticed late."""
        explicit = {r.cidr for r in self._reservations.get(subnet.subnet_id) if r.kind == "explicit"}
        expected = self._settings.pod_reservations.get(subnet.subnet_id, ())
        missing = [str(cidr) for cidr in expected if cidr not in explicit]
        if missing:
            raise MissingReservation(
                f"{subnet.subnet_id} lacks the explicit CIDR reservation(s) {', '.join(missing)} "
                "(POD_CIDR_RESERVATIONS); without them EC2 may give a worker a pod address"
            )
        families = [(4, "IPv4", subnet.ipv4_cidr), (6, "IPv6", subnet.ipv6_cidr)]
        for version, family, block in families:
            if block is not None and not any(cidr.version == version for cidr in explicit):
                raise MissingReservation(
                    f"{subnet.subnet_id} has no explicit {family} CIDR reservation for the pod range; "
                    f"without one EC2 may give a worker a pod {family} address"
                )

    def choose(
        self, subnet: Subnet, instance: Instance, view: LaunchView, avoid: frozenset[IPAddress]
    ) -> AddressChoice:
        return AddressChoice(
            ipv4=None,
            ipv6=None,
            ipv6_auto=subnet.ipv6_cidr is not None,
            reason="assigned by EC2 outside the subnet's explicit CIDR reservations",
        )

    def refused(self, subnet: Subnet, choice: AddressChoice) -> None:
        """EC2 chose the address itself: nothing to remember."""


_N = TypeVar("_N", IPv4Network, IPv6Network)


def _of_version(addresses: frozenset[IPAddress], version: int) -> int:
    return sum(1 for address in addresses if address.version == version)


def _blocked(enis: list[Eni], reservations: list[Reservation], family: type[_N]) -> tuple[_N, ...]:
    """Ranges of one IP family nobody may take automatically: ENI prefixes and CIDR reservations."""
    ranges: list[IPNetwork] = [r.cidr for r in reservations]
    for eni in enis:
        ranges.extend(eni.ipv4_prefixes)
        ranges.extend(eni.ipv6_prefixes)
    return tuple(r for r in ranges if isinstance(r, family))
