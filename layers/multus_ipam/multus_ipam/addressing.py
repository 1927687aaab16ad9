"""Pure subnet arithmetic and worker address choice. No AWS calls, no I/O.

The static strategy gives each worker the lowest free address of a Multus subnet, where *not free* means:
the five addresses AWS reserves in every subnet, every private address of every ENI in the subnet, every
IPv4 prefix delegated to an ENI, and every subnet CIDR reservation (explicit or prefix: those ranges belong
to pods). An optional upper bound keeps workers below the pod range even without reservations.

Concurrent launches ("scale out by 50") would all pick the same lowest address and collide N times each.
Instead each launch takes the free address at its *rank*: its position among the instances that are still
waiting for an ENI in this subnet, ordered by instance id. Every launch can see the same waiting set, and as
soon as one launch creates its ENI it drops out of the waiting set and its address drops out of the free
set, so the ranks of the others and the free list shift together and the launches keep taking distinct
addresses, which together are exactly the lowest free ones (see docs/how-it-works.md, "Bursts"). A launch whose
rank is at or beyond the number of free addresses has none left to take: the launches ahead of it take them all.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TypeAlias

IPAddress: TypeAlias = IPv4Address | IPv6Address  # 3.11 has no `type` statement
IPNetwork: TypeAlias = IPv4Network | IPv6Network

AWS_RESERVED_AT_START = 4
"""AWS reserves the network address, the VPC router, the DNS server and one for future use."""


def aws_reserved(network: IPNetwork) -> frozenset[IPAddress]:
    """The five addresses AWS reserves in every subnet: the first four and the last."""
    first = int(network.network_address)
    last = int(network.broadcast_address)
    values = [first + i for i in range(AWS_RESERVED_AT_START)] + [last]
    return frozenset(IPv4Address(v) if network.version == 4 else IPv6Address(v) for v in values)


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping, non-adjacent inclusive integer ranges."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


@dataclass(frozen=True, slots=True)
class AddressSpace:
    """A subnet's address space with what is not free in it.

    ``used`` are single addresses held by ENIs; ``blocked`` are ranges nobody may take automatically
    (ENI prefixes and subnet CIDR reservations). ``upper_bound`` is the highest address a worker may get.
    """

    network: IPNetwork
    used: frozenset[IPAddress] = frozenset()
    blocked: tuple[IPNetwork, ...] = ()
    upper_bound: IPAddress | None = None

    def __post_init__(self) -> None:
        if self.upper_bound is not None and self.upper_bound not in self.network:
            raise ValueError(f"upper bound {self.upper_bound} is outside subnet {self.network}")
        for block in self.blocked:
            if block.version != self.network.version:
                raise ValueError(f"range {block} is not of the same IP version as subnet {self.network}")

    @property
    def first_usable(self) -> int:
        return int(self.network.network_address) + AWS_RESERVED_AT_START

    @property
    def last_usable(self) -> int:
        last = int(self.network.broadcast_address) - 1
        if self.upper_bound is not None:
            last = min(last, int(self.upper_bound))
        return last

    def _address(self, value: int) -> IPAddress:
        return IPv4Address(value) if self.network.version == 4 else IPv6Address(value)

    def _blocked_ranges(self) -> list[tuple[int, int]]:
        lo_net, hi_net = int(self.network.network_address), int(self.network.broadcast_address)
        ranges = []
        for block in self.blocked:
            lo, hi = int(block.network_address), int(block.broadcast_address)
            if hi >= lo_net and lo <= hi_net:
                ranges.append((max(lo, lo_net), min(hi, hi_net)))
        return _merge(ranges)

    def free(self) -> Iterator[IPAddress]:
        """Free addresses in ascending order, lazily (an IPv6 /64 is never enumerated in full).

        Each step either yields or skips past a used address or a whole blocked range, so the cost is
        proportional to the addresses yielded plus the used and blocked entries passed over.
        """
        ranges = self._blocked_ranges()
        starts = [lo for lo, _ in ranges]
        used = sorted(int(a) for a in self.used if a.version == self.network.version)
        candidate, last = self.first_usable, self.last_usable
        used_at = bisect.bisect_left(used, candidate)
        while candidate <= last:
            at = bisect.bisect_right(starts, candidate) - 1
            if at >= 0 and ranges[at][1] >= candidate:
                candidate = ranges[at][1] + 1
                continue
            while used_at < len(used) and used[used_at] < candidate:
                used_at += 1
            if used_at < len(used) and used[used_at] == candidate:
                candidate += 1
                continue
            yield self._address(candidate)
            candidate += 1

    def lowest_free(self) -> IPAddress | None:
        return next(self.free(), None)

    def nth_free(self, rank: int) -> IPAddress | None:
        """The free address at ``rank`` (0 = lowest), or None when fewer than ``rank + 1`` are free."""
        if rank < 0:
            raise ValueError("rank must be >= 0")
        for index, address in enumerate(self.free()):
            if index == rank:
                return address
        return None

    def count_free(self, at_most: int) -> int:
        """How many addresses are free, counting no further than ``at_most`` (an IPv6 /64 is never counted)."""
        count = 0
        for _ in self.free():
            if count >= at_most:
                break
            count += 1
        return count


def launch_rank(instance_id: str, waiting: Iterable[str]) -> int:
    """Position of ``instance_id`` among the instances still waiting for an ENI in a subnet.

    Ordering by instance id gives every concurrent launch the same order without coordination. The
    instance itself is counted even if the caller's view of the group does not show it yet.
    """
    return sorted({*waiting, instance_id}).index(instance_id)


@dataclass(frozen=True, slots=True)
class WorkerAddress:
    """The address chosen for a worker ENI and why: ``rank`` is the launch's place in the burst."""

    address: IPAddress
    rank: int
    reason: str


