"""Pure decisions of the node agent: desired state (what the pods on this node carry) against actual state (what
this node's Multus ENIs hold) gives the EC2 calls to make, and what to skip and why.

No I/O: functions of netlink's view of the pods, EC2's and IMDS's view of the ENIs, and EC2's view of who holds an
address. The calls themselves are the ones ``planning`` already plans for the init and sidecar modes
(``plan_assignments``: IPv4 with reassignment, IPv6 released by its holder first; ``plan_unassign``).

Ownership rule (see the README, "Node agent"): the agent owns every **secondary** address of this instance's
Multus ENIs (tagged ``node.k8s.amazonaws.com/no_manage=true``, device index > 0) **except floating IPs**. An owned
address that no pod on the node carries (on any of its links) and that the host itself does not carry is
unassigned; an address a pod carries on a link with a Multus ENI's MAC is assigned to that ENI. Primary
addresses, the primary ENI, the VPC CNI's ENIs and other instances' ENIs are never unassigned; an address held by
an instance's primary ENI or by an untagged ENI is never taken (skipped, reported).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Network

from pod_ip_manager.model import AttachedEni, Binding, Eni, HolderEni, IPAddress, PodInterface
from pod_ip_manager.planning import Action, Refusal, locate, plan_assignments, plan_unassign, usable

#: AWS reserves the first four addresses and the last one of every subnet, IPv4 and IPv6 alike.
_RESERVED_AT_START = 4


@dataclass(frozen=True, slots=True)
class MultusEni:
    """One of this instance's Multus ENIs: its identity and subnets (``eni``, from IMDS) and the addresses EC2
    shows on it now."""

    eni: Eni
    subnet_id: str
    primary: frozenset[IPAddress]
    secondary: frozenset[IPAddress]

    @property
    def eni_id(self) -> str:
        return self.eni.eni_id

    @property
    def mac(self) -> str:
        return self.eni.mac


def multus_enis(attached: Iterable[AttachedEni], metadata: Iterable[Eni]) -> tuple[tuple[MultusEni, ...], list[str]]:
    """This instance's Multus ENIs: attached, tagged ``no_manage=true``, device index > 0 (never the primary ENI,
    never the VPC CNI's), joined with IMDS for their subnets. Also returns why a tagged ENI was left out (IMDS does
    not list it yet, right after an attach)."""
    by_id = {eni.eni_id: eni for eni in metadata}
    found: list[MultusEni] = []
    left_out: list[str] = []
    for eni in sorted(attached, key=lambda e: (e.device_index or 0, e.eni_id)):
        if not eni.no_manage or not eni.device_index:
            continue
        shown = by_id.get(eni.eni_id)
        if shown is None:
            left_out.append(f"{eni.eni_id} (tagged, device index {eni.device_index}) is not in instance metadata yet")
            continue
        held = eni.primary | eni.secondary
        identity = Eni(
            mac=eni.mac or shown.mac,
            eni_id=eni.eni_id,
            device_number=eni.device_index,
            subnet_ipv4=shown.subnet_ipv4,
            subnet_ipv6=shown.subnet_ipv6,
            ipv4s=frozenset(a for a in held if isinstance(a, IPv4Address)),
            ipv6s=frozenset(a for a in held if not isinstance(a, IPv4Address)),
            no_manage=True,
        )
        found.append(MultusEni(identity, eni.subnet_id, eni.primary, eni.secondary))
    return tuple(found), left_out


def aws_reserved(address: IPAddress, eni: Eni) -> bool:
    """Whether ``address`` is one of the five addresses AWS reserves in the ENI's subnet that contains it."""
    networks: Sequence[IPv4Network | IPv6Network] = (
        (eni.subnet_ipv4,) if isinstance(address, IPv4Address) and eni.subnet_ipv4 else eni.subnet_ipv6
    )
    for network in networks:
        if address in network:
            offset = int(address) - int(network.network_address)
            return offset < _RESERVED_AT_START or address == network.broadcast_address
    return False


# --- desired state ---------------------------------------------------------------------------------------------


class SkipReason(StrEnum):
    """Why an address a pod carries is not assigned (a label of the ``pim_skipped_addresses`` metric)."""

    OUTSIDE_SUBNET = "outside_subnet"
    AWS_RESERVED = "aws_reserved"
    CONFLICT = "conflict"
    PROTECTED_HOLDER = "protected_holder"


@dataclass(frozen=True, slots=True)
class Carried:
    """An address a pod carries on a link with a Multus ENI's MAC, and the ENI that must hold it."""

    netns: str
    binding: Binding

    @property
    def address(self) -> IPAddress:
        return self.binding.address

    @property
    def eni_id(self) -> str:
        return self.binding.eni_id


@dataclass(frozen=True, slots=True)
class Skipped:
    """An address a pod carries that the agent will not assign, and why."""

    netns: str
    interface: str
    address: IPAddress
    reason: SkipReason
    detail: str

    def __str__(self) -> str:
        return f"{self.address} on {self.netns}/{self.interface}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Desired:
    carried: tuple[Carried, ...]
    """What must be on which ENI (each address once)."""
    skipped: tuple[Skipped, ...]
    present: frozenset[IPAddress]
    """Every usable address the pods (and the host) carry on any link, tentative ones included: never unassigned."""
    waiting: tuple[tuple[str, IPAddress], ...]
    """Tentative addresses on Multus links (IPv6 duplicate address detection not done): assigned once usable."""


