"""The two address strategies the lifecycle engine can be given. They differ only in what address an ENI
asks for; everything else (adopt, create, attach, roll back, complete) is the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Protocol, TypeVar

from multus_ipam.addressing import AddressSpace, IPAddress, IPNetwork, choose_worker_address, launch_rank
from multus_ipam.errors import InsufficientAddresses, MissingReservation, SubnetMisconfigured, WorkerRangeExhausted
from multus_ipam.ports import AutoScaling, Ec2, Eni, Instance, Reservation, Subnet
from multus_ipam.settings import INSTANCE_TAG, OWNER_TAG, Settings


@dataclass(frozen=True, slots=True)
class AddressChoice:
    """What to ask CreateNetworkInterface for. ``None`` addresses are left to EC2."""

    ipv4: IPv4Address | None
    ipv6: IPv6Address | None
    ipv6_auto: bool
    reason: str


class AddressStrategy(Protocol):
    name: str

    def verify(self, subnet: Subnet) -> None:
        """Check the subnet can serve this strategy before anything is created. Raises LifecycleFailure."""
        ...

    def choose(self, subnet: Subnet, instance: Instance, avoid: frozenset[IPAddress]) -> AddressChoice:
        """``avoid``: addresses this launch already found taken (a describe may not show them yet)."""
        ...


class StaticLowestFree:
    """Workers take the lowest free addresses at the start of the subnet; pods use the rest."""

    name = "static"

    def __init__(self, settings: Settings, ec2: Ec2, autoscaling: AutoScaling) -> None:
        self._settings = settings
        self._ec2 = ec2
        self._autoscaling = autoscaling

    def verify(self, subnet: Subnet) -> None:
        bound = self._settings.worker_upper_bounds.get(subnet.subnet_id)
        if bound is None:
            return
        if subnet.ipv4_cidr is None or bound not in subnet.ipv4_cidr:
            raise SubnetMisconfigured(
                f"WORKER_IP_UPPER_BOUNDS: {bound} is not inside {subnet.subnet_id} ({subnet.ipv4_cidr or 'IPv6-only'})"
            )

    def choose(self, subnet: Subnet, instance: Instance, avoid: frozenset[IPAddress]) -> AddressChoice:
        enis = self._ec2.subnet_enis(subnet.subnet_id)
        reservations = self._ec2.subnet_reservations(subnet.subnet_id)
        rank = self._rank(instance, subnet, enis)
        # An ENI a parallel delivery of this same launch created (not yet attached) does not make its address
        # taken for us: choosing it again gives the same request, so the client token returns that same ENI.
        others = [eni for eni in enis if not self._is_for(eni, instance)]
        ipv4 = ipv6 = None
        reasons = []
        if subnet.ipv4_cidr is not None:
            space4 = AddressSpace(
                subnet.ipv4_cidr,
                used=frozenset(a for eni in others for a in eni.private_ipv4s) | avoid,
                blocked=_blocked(enis, reservations, IPv4Network),
                upper_bound=self._settings.worker_upper_bounds.get(subnet.subnet_id),
            )
            pick4 = choose_worker_address(space4, rank)
            if pick4 is None:
                raise self._exhausted(subnet, "IPv4")
            assert isinstance(pick4.address, IPv4Address)
            ipv4 = pick4.address
            reasons.append(pick4.reason)
        if subnet.ipv6_cidr is not None:
            space6 = AddressSpace(
                subnet.ipv6_cidr,
                used=frozenset(a for eni in others for a in eni.ipv6s) | avoid,
                blocked=_blocked(enis, reservations, IPv6Network),
            )
            pick6 = choose_worker_address(space6, rank)
            if pick6 is None:
                raise self._exhausted(subnet, "IPv6")
            assert isinstance(pick6.address, IPv6Address)
            ipv6 = pick6.address
            reasons.append(pick6.reason)
        return AddressChoice(ipv4=ipv4, ipv6=ipv6, ipv6_auto=False, reason="; ".join(reasons))

    def _is_for(self, eni: Eni, instance: Instance) -> bool:
        return eni.tags.get(OWNER_TAG) == self._settings.owner and eni.tags.get(INSTANCE_TAG) == instance.instance_id

    def _rank(self, instance: Instance, subnet: Subnet, enis: list[Eni]) -> int:
        """The launch's rank among the group's waiting instances that have no ENI of ours in this subnet yet."""
        served = {eni.tags.get(INSTANCE_TAG) for eni in enis if eni.tags.get(OWNER_TAG) == self._settings.owner}
        waiting = self._autoscaling.waiting_instances(self._settings.group_name, subnet.availability_zone)
        return launch_rank(instance.instance_id, (i for i in waiting if i not in served))

    def _exhausted(self, subnet: Subnet, family: str) -> InsufficientAddresses | WorkerRangeExhausted:
        bound = self._settings.worker_upper_bounds.get(subnet.subnet_id)
        if family == "IPv4" and bound is not None:
            return WorkerRangeExhausted(
                f"no free IPv4 address left for workers in {subnet.subnet_id} at or below {bound} "
                "(WORKER_IP_UPPER_BOUNDS); raise the bound or free addresses"
            )
        return InsufficientAddresses(f"no free {family} address left for workers in {subnet.subnet_id}")


class CidrReservation:
    """EC2 assigns the worker address; pod ranges are explicit CIDR reservations EC2 never assigns from."""

    name = "cidr-reservation"

    def __init__(self, settings: Settings, ec2: Ec2) -> None:
        self._settings = settings
        self._ec2 = ec2

    def verify(self, subnet: Subnet) -> None:
        """Every address family EC2 will assign in the subnet needs an explicit reservation for the pod range:
        the configured ones (POD_CIDR_RESERVATIONS) where given, else at least one of that family."""
        explicit = {r.cidr for r in self._ec2.subnet_reservations(subnet.subnet_id) if r.kind == "explicit"}
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

    def choose(self, subnet: Subnet, instance: Instance, avoid: frozenset[IPAddress]) -> AddressChoice:
        return AddressChoice(
            ipv4=None,
            ipv6=None,
            ipv6_auto=subnet.ipv6_cidr is not None,
            reason="assigned by EC2 outside the subnet's explicit CIDR reservations",
        )


_N = TypeVar("_N", IPv4Network, IPv6Network)


def _blocked(enis: list[Eni], reservations: list[Reservation], family: type[_N]) -> tuple[_N, ...]:
    """Ranges of one IP family nobody may take automatically: ENI prefixes and CIDR reservations."""
    ranges: list[IPNetwork] = [r.cidr for r in reservations]
    for eni in enis:
        ranges.extend(eni.ipv4_prefixes)
        ranges.extend(eni.ipv6_prefixes)
    return tuple(r for r in ranges if isinstance(r, family))
