"""Plain data the decisions work on: pod interfaces as netlink shows them, ENIs as IMDS shows them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True)
class PodInterface:
    """A link in the pod's network namespace and its usable addresses."""

    name: str
    index: int
    mac: str
    """Lower-case, colon-separated (``0e:12:...``), as IMDS spells it."""
    addresses: tuple[IPAddress, ...]
    tentative: tuple[IPAddress, ...] = ()
    """Addresses still in (or failed) IPv6 duplicate address detection: present but not usable yet."""


@dataclass(frozen=True, slots=True)
class Eni:
    """One ENI of the instance, from IMDS ``network/interfaces/macs/<mac>/`` (or from EC2: ``eni_lookup``)."""

    mac: str
    eni_id: str
    device_number: int
    subnet_ipv4: IPv4Network | None
    subnet_ipv6: tuple[IPv6Network, ...]
    ipv4s: frozenset[IPv4Address]
    ipv6s: frozenset[IPv6Address]
    no_manage: bool | None = None
    """Tagged ``node.k8s.amazonaws.com/no_manage=true`` (a Multus ENI); ``None`` when unknown: IMDS shows no tags,
    EC2 does (``PIM_ENI_LOOKUP=ec2``), and an ENI known to lack the tag (the VPC CNI's) is never touched."""

    @property
    def is_primary(self) -> bool:
        return self.device_number == 0

    def contains(self, address: IPAddress) -> bool:
        """Whether ``address`` lies inside this ENI's subnet (containment, never prefix-string equality)."""
        if isinstance(address, IPv4Address):
            return self.subnet_ipv4 is not None and address in self.subnet_ipv4
        return any(address in network for network in self.subnet_ipv6)

    def holds(self, address: IPAddress) -> bool:
        return address in self.ipv4s if isinstance(address, IPv4Address) else address in self.ipv6s


@dataclass(frozen=True, slots=True)
class HolderEni:
    """The ENI holding an address now, as ``DescribeNetworkInterfaces`` shows it (any instance's)."""

    eni_id: str
    device_index: int | None
    """Its attachment's device index (0: an instance's primary ENI); ``None`` when detached."""
    no_manage: bool
    """Tagged ``node.k8s.amazonaws.com/no_manage=true``: a Multus ENI, not one the VPC CNI manages."""


class MatchedBy(StrEnum):
    MAC = "mac"
    SUBNET = "subnet"


@dataclass(frozen=True, slots=True)
class Binding:
    """A pod address and the ENI that must carry it."""

    address: IPAddress
    interface: str
    eni_id: str
    mac: str
    matched_by: MatchedBy


class EventKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    LINK = "link"


@dataclass(frozen=True, slots=True)
class AddressEvent:
    """A netlink notification: an address added or removed on link ``index``, or a link change."""

    kind: EventKind
    index: int
    address: IPAddress | None = None


@dataclass(frozen=True, slots=True)
class AttachedEni:
    """One ENI attached to this instance, as ``DescribeNetworkInterfaces`` shows it (the node agent's view:
    EC2 is authoritative for addresses; IMDS shows reassignments late)."""

    eni_id: str
    subnet_id: str
    mac: str
    """Lower-case, colon-separated, as IMDS and netlink spell it."""
    device_index: int | None
    no_manage: bool
    """Tagged ``node.k8s.amazonaws.com/no_manage=true``: a Multus ENI, not one the VPC CNI manages."""
    primary: frozenset[IPAddress]
    """Its primary private IPv4 (and primary IPv6, if it has one): never unassigned."""
    secondary: frozenset[IPAddress]
    """Every other private IPv4 and IPv6 address it holds."""