def desired_state(
    pods: Mapping[str, Sequence[PodInterface]], enis: Sequence[MultusEni], *, host: Iterable[PodInterface] = ()
) -> Desired:
    """What the pods on this node carry. ``pods``: network namespace name -> its links (all of them). Only links
    whose MAC is a Multus ENI's are assigned from (ipvlan children carry their master's MAC); addresses on every
    link of every pod, and of the host's own links (``host``), count as present so that the agent never takes
    away an address something on the node uses (init/sidecar pods that match by subnet, a host-network VIP)."""
    identities = [eni.eni for eni in enis]
    macs = {eni.mac for eni in enis}
    carried: dict[IPAddress, list[Carried]] = {}
    skipped: list[Skipped] = []
    present: set[IPAddress] = {a for link in host for a in (*link.addresses, *link.tentative) if usable(a)}
    waiting: list[tuple[str, IPAddress]] = []
    for netns in sorted(pods):
        for link in pods[netns]:
            present.update(a for a in (*link.addresses, *link.tentative) if usable(a))
            if link.mac not in macs:
                continue
            waiting.extend((netns, a) for a in link.tentative if usable(a))
            for address in link.addresses:
                if not usable(address):
                    continue
                decision = locate(link, address, identities)
                if isinstance(decision, Refusal):
                    skipped.append(Skipped(netns, link.name, address, SkipReason.OUTSIDE_SUBNET, decision.reason))
                    continue
                eni = next(e for e in identities if e.eni_id == decision.eni_id)
                if aws_reserved(address, eni):
                    detail = f"one of the five addresses AWS reserves in the subnet of {eni.eni_id}"
                    skipped.append(Skipped(netns, link.name, address, SkipReason.AWS_RESERVED, detail))
                    continue
                carried.setdefault(address, []).append(Carried(netns, decision))
    unique: list[Carried] = []
    for address, claims in carried.items():
        targets = sorted({claim.eni_id for claim in claims})
        if len(targets) == 1:
            unique.append(claims[0])
            continue
        detail = f"carried on links of different ENIs ({', '.join(targets)}) by {len(claims)} links"
        skipped.extend(Skipped(c.netns, c.binding.interface, address, SkipReason.CONFLICT, detail) for c in claims)
    return Desired(tuple(unique), tuple(skipped), frozenset(present), tuple(waiting))


# --- the plan --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Release:
    """An owned address to take off one of our ENIs."""

    address: IPAddress
    eni_id: str


@dataclass(frozen=True, slots=True)
class NodePlan:
    assign: tuple[Carried, ...]
    """Carried addresses not on their ENI yet (IPv4 moves from its holder; IPv6 is released by it first)."""
    release: tuple[Release, ...]
    """Owned addresses no pod carries any more."""
    kept_floating: tuple[Release, ...]
    """Floating IPs no pod here carries: left where they were last claimed."""
    skipped: tuple[Skipped, ...]

    def actions(self, holders: Mapping[IPAddress, HolderEni]) -> tuple[Action, ...]:
        """The EC2 calls, releases first (they only touch addresses nobody here wants), then assignments."""
        held = {address: holder.eni_id for address, holder in holders.items()}
        return (
            *plan_unassign((r.address, r.eni_id) for r in self.release),
            *plan_assignments((c.binding for c in self.assign), held),
        )


def plan_node(
    desired: Desired,
    enis: Sequence[MultusEni],
    holders: Mapping[IPAddress, HolderEni],
    *,
    floating: Collection[IPAddress] = (),
    scope: Collection[IPAddress] | None = None,
) -> NodePlan:
    """Desired against actual. ``holders``: who holds each address now, for (at least) every address in scope
    that our ENIs hold and every carried address in scope. ``scope``: only decide about these addresses (an
    event's), or ``None`` for all (a full resync)."""

    def in_scope(address: IPAddress) -> bool:
        return scope is None or address in scope

    ours = {eni.eni_id: eni for eni in enis}
    assign: list[Carried] = []
    skipped = [s for s in desired.skipped if in_scope(s.address)]
    for claim in desired.carried:
        if not in_scope(claim.address):
            continue
        holder = holders.get(claim.address)
        if holder is None or holder.eni_id == claim.eni_id:
            if holder is None:
                assign.append(claim)
            continue
        if holder.eni_id not in ours and (holder.device_index == 0 or not holder.no_manage):
            why = "an instance's primary ENI" if holder.device_index == 0 else "not tagged no_manage=true"
            detail = f"held by {holder.eni_id} ({why}): never taken"
            skipped.append(
                Skipped(claim.netns, claim.binding.interface, claim.address, SkipReason.PROTECTED_HOLDER, detail)
            )
            continue
        assign.append(claim)
    release: list[Release] = []
    kept: list[Release] = []
    for address, holder in sorted(holders.items(), key=lambda item: (item[0].version, item[0])):
        eni = ours.get(holder.eni_id)
        if eni is None or address in eni.primary or address in desired.present or not in_scope(address):
            continue
        (kept if address in floating else release).append(Release(address, holder.eni_id))
    return NodePlan(tuple(assign), tuple(release), tuple(kept), tuple(skipped))


def held_by(enis: Iterable[MultusEni]) -> dict[IPAddress, HolderEni]:
    """``holders`` as our own ENIs show it (every secondary and primary address they hold)."""
    return {
        address: HolderEni(eni.eni_id, eni.eni.device_number, no_manage=True)
        for eni in enis
        for address in (*eni.primary, *eni.secondary)
    }


def not_held(desired: Desired, holders: Mapping[IPAddress, HolderEni]) -> tuple[IPAddress, ...]:
    """Carried addresses that are not on the ENI they belong to, according to ``holders``: who holds them
    elsewhere must be looked up (to take an IPv6 from its holder, and to refuse a protected holder)."""
    return tuple(
        claim.address
        for claim in desired.carried
        if claim.address not in holders or holders[claim.address].eni_id != claim.eni_id
    )
