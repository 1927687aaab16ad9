"""The node agent's full resync when a pod's namespace cannot be read: a failure to read is not the pod going away.

The namespaces and EC2 are fakes here (the decision is the agent's: what an unreadable namespace carries); the real
namespaces' failure path is in test_node_agent_netns.py.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address

from pod_ip_manager.effects import Effects
from pod_ip_manager.model import AttachedEni, Eni, HolderEni, IPAddress, PodInterface
from pod_ip_manager.netns import NamespaceChanges
from pod_ip_manager.node_agent import AgentOptions, NodeAgent
from pod_ip_manager.status import Status

MAC = "0e:00:00:00:00:01"
ENI = "eni-0multus0000000001"
SUBNET = "subnet-0multus000000001"
PRIMARY = ip_address("10.0.4.10")
POD_A = ip_address("10.0.4.200")
POD_B = ip_address("10.0.4.201")


def link(*addresses: IPAddress) -> tuple[PodInterface, ...]:
    return (PodInterface("net1", 2, MAC, tuple(addresses)),)


@dataclass
class Ec2:
    """One Multus ENI on this instance holding ``secondary``; records the calls that change it."""

    secondary: set[IPAddress]
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def instance_enis(self, instance_id: str) -> tuple[AttachedEni, ...]:
        return (AttachedEni(ENI, SUBNET, MAC, 1, True, frozenset({PRIMARY}), frozenset(self.secondary)),)

    def holders(self, addresses: Collection[IPAddress]) -> dict[IPAddress, str]:
        return {a: ENI for a in addresses if a in self.secondary}

    def holder_enis(
        self, addresses: Collection[IPAddress], subnet_ids: Collection[str] = ()
    ) -> dict[IPAddress, HolderEni]:
        return {a: HolderEni(ENI, 1, True) for a in addresses if a in self.secondary}

    def assign_ipv4(self, eni_id: str, addresses: Sequence[IPv4Address]) -> None:
        self.calls.append(("assign", tuple(map(str, addresses))))
        self.secondary |= set(addresses)

    def unassign_ipv4(self, eni_id: str, addresses: Sequence[IPv4Address]) -> None:
        self.calls.append(("unassign", tuple(map(str, addresses))))
        self.secondary -= set(addresses)

    def assign_ipv6(self, eni_id: str, addresses: Sequence[IPv6Address]) -> None:
        raise AssertionError("no IPv6 here")

    def unassign_ipv6(self, eni_id: str, addresses: Sequence[IPv6Address]) -> None:
        raise AssertionError("no IPv6 here")


class Metadata:
    def instance_id(self) -> str:
        return "i-0123456789abcdef0"

    def enis(self) -> tuple[Eni, ...]:
        return (Eni(MAC, ENI, 1, IPv4Network("10.0.4.0/24"), (), frozenset(), frozenset()),)

    def region(self) -> str:
        return "us-east-1"


@dataclass
class Namespaces:
    """Each rescan answers the next scripted view of the namespace directory."""

    script: list[NamespaceChanges]

    def rescan(self) -> NamespaceChanges:
        return self.script.pop(0)

    def wait(self, timeout: float | None) -> NamespaceChanges:
        return NamespaceChanges()

    def watched(self) -> tuple[str, ...]:
        return ()


def agent(ec2: Ec2, script: list[NamespaceChanges]) -> NodeAgent:
    return NodeAgent(
        ec2=ec2,
        metadata=Metadata(),
        namespaces=Namespaces(script),
        effects=Effects(ec2),
        status=Status(),
        options=AgentOptions(resync_seconds=120),
        stopped=lambda: False,
    )


def test_given_a_pod_read_before_when_its_namespace_cannot_be_read_then_its_addresses_stay_assigned() -> None:
    """Given pod A read at the last resync, when its namespace cannot be read at this one (EMFILE, a netlink
    timeout), then what it carried stays wanted: nothing is unassigned, and the resync is not ok (not ready)."""
    ec2 = Ec2(secondary={POD_A})
    failed = NamespaceChanges(failed=(("cni-a", "OSError: [Errno 24] Too many open files"),))
    node = agent(ec2, [NamespaceChanges(updated={"cni-a": link(POD_A)}), failed])
    assert node.resync()

    assert not node.resync()

    assert ec2.calls == []
    assert ec2.secondary == {POD_A}


def test_given_a_namespace_never_read_when_a_resync_would_release_then_nothing_is_released() -> None:
    """Given a namespace the agent has never been able to read (no CAP_SYS_ADMIN, after a restart), when a resync
    finds an owned address no readable pod carries, then it releases nothing: the address may be that pod's.
    What readable pods carry is still assigned."""
    ec2 = Ec2(secondary={POD_A})
    script = [
        NamespaceChanges(
            updated={"cni-b": link(POD_B)}, failed=(("cni-a", "PermissionError: [Errno 1] Operation not permitted"),)
        )
    ]
    node = agent(ec2, script)

    assert not node.resync()

    assert ec2.calls == [("assign", (str(POD_B),))]
    assert ec2.secondary == {POD_A, POD_B}


def test_given_the_unreadable_namespace_readable_again_then_what_no_pod_carries_is_released() -> None:
    """The hold is for the unknown only: once every namespace is read, an address no pod carries goes."""
    ec2 = Ec2(secondary={POD_A, POD_B})
    script = [
        NamespaceChanges(updated={"cni-b": link(POD_B)}, failed=(("cni-a", "PermissionError: EPERM"),)),
        NamespaceChanges(updated={"cni-a": link(), "cni-b": link(POD_B)}),
    ]
    node = agent(ec2, script)
    node.resync()

    assert node.resync()

    assert ec2.calls == [("unassign", (str(POD_A),))]
