"""The subnet plan: how a Multus subnet splits between workers, pods and AWS. Pure: no AWS calls, no I/O.

Operators agree on the split before they deploy, and check a live subnet against it. In **static** mode the
worker range is the bottom of the subnet up to ``WORKER_IP_UPPER_BOUNDS`` and pods get the rest; in
**cidr-reservation** mode pods get the explicit subnet CIDR reservations and EC2 gives workers addresses
outside every reservation. The plan lists both ranges, the AWS-reserved addresses, the capacity of each, the
conflicts a live subnet shows, and the whereabouts IPAM block that keeps pods inside their range. A
dual-stack subnet is planned per address family (:func:`plan_networks`).

The whereabouts block follows whereabouts' README ("Core Parameters", "Example DualStack config") and code
(``pkg/config/config.go``, ``pkg/allocate/allocate.go``, the ``IPRanges`` loop of ``pkg/storage/kubernetes``):

- whereabouts gives a pod an address of ``range`` with ``range``'s prefix length, so ``range`` is the whole
  subnet (pods need the subnet's mask); ``range_start``/``range_end`` bound what it hands out and ``exclude``
  (CIDRs) takes out what lies between them that pods must never get: the gaps between pod ranges, AWS-reserved
  addresses, addresses other ENIs hold, and any the operator adds (a floating IP).
- ``ipRanges`` is a list of such ranges and whereabouts allocates one address **from each entry** (a top-level
  ``range`` becomes its first entry): it exists for dual stack. So all the pod ranges of one address family make
  ONE range, and ``ipRanges`` only carries one entry per family when the subnet has pods of both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    collapse_addresses,
    ip_network,
    summarize_address_range,
)
from typing import Any

from multus_ipam.addressing import AWS_RESERVED_AT_START, IPAddress, IPNetwork, aws_reserved
from multus_ipam.ports import Eni, Reservation
from multus_ipam.settings import OWNER_TAG


class PlanMode(StrEnum):
    STATIC = "static"
    CIDR_RESERVATION = "cidr-reservation"


class ConflictKind(StrEnum):
    WORKER_IN_POD_RANGE = "worker-in-pod-range"
    """A worker ENI's primary address is inside the pod range: a pod would collide with it."""
    ADDRESS_IN_USE_IN_POD_RANGE = "address-in-use-in-pod-range"
    """Another ENI (not ours) holds an address or prefix inside the pod range."""
    POD_RANGES_OVERLAP = "pod-ranges-overlap"
    RESERVATION_OVERLAPS_POD_RANGE = "reservation-overlaps-pod-range"
    """A reservation other than the pod range's own (e.g. a prefix reservation) overlaps it."""
    MISSING_RESERVATION = "missing-reservation"
    """cidr-reservation: the pod range is not an explicit reservation of the live subnet."""
    NO_WORKER_CAPACITY = "no-worker-capacity"
    NO_POD_CAPACITY = "no-pod-capacity"
    """Nothing is left for pods: no whereabouts block can be given."""


@dataclass(frozen=True, slots=True)
class Conflict:
    kind: ConflictKind
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.detail}"


class PlanError(ValueError):
    """The inputs do not describe a plan (e.g. a pod range outside the subnet)."""


@dataclass(frozen=True, slots=True)
class AddressRange:
    """An inclusive range of addresses."""

    first: IPAddress
    last: IPAddress

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, IPv4Address | IPv6Address) or address.version != self.first.version:
            return False
        return int(self.first) <= int(address) <= int(self.last)

    def overlaps(self, network: IPNetwork) -> bool:
        return int(network.network_address) <= int(self.last) and int(network.broadcast_address) >= int(self.first)

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first} - {self.last}"


