"""Pure decisions: which pod addresses count, which ENI carries each, and which EC2 calls make it so.

No I/O here: every function is a function of the data it is given (netlink's view of the pod, IMDS's view of
the instance, EC2's view of who holds an address), so all of it is unit- and property-tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import TypeVar

from pod_ip_manager.model import Binding, Eni, HolderEni, IPAddress, MatchedBy, PodInterface

LOOPBACK_INTERFACE = "lo"

A = TypeVar("A", IPv4Address, IPv6Address)


def usable(address: IPAddress) -> bool:
    """An address worth making routable: not link-local, loopback, multicast, unspecified or reserved."""
    return not (
        address.is_link_local
        or address.is_loopback
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    )


def manages(name: str, primary: str, only: Sequence[str] = ()) -> bool:
    """Whether interface ``name`` is ours: the ones in ``only`` (``PIM_INTERFACES``) if given, else every
    interface except the primary one (the VPC CNI's ``eth0``) and loopback."""
    if only:
        return name in only
    return name not in (primary, LOOPBACK_INTERFACE)


def multus_interfaces(
    interfaces: Iterable[PodInterface], primary: str, only: Sequence[str] = ()
) -> tuple[PodInterface, ...]:
    """The managed pod interfaces (see ``manages``), usable addresses only."""
    return tuple(
        PodInterface(
            name=interface.name,
            index=interface.index,
            mac=interface.mac,
            addresses=tuple(a for a in interface.addresses if usable(a)),
            tentative=tuple(a for a in interface.tentative if usable(a)),
        )
        for interface in interfaces
        if manages(interface.name, primary, only)
    )


def missing_interfaces(
    interfaces: Sequence[PodInterface], *, expected_names: Sequence[str], expected_count: int
) -> tuple[str, ...]:
    """What is still missing, one phrase per gap (empty when the pod is ready).

    ``interfaces`` are the Multus interfaces (see ``multus_interfaces``). An interface counts once it has at
    least one usable address and no tentative one: whereabouts configures the address when it creates the link,
    but an IPv6 address is only usable after duplicate address detection, and an interface that is ready with
    its IPv4 while its IPv6 is still tentative would otherwise be assigned half-way.
    """
    ready = {interface.name for interface in interfaces if interface.addresses and not interface.tentative}
    by_name = {interface.name: interface for interface in interfaces}
    if expected_names:
        return tuple(_gap(name, by_name.get(name)) for name in expected_names if name not in ready)
    waiting = tuple(_gap(i.name, i) for i in interfaces if i.tentative)
    if len(ready) < expected_count:
        seen = ", ".join(sorted(ready)) or "none"
        return (
            f"{expected_count} Multus interface(s) with an address expected, found {len(ready)} ({seen})",
            *waiting,
        )
    return waiting


def _gap(name: str, interface: PodInterface | None) -> str:
    if interface is None:
        return f"interface {name} does not exist"
    if interface.tentative:
        listed = ", ".join(str(a) for a in interface.tentative)
        return f"interface {name} has tentative address(es) {listed} (IPv6 duplicate address detection not done)"
    return f"interface {name} has no usable address"


_UNTAGGED = "not tagged node.k8s.amazonaws.com/no_manage=true (a VPC CNI ENI): never touched"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an address cannot be bound to an ENI."""

    address: IPAddress
    interface: str
    reason: str

    def __str__(self) -> str:
        return f"{self.address} on {self.interface}: {self.reason}"


def locate(interface: PodInterface, address: IPAddress, enis: Sequence[Eni]) -> Binding | Refusal:
    """The ENI that must carry ``address``: the ENI with the interface's MAC (ipvlan shares its master's MAC),
    else the one non-primary ENI whose subnet contains the address. Never the primary ENI (device index 0)."""
    by_mac = {eni.mac: eni for eni in enis}
    eni = by_mac.get(interface.mac)
    if eni is None:
        return _by_subnet(interface, address, enis)
    if eni.is_primary:
        return Refusal(address, interface.name, f"its MAC is the primary ENI's ({eni.eni_id}), never touched")
    if eni.no_manage is False:
        return Refusal(address, interface.name, f"its MAC is {eni.eni_id}'s, {_UNTAGGED}")
    if not eni.contains(address):
        return Refusal(address, interface.name, f"outside the subnet of {eni.eni_id} (same MAC)")
    return Binding(address, interface.name, eni.eni_id, eni.mac, MatchedBy.MAC)


def _by_subnet(interface: PodInterface, address: IPAddress, enis: Sequence[Eni]) -> Binding | Refusal:
    containing = [eni for eni in enis if eni.contains(address)]
    secondary = [eni for eni in containing if not eni.is_primary and eni.no_manage is not False]
    if len(secondary) == 1:
        found = secondary[0]
        return Binding(address, interface.name, found.eni_id, found.mac, MatchedBy.SUBNET)
    if len(secondary) > 1:
        ids = ", ".join(sorted(e.eni_id for e in secondary))
        reason = f"ambiguous: several ENIs are in subnets that contain it ({ids})"
    elif any(eni.is_primary for eni in containing):
        reason = "only the primary ENI's subnet contains it, and it is never touched"
    elif containing:
        ids = ", ".join(sorted(e.eni_id for e in containing))
        reason = f"only the subnets of untagged ENIs contain it ({ids}): {_UNTAGGED}"
    else:
        reason = "no ENI of this instance is in a subnet that contains it"
    return Refusal(address, interface.name, reason)


def bind_all(interfaces: Sequence[PodInterface], enis: Sequence[Eni]) -> tuple[list[Binding], list[Refusal]]:
    bindings: list[Binding] = []
    refusals: list[Refusal] = []
    for interface in interfaces:
        for address in interface.addresses:
            decision = locate(interface, address, enis)
            if isinstance(decision, Binding):
                bindings.append(decision)
            else:
                refusals.append(decision)
    return bindings, refusals


# --- EC2 calls ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssignIpv4:
    """``AssignPrivateIpAddresses`` with ``AllowReassignment``: moves an address held by another ENI."""

    eni_id: str
    addresses: tuple[IPv4Address, ...]


@dataclass(frozen=True, slots=True)
class UnassignIpv4:
    eni_id: str
    addresses: tuple[IPv4Address, ...]


@dataclass(frozen=True, slots=True)
class AssignIpv6:
    eni_id: str
    addresses: tuple[IPv6Address, ...]


@dataclass(frozen=True, slots=True)
class UnassignIpv6:
    """IPv6 cannot be reassigned: its current holder must let go first."""

    eni_id: str
    addresses: tuple[IPv6Address, ...]


Action = AssignIpv4 | UnassignIpv4 | AssignIpv6 | UnassignIpv6


def _grouped(pairs: Iterable[tuple[str, A]]) -> dict[str, tuple[A, ...]]:
    grouped: dict[str, list[A]] = {}
    for eni_id, address in pairs:
        if address not in grouped.setdefault(eni_id, []):
            grouped[eni_id].append(address)
    return {eni_id: tuple(sorted(addresses)) for eni_id, addresses in sorted(grouped.items())}


def plan_assignments(bindings: Iterable[Binding], holders: Mapping[IPAddress, str]) -> tuple[Action, ...]:
    """The calls that put every bound address on its ENI, given which ENI holds each address now.

    IPv6 releases from their current holders come first, then one call per ENI and family. Addresses already
    on the right ENI need no call (so running twice is a no-op).
    """
    todo = [b for b in bindings if holders.get(b.address) != b.eni_id]
    v6_release = _grouped(
        (holders[b.address], b.address) for b in todo if isinstance(b.address, IPv6Address) and b.address in holders
    )
    v4 = _grouped((b.eni_id, b.address) for b in todo if isinstance(b.address, IPv4Address))
    v6 = _grouped((b.eni_id, b.address) for b in todo if isinstance(b.address, IPv6Address))
    return (
        *(UnassignIpv6(eni_id, addresses) for eni_id, addresses in v6_release.items()),
        *(AssignIpv4(eni_id, addresses) for eni_id, addresses in v4.items()),
        *(AssignIpv6(eni_id, addresses) for eni_id, addresses in v6.items()),
    )


def plan_release(bindings: Iterable[Binding], holders: Mapping[IPAddress, str]) -> tuple[Action, ...]:
    """The calls that take bound addresses off their ENIs, only where that ENI still holds them (a floating IP
    that moved to another node's ENI is left alone)."""
    still = [b for b in bindings if holders.get(b.address) == b.eni_id]
    v4 = _grouped((b.eni_id, b.address) for b in still if isinstance(b.address, IPv4Address))
    v6 = _grouped((b.eni_id, b.address) for b in still if isinstance(b.address, IPv6Address))
    return (
        *(UnassignIpv4(eni_id, addresses) for eni_id, addresses in v4.items()),
        *(UnassignIpv6(eni_id, addresses) for eni_id, addresses in v6.items()),
    )


def plan_unassign(held: Iterable[tuple[IPAddress, str]]) -> tuple[Action, ...]:
    """The calls that take each address off the ENI given with it (the node agent's releases): one call per ENI
    and family."""
    pairs = list(held)
    v4 = _grouped((eni_id, a) for a, eni_id in pairs if isinstance(a, IPv4Address))
    v6 = _grouped((eni_id, a) for a, eni_id in pairs if isinstance(a, IPv6Address))
    return (
        *(UnassignIpv4(eni_id, addresses) for eni_id, addresses in v4.items()),
        *(UnassignIpv6(eni_id, addresses) for eni_id, addresses in v6.items()),
    )


def protected_holders(bindings: Iterable[Binding], holders: Mapping[IPAddress, HolderEni]) -> tuple[str, ...]:
    """Why some addresses must not be taken from their current holder: assigning them elsewhere would move an
    IPv4 (``AllowReassignment``) or unassign an IPv6 from an instance's primary ENI or an ENI that is not ours
    (not tagged ``no_manage=true``: the VPC CNI's, whose pods would lose their address)."""
    reasons: list[str] = []
    for binding in bindings:
        holder = holders.get(binding.address)
        if holder is None or holder.eni_id == binding.eni_id:
            continue
        if holder.device_index == 0:
            reasons.append(f"{binding.address} is held by {holder.eni_id}, an instance's primary ENI (device index 0)")
        elif not holder.no_manage:
            tag = "node.k8s.amazonaws.com/no_manage=true"
            reasons.append(f"{binding.address} is held by {holder.eni_id}, which is not tagged {tag}")
    return tuple(reasons)


def not_yet_visible(bindings: Iterable[Binding], enis: Sequence[Eni]) -> tuple[Binding, ...]:
    """Bindings whose address IMDS does not yet show on the bound ENI (remapping is asynchronous)."""
    by_id = {eni.eni_id: eni for eni in enis}
    return tuple(b for b in bindings if b.eni_id not in by_id or not by_id[b.eni_id].holds(b.address))