def choose_worker_address(space: AddressSpace, rank: int, uncertain: int = 0) -> WorkerAddress | None:
    """The address a launch of the given rank should try: the rank-th free one.

    ``uncertain``: addresses this launch found taken that no describe shows yet. Each may be the address of a
    launch counted ahead of it whose ENI is not shown yet (eventual consistency): then that launch is counted
    in the rank and its address is missing from the free list, so up to ``uncertain`` of the rank may already
    be served. Beyond the free addresses, the launch tries the free address at ``rank - uncertain`` instead.

    None when fewer addresses are free than ``rank - uncertain + 1``: the launches ahead of this one take every
    free address, so this one has none to claim. Falling back to a lower address would only collide with one of
    them (and, in a burst larger than the subnet, pile every overflow launch onto the lowest address until its
    attempts run out).
    """
    if rank < 0 or uncertain < 0:
        raise ValueError("rank and uncertain must be >= 0")
    at_rank = space.nth_free(rank)
    if at_rank is not None:
        return WorkerAddress(at_rank, rank, f"free address #{rank} of {space.network}")
    if uncertain == 0:
        return None
    hopeful = max(rank - uncertain, 0)
    at_hopeful = space.nth_free(hopeful)
    if at_hopeful is None:
        return None
    return WorkerAddress(
        at_hopeful,
        hopeful,
        f"free address #{hopeful} of {space.network} (rank {rank}, less {uncertain} taken address(es) not shown yet)",
    )


def choose_device_index(desired: int, occupied: Iterable[int]) -> int:
    """The lowest device index at or above ``desired`` that no interface occupies."""
    taken = set(occupied)
    index = desired
    while index in taken:
        index += 1
    return index


def default_device_indexes(subnet_ids_in_az: Sequence[str], first: int = 1) -> dict[str, int]:
    """Default device indexes: the first Multus subnet of the AZ at ``first``, the next one after it."""
    return {subnet_id: first + position for position, subnet_id in enumerate(subnet_ids_in_az)}