@dataclass(frozen=True, slots=True)
class SubnetPlan:
    network: IPNetwork
    mode: PlanMode
    aws_reserved: tuple[IPAddress, ...]
    worker_ranges: tuple[AddressRange, ...]
    worker_capacity: int
    """Addresses a worker can get: the worker ranges minus reservations inside them."""
    pod_ranges: tuple[AddressRange, ...]
    pod_capacity: int
    """Addresses whereabouts can hand out: the pod ranges minus ``exclude``."""
    exclude: tuple[IPNetwork, ...]
    conflicts: tuple[Conflict, ...] = ()
    worker_bound: IPAddress | None = None
    workers_in_use: int | None = None
    """Addresses in use in the worker ranges (live subnet only)."""
    subnet_id: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def allocatable(self) -> tuple[AddressRange, ...]:
        """What whereabouts may hand out: the pod ranges minus ``exclude``."""
        spans = _subtract([(int(r.first), int(r.last)) for r in self.pod_ranges], [_span(n) for n in self.exclude])
        return _ranges_of(self.network.version, spans)

    def whereabouts_range(self) -> dict[str, Any] | None:
        """This family's one whereabouts range (None: nothing is left for pods). ``range_start`` and
        ``range_end`` are the first and last address pods may get; ``exclude`` is everything between them they
        may not (gaps between pod ranges, reserved or held addresses), as CIDRs."""
        free = self.allocatable
        if not free:
            return None
        first, last = free[0].first, free[-1].last
        holes = _subtract([(int(first), int(last))], [(int(r.first), int(r.last)) for r in free])
        return {
            "range": str(self.network),
            "range_start": str(first),
            "range_end": str(last),
            "exclude": [str(n) for lo, hi in holes for n in _cidrs(self.network.version, lo, hi)],
        }

    def whereabouts(self) -> dict[str, Any] | None:
        """The ``ipam`` object when pods get addresses of this one family (None: nothing is left for pods)."""
        return Plan((self,)).whereabouts()


@dataclass(frozen=True, slots=True)
class Plan:
    """A subnet's plan: one :class:`SubnetPlan` per address family that has pods, IPv4 first."""

    families: tuple[SubnetPlan, ...]
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        versions = [family.network.version for family in self.families]
        if not versions or versions != sorted(set(versions)):
            raise ValueError(f"a plan has one family per IP version, IPv4 first (got IP versions {versions})")

    @property
    def conflicts(self) -> tuple[Conflict, ...]:
        return tuple(conflict for family in self.families for conflict in family.conflicts)

    def whereabouts(self) -> dict[str, Any] | None:
        """The ``ipam`` object for the NetworkAttachmentDefinition: one range per address family, in
        ``ipRanges`` only when there are two (whereabouts gives a pod one address from each entry). None when a
        family has nothing left for pods: a block without it would quietly drop that family."""
        entries = []
        for family in self.families:
            entry = family.whereabouts_range()
            if entry is None:
                return None
            entries.append(entry)
        if len(entries) == 1:
            return {"type": "whereabouts", **entries[0]}
        return {"type": "whereabouts", "ipRanges": entries}


def _version_address(version: int, value: int) -> IPAddress:
    return IPv4Address(value) if version == 4 else IPv6Address(value)


def _cidrs(version: int, lo: int, hi: int) -> list[IPNetwork]:
    """The inclusive integer range as the fewest CIDR blocks."""
    if version == 4:
        return list(summarize_address_range(IPv4Address(lo), IPv4Address(hi)))
    return list(summarize_address_range(IPv6Address(lo), IPv6Address(hi)))


def _collapse(networks: Iterable[IPNetwork]) -> list[IPNetwork]:
    """Networks merged where they overlap or touch (per IP version, as ``collapse_addresses`` needs)."""
    items = list(networks)
    v4 = collapse_addresses(n for n in items if isinstance(n, IPv4Network))
    v6 = collapse_addresses(n for n in items if isinstance(n, IPv6Network))
    return [*v4, *v6]


