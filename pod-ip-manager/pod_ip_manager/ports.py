"""What the manager needs from the outside world, as small typed ports. Adapters: ``ec2``, ``imds``,
``netlink``; tests use the same adapters against the local AWS, a local IMDS and real network namespaces."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from pod_ip_manager.model import AddressEvent, AttachedEni, Eni, HolderEni, IPAddress, PodInterface


class Ec2Addresses(Protocol):
    """EC2's view of secondary addresses. Raises ``AwsError`` (``Throttled`` after the retries)."""

    def holders(self, addresses: Collection[IPAddress]) -> dict[IPAddress, str]:
        """The ENI id holding each address now, for those held by any ENI."""
        ...

    def holder_enis(self, addresses: Collection[IPAddress]) -> dict[IPAddress, HolderEni]:
        """Like ``holders``, with the holder's device index and whether it is tagged ``no_manage=true``."""
        ...

    def assign_ipv4(self, eni_id: str, addresses: Sequence[IPv4Address]) -> None:
        """``AssignPrivateIpAddresses`` with ``AllowReassignment=True``."""
        ...

    def unassign_ipv4(self, eni_id: str, addresses: Sequence[IPv4Address]) -> None: ...

    def assign_ipv6(self, eni_id: str, addresses: Sequence[IPv6Address]) -> None: ...

    def unassign_ipv6(self, eni_id: str, addresses: Sequence[IPv6Address]) -> None: ...


class InstanceMetadata(Protocol):
    """IMDSv2. Raises ``MetadataError``."""

    def enis(self) -> tuple[Eni, ...]:
        """Every ENI attached to the instance, with the addresses IMDS shows on it now."""
        ...

    def region(self) -> str: ...


class PodAddresses(Protocol):
    """The pod's network namespace: links and addresses now, and notifications of changes."""

    def interfaces(self) -> tuple[PodInterface, ...]: ...

    def wait(self, timeout: float | None) -> tuple[AddressEvent, ...]:
        """Block until notifications arrive, the stop signal fires (empty result) or ``timeout`` passes."""
        ...


class Ec2NodeAddresses(Ec2Addresses, Protocol):
    """What the node agent also needs from EC2: this instance's ENIs with their tags and addresses, and holders
    looked up within its Multus subnets only."""

    def holder_enis(
        self, addresses: Collection[IPAddress], subnet_ids: Collection[str] = ()
    ) -> dict[IPAddress, HolderEni]: ...

    def instance_enis(self, instance_id: str) -> tuple[AttachedEni, ...]:
        """Every ENI attached to ``instance_id`` (``DescribeNetworkInterfaces``, filtered on the attachment)."""
        ...


class NodeMetadata(InstanceMetadata, Protocol):
    """IMDSv2 on the host network (the node agent): also the instance's id."""

    def instance_id(self) -> str: ...