def _subtract(ranges: Iterable[tuple[int, int]], holes: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive integer ranges minus the holes."""
    result = sorted(ranges)
    for lo_hole, hi_hole in sorted(holes):
        remaining: list[tuple[int, int]] = []
        for lo, hi in result:
            if hi < lo_hole or lo > hi_hole:
                remaining.append((lo, hi))
                continue
            if lo < lo_hole:
                remaining.append((lo, lo_hole - 1))
            if hi > hi_hole:
                remaining.append((hi_hole + 1, hi))
        result = remaining
    return result


def _size(ranges: Iterable[tuple[int, int]]) -> int:
    return sum(hi - lo + 1 for lo, hi in ranges)


def _span(network: IPNetwork) -> tuple[int, int]:
    return int(network.network_address), int(network.broadcast_address)


def _inside(inner: IPNetwork, outer: IPNetwork) -> bool:
    first, last = _span(inner)
    lo, hi = _span(outer)
    return inner.version == outer.version and lo <= first and last <= hi


@dataclass(frozen=True, slots=True)
class _Split:
    mode: PlanMode
    workers: list[tuple[int, int]]
    pods: list[tuple[int, int]]
    pod_networks: list[IPNetwork] = field(default_factory=list)
    """cidr-reservation: the pod ranges as networks, as given (or found)."""
    notes: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def _split(
    network: IPNetwork,
    worker_bound: IPAddress | None,
    pod_ranges: Sequence[IPNetwork],
    reservations: Sequence[Reservation] | None,
) -> _Split:
    """Which addresses are the workers' and which the pods', by mode."""
    if worker_bound is not None and pod_ranges:
        raise PlanError(
            f"give a worker bound (static mode) or pod ranges (cidr-reservation mode) for IPv{network.version}, "
            "not both"
        )
    first_usable = int(network.network_address) + AWS_RESERVED_AT_START
    last_usable = int(network.broadcast_address) - 1
    if worker_bound is not None:
        if worker_bound.version != network.version or worker_bound not in network:
            raise PlanError(f"worker bound {worker_bound} is not inside subnet {network}")
        if not first_usable <= int(worker_bound) <= last_usable:
            raise PlanError(f"worker bound {worker_bound} is one of the addresses AWS reserves in {network}")
        bound = int(worker_bound)
        pods = [(bound + 1, last_usable)] if bound < last_usable else []
        return _Split(PlanMode.STATIC, [(first_usable, bound)], pods)
    notes: list[str] = []
    if not pod_ranges and reservations is not None:
        pod_ranges = [r.cidr for r in reservations if r.kind == "explicit" and r.cidr.version == network.version]
        if pod_ranges:
            notes.append("pod ranges taken from the subnet's explicit CIDR reservations")
    if not pod_ranges:
        raise PlanError("give a worker bound (static mode) or pod ranges / explicit reservations (cidr-reservation)")
    for pod_range in pod_ranges:
        if not _inside(pod_range, network):
            raise PlanError(f"pod range {pod_range} is not inside subnet {network}")
    conflicts = []
    merged = _collapse(pod_ranges)
    if _size(_span(n) for n in merged) < _size(_span(n) for n in set(pod_ranges)):
        conflicts.append(Conflict(ConflictKind.POD_RANGES_OVERLAP, f"{', '.join(map(str, pod_ranges))} overlap"))
    pods = [_span(n) for n in merged]
    # EC2 never assigns automatically inside any reservation (explicit or prefix), nor inside the pod ranges.
    holes = pods + [_span(r.cidr) for r in reservations or () if r.cidr.version == network.version]
    workers = _subtract([(first_usable, last_usable)], holes)
    return _Split(PlanMode.CIDR_RESERVATION, workers, pods, list(pod_ranges), notes, conflicts)


def _ranges_of(version: int, spans: Iterable[tuple[int, int]]) -> tuple[AddressRange, ...]:
    return tuple(AddressRange(_version_address(version, lo), _version_address(version, hi)) for lo, hi in spans)


def _holder(address: IPAddress, ranges: Sequence[AddressRange]) -> AddressRange | None:
    return next((r for r in ranges if address in r), None)


def _reserved_inside(reserved: Sequence[IPAddress], pods: Sequence[AddressRange]) -> tuple[list[IPNetwork], list[str]]:
    """AWS-reserved addresses inside a pod range: excluded, and a note (an explicit reservation may well cover
    them, e.g. a pod range at the top of the subnet holds its last address; nothing is wrong)."""
    excluded: list[IPNetwork] = []
    notes: list[str] = []
    for pod_range in pods:
        inside = [address for address in reserved if address in pod_range]
        if inside:
            excluded += [ip_network(address) for address in inside]
            verb = "is" if len(inside) == 1 else "are"
            notes.append(
                f"{', '.join(map(str, inside))} (AWS-reserved) {verb} inside the pod range {pod_range}: "
                "kept out of whereabouts"
            )
    return excluded, notes


#: whereabouts' README ("Core Parameters", Note 2): with a ``range`` of /64 or wider, releases computing offsets in
#: 64 bits address only the first /65 of it.
WHEREABOUTS_IPV6_REACH = 2**63


def _ipv6_reach_notes(network: IPNetwork, pods: Sequence[AddressRange]) -> list[str]:
    """Pod ranges past the reach: only in a subnet wider than a /65, so an IPv6 /64 (never an IPv4 subnet)."""
    limit = int(network.network_address) + WHEREABOUTS_IPV6_REACH - 1
    return [
        f"the pod range {pod_range} reaches above {IPv6Address(limit)}: whereabouts releases that address only "
        f"the first /65 of a range as wide as {network} (its README, Note 2) never hand those addresses out"
        for pod_range in pods
        if int(pod_range.last) > limit
    ]


def _extra_exclusions(
    network: IPNetwork, exclude: Sequence[IPNetwork], pods: Sequence[AddressRange]
) -> tuple[list[IPNetwork], list[str]]:
    """The operator's own exclusions (a floating IP) that fall in the pod range; one outside it is a note, one
    outside the subnet means the inputs describe no plan."""
    excluded: list[IPNetwork] = []
    notes: list[str] = []
    for extra in exclude:
        if not _inside(extra, network):
            raise PlanError(f"exclusion {extra} is not inside subnet {network}")
        if any(r.overlaps(extra) for r in pods):
            excluded.append(extra)
        else:
            notes.append(f"exclusion {extra} is outside the pod range: nothing to exclude")
    return excluded, notes


def _reservation_conflicts(
    split: _Split, reservations: Sequence[Reservation] | None, pods: Sequence[AddressRange]
) -> list[Conflict]:
    conflicts = []
    for reservation in reservations or ():
        if split.mode is PlanMode.CIDR_RESERVATION and reservation.kind == "explicit":
            continue  # explicit reservations are where pods go (or other pod ranges): no collision with workers
        overlapping = [r for r in pods if r.overlaps(reservation.cidr)]
        if overlapping:
            conflicts.append(
                Conflict(
                    ConflictKind.RESERVATION_OVERLAPS_POD_RANGE,
                    f"{reservation.kind} reservation {reservation.cidr} ({reservation.reservation_id or 'no id'}) "
                    f"overlaps the pod range {overlapping[0]}",
                )
            )
    if split.mode is PlanMode.CIDR_RESERVATION and reservations is not None:
        explicit = {r.cidr for r in reservations if r.kind == "explicit"}
        conflicts.extend(
            Conflict(
                ConflictKind.MISSING_RESERVATION,
                f"{pod_range} is not an explicit CIDR reservation of the subnet: EC2 may give its addresses to workers",
            )
            for pod_range in split.pod_networks
            if pod_range not in explicit
        )
    return conflicts


def _eni_conflicts(
    network: IPNetwork, enis: Sequence[Eni], owner: str | None, pods: Sequence[AddressRange]
) -> tuple[list[IPNetwork], list[Conflict]]:
    """Worker addresses and foreign addresses inside the pod range. Our ENIs' secondary addresses are pods."""
    excluded: list[IPNetwork] = []
    conflicts: list[Conflict] = []
    for eni in enis:
        ours = _is_ours(eni.tags, owner)
        addresses: Sequence[IPAddress] = eni.private_ipv4s if network.version == 4 else eni.ipv6s
        for position, address in enumerate(addresses):
            holder = _holder(address, pods)
            if holder is None:
                continue
            if ours and position == 0 and network.version == 4:
                excluded.append(ip_network(address))
                detail = f"{eni.eni_id} ({_instance(eni)}) has worker address {address} inside the pod range {holder}"
                conflicts.append(Conflict(ConflictKind.WORKER_IN_POD_RANGE, detail))
            elif not ours:
                excluded.append(ip_network(address))
                detail = f"{eni.eni_id} ({_instance(eni)}, not ours) holds {address} inside the pod range {holder}"
                conflicts.append(Conflict(ConflictKind.ADDRESS_IN_USE_IN_POD_RANGE, detail))
        prefixes: Sequence[IPNetwork] = eni.ipv4_prefixes if network.version == 4 else eni.ipv6_prefixes
        for prefix in prefixes:
            overlapping = [r for r in pods if r.overlaps(prefix)]
            if overlapping:
                excluded.append(prefix)
                detail = f"{eni.eni_id} ({_instance(eni)}) has prefix {prefix} inside the pod range {overlapping[0]}"
                conflicts.append(Conflict(ConflictKind.ADDRESS_IN_USE_IN_POD_RANGE, detail))
    return excluded, conflicts


def plan_subnet(
    network: IPNetwork,
    *,
    worker_bound: IPAddress | None = None,
    pod_ranges: Sequence[IPNetwork] = (),
    exclude: Sequence[IPNetwork] = (),
    enis: Sequence[Eni] = (),
    reservations: Sequence[Reservation] | None = None,
    owner: str | None = None,
    subnet_id: str | None = None,
) -> SubnetPlan:
    """Plan (or check) one CIDR block of a subnet. Raises :class:`PlanError` for inputs that describe no plan.

    ``worker_bound`` selects static mode; ``pod_ranges`` (or, for a live subnet without them, its explicit
    reservations) select cidr-reservation mode. ``exclude``: more addresses pods must not get (a floating IP).
    ``enis`` and ``reservations`` describe a live subnet (``reservations`` None: not known, e.g. planning
    offline). Our ENIs are those tagged ``multus-ipam:owner`` (with ``owner``'s value when given): their primary
    address is a worker's, their secondary ones are pods'.
    """
    same_version = None if reservations is None else [r for r in reservations if r.cidr.version == network.version]
    split = _split(network, worker_bound, pod_ranges, same_version)
    reserved = tuple(sorted(aws_reserved(network)))
    workers = _ranges_of(network.version, split.workers)
    pods = _ranges_of(network.version, split.pods)

    excluded, reserved_notes = _reserved_inside(reserved, pods)
    extra, extra_notes = _extra_exclusions(network, exclude, pods)
    conflicts = split.conflicts + _reservation_conflicts(split, same_version, pods)
    eni_excluded, eni_conflicts = _eni_conflicts(network, enis, owner, pods)
    conflicts += eni_conflicts
    excluded_all = tuple(_collapse([*excluded, *extra, *eni_excluded]))

    # Workers lose the reservations inside their range (the static picker skips them too); pods lose `exclude`.
    worker_capacity = _size(_subtract(split.workers, [_span(r.cidr) for r in same_version or ()]))
    pod_capacity = _size(_subtract(split.pods, [_span(n) for n in excluded_all]))
    if worker_capacity == 0:
        conflicts.append(Conflict(ConflictKind.NO_WORKER_CAPACITY, f"no address is left for workers in {network}"))
    if pod_capacity == 0:
        conflicts.append(Conflict(ConflictKind.NO_POD_CAPACITY, f"no address is left for pods in {network}"))
    in_use = None
    if enis:
        addresses: set[IPAddress] = {a for eni in enis for a in eni.private_ipv4s} | {
            a for eni in enis for a in eni.ipv6s
        }
        in_use = len([a for a in addresses if _holder(a, workers) is not None])

    return SubnetPlan(
        network=network,
        mode=split.mode,
        aws_reserved=reserved,
        worker_ranges=workers,
        worker_capacity=worker_capacity,
        pod_ranges=pods,
        pod_capacity=pod_capacity,
        exclude=excluded_all,
        conflicts=tuple(conflicts),
        worker_bound=worker_bound,
        workers_in_use=in_use,
        subnet_id=subnet_id,
        notes=(*split.notes, *reserved_notes, *extra_notes, *_ipv6_reach_notes(network, pods)),
    )


def plan_networks(
    networks: Sequence[IPNetwork],
    *,
    worker_bound: IPAddress | None = None,
    pod_ranges: Sequence[IPNetwork] = (),
    exclude: Sequence[IPNetwork] = (),
    enis: Sequence[Eni] = (),
    reservations: Sequence[Reservation] | None = None,
    owner: str | None = None,
    subnet_id: str | None = None,
) -> Plan:
    """Plan (or check) a subnet with one CIDR block per address family (two: dual stack), each with
    :func:`plan_subnet` and the inputs of its family. A family with neither a worker bound, nor pod ranges, nor
    (live) explicit reservations gets no pods: a note, not a plan. Raises :class:`PlanError` when the inputs
    describe no plan (an input of a family the subnet lacks, two blocks of one family, no pods at all)."""
    versions = [n.version for n in networks]
    if len(set(versions)) < len(versions):
        raise PlanError(f"one CIDR block per address family, not {', '.join(map(str, networks))}")
    inputs: list[IPAddress | IPNetwork] = [*([worker_bound] if worker_bound else []), *pod_ranges, *exclude]
    for item in inputs:
        if item.version not in versions:
            raise PlanError(f"{item} is IPv{item.version}, and the subnet has no IPv{item.version} CIDR block")
    families: list[SubnetPlan] = []
    notes: list[str] = []
    for network in sorted(networks, key=lambda n: n.version):
        bound = worker_bound if worker_bound is not None and worker_bound.version == network.version else None
        ranges = [r for r in pod_ranges if r.version == network.version]
        reserved = any(r.kind == "explicit" and r.cidr.version == network.version for r in reservations or ())
        if bound is None and not ranges and not reserved:
            notes.append(f"no IPv{network.version} pod range in {network}: pods get no IPv{network.version} address")
            continue
        families.append(
            plan_subnet(
                network,
                worker_bound=bound,
                pod_ranges=ranges,
                exclude=[e for e in exclude if e.version == network.version],
                enis=enis,
                reservations=reservations,
                owner=owner,
                subnet_id=subnet_id,
            )
        )
    if not families:
        raise PlanError("give a worker bound (static mode) or pod ranges / explicit reservations (cidr-reservation)")
    for extra in exclude:
        if all(extra.version != family.network.version for family in families):
            raise PlanError(f"exclusion {extra}: no IPv{extra.version} pods are planned")
    return Plan(tuple(families), tuple(notes))


def _is_ours(tags: Mapping[str, str], owner: str | None) -> bool:
    value = tags.get(OWNER_TAG)
    return value is not None and (owner is None or value == owner)


def _instance(eni: Eni) -> str:
    return eni.attachment.instance_id if eni.attachment and eni.attachment.instance_id else "not attached"


def render(plan: Plan) -> str:
    """The plan as text for the terminal, ending with the whereabouts block (or why there is none)."""
    lines = []
    for family in plan.families:
        where = f"{family.subnet_id}, " if family.subnet_id else ""
        bound = f", workers up to {family.worker_bound}" if family.worker_bound is not None else ""
        in_use = f" ({family.workers_in_use} in use)" if family.workers_in_use is not None else ""
        lines += [
            f"Subnet {family.network} ({where}mode {family.mode.value}{bound})",
            f"  AWS-reserved  {', '.join(map(str, family.aws_reserved))}  ({len(family.aws_reserved)} addresses)",
            f"  workers       {_ranges(family.worker_ranges)}  ({family.worker_capacity} addresses{in_use})",
            f"  pods          {_ranges(family.pod_ranges)}  ({family.pod_capacity} addresses)",
        ]
        lines += [f"  note: {note}" for note in family.notes]
    lines += [f"Note: {note}" for note in plan.notes]
    if plan.conflicts:
        lines.append(f"Conflicts ({len(plan.conflicts)}):")
        lines += [f"  - {conflict}" for conflict in plan.conflicts]
    else:
        lines.append("Conflicts: none")
    block = plan.whereabouts()
    if block is None:
        empty = ", ".join(str(f.network) for f in plan.families if not f.allocatable)
        lines.append(f"No whereabouts block: no address is left for pods in {empty}.")
    else:
        lines.append('whereabouts IPAM for the NetworkAttachmentDefinition (its "ipam" object):')
        lines.append(json.dumps(block, indent=2))
    return "\n".join(lines) + "\n"


def _ranges(ranges: Sequence[AddressRange]) -> str:
    return ", ".join(map(str, ranges)) if ranges else "none"
