"""The two address strategies (pure but for one read of the subnet's reservations, given here by a stand-in):
what each asks CreateNetworkInterface for, what each checks before anything is created, and why a launch gets no
address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from multus_ipam.addressing import IPAddress
from multus_ipam.errors import InsufficientAddresses, MissingReservation, SubnetMisconfigured, WorkerRangeExhausted
from multus_ipam.ports import Attachment, Eni, Instance, Reservation, Subnet
from multus_ipam.settings import INSTANCE_TAG, OWNER_TAG, Settings
from multus_ipam.strategies import (
    RESERVATION_CACHE_SECONDS,
    AddressChoice,
    CidrReservation,
    StaticLowestFree,
)

AZ = "us-east-1a"
SUBNET = Subnet("subnet-0aaaaaaaaaaaaaaaa", AZ, "vpc-1", IPv4Network("10.0.4.0/24"), None)
SMALL = Subnet("subnet-0bbbbbbbbbbbbbbbb", AZ, "vpc-1", IPv4Network("10.0.5.0/28"), None)
DUAL = Subnet("subnet-0cccccccccccccccc", AZ, "vpc-1", IPv4Network("10.0.6.0/24"), IPv6Network("2600:1f18:1:6::/64"))
V6_ONLY = Subnet("subnet-0dddddddddddddddd", AZ, "vpc-1", None, IPv6Network("2600:1f18:1:7::/125"))
ME = Instance("i-0000000000000000b", AZ, "pending")


def a(text: str) -> IPv4Address:
    return IPv4Address(text)


class ManualClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class Reservations:
    """The subnets' CIDR reservations, counting the reads."""

    def __init__(self, by_subnet: dict[str, list[Reservation]] | None = None) -> None:
        self.by_subnet = by_subnet or {}
        self.reads: list[str] = []

    def subnet_reservations(self, subnet_id: str) -> list[Reservation]:
        self.reads.append(subnet_id)
        return list(self.by_subnet.get(subnet_id, []))


class View:
    """What a launch has read: the subnets' ENIs and the group's waiting launches (by AZ)."""

    def __init__(self, enis: list[Eni] | None = None, waiting: dict[str, list[str]] | None = None) -> None:
        self._enis = enis or []
        self._waiting = waiting or {}

    def enis(self, subnet: Subnet) -> list[Eni]:
        return [e for e in self._enis if e.subnet_id == subnet.subnet_id]

    def waiting(self, availability_zone: str) -> list[str]:
        return self._waiting.get(availability_zone, [])


def settings(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "group_name": "multus-workers",
        "subnet_ids": (SUBNET.subnet_id, SMALL.subnet_id, DUAL.subnet_id, V6_ONLY.subnet_id),
        "security_groups": {},
        "owner": "stack-a",
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def eni(subnet: Subnet, *addresses: str, tags: dict[str, str] | None = None, prefixes: tuple[str, ...] = ()) -> Eni:
    return Eni(
        eni_id=f"eni-{abs(hash(addresses)) % 10**8:08x}",
        subnet_id=subnet.subnet_id,
        status="in-use",
        private_ipv4s=tuple(IPv4Address(x) for x in addresses if ":" not in x),
        ipv6s=tuple(IPv6Address(x) for x in addresses if ":" in x),
        ipv4_prefixes=tuple(IPv4Network(p) for p in prefixes),
        attachment=Attachment("eni-attach-1", "i-0000000000000000a", 1, 0, True, "attached"),
        tags=tags or {},
    )


def ours(instance_id: str) -> dict[str, str]:
    return {OWNER_TAG: "stack-a", INSTANCE_TAG: instance_id}


def static(
    reservations: Reservations | None = None, clock: ManualClock | None = None, **config: object
) -> StaticLowestFree:
    return StaticLowestFree(settings(**config), reservations or Reservations(), clock or ManualClock())


def explicit(cidr: str) -> Reservation:
    return Reservation("scr-1", IPv4Network(cidr) if ":" not in cidr else IPv6Network(cidr), "explicit")


# --- static: the lowest free address at the launch's rank ------------------------------------------------------


def test_given_an_empty_subnet_when_choosing_then_the_first_address_after_the_reserved_ones() -> None:
    choice = static().choose(SUBNET, ME, View(), frozenset())
    assert choice == AddressChoice(a("10.0.4.4"), None, ipv6_auto=False, reason="free address #0 of 10.0.4.0/24")


def test_given_other_enis_prefixes_and_reservations_when_choosing_then_all_are_skipped() -> None:
    enis = [eni(SUBNET, "10.0.4.4", "10.0.4.5"), eni(SUBNET, "10.0.4.6", prefixes=("10.0.4.8/29",))]
    reservations = Reservations({SUBNET.subnet_id: [explicit("10.0.4.16/28")]})
    choice = static(reservations).choose(SUBNET, ME, View(enis), frozenset())
    assert choice.ipv4 == a("10.0.4.7")
    enis.append(eni(SUBNET, "10.0.4.7"))
    assert static(reservations).choose(SUBNET, ME, View(enis), frozenset()).ipv4 == a("10.0.4.32")


def test_given_an_eni_a_parallel_delivery_made_for_this_launch_when_choosing_then_its_address_is_chosen_again() -> None:
    # The same request again: the client token gives back that same ENI instead of a second one.
    mine = eni(SUBNET, "10.0.4.4", tags=ours(ME.instance_id))
    assert static().choose(SUBNET, ME, View([mine]), frozenset()).ipv4 == a("10.0.4.4")
    another_stacks = eni(SUBNET, "10.0.4.4", tags={OWNER_TAG: "stack-b", INSTANCE_TAG: ME.instance_id})
    assert static().choose(SUBNET, ME, View([another_stacks]), frozenset()).ipv4 == a("10.0.4.5")


def test_given_launches_waiting_ahead_when_choosing_then_the_rank_skips_one_address_each() -> None:
    waiting = {
        AZ: ["i-0000000000000000a", ME.instance_id, "i-0000000000000000c"],
        "us-east-1b": ["i-00000000000000001"],
    }
    choice = static().choose(SUBNET, ME, View(waiting=waiting), frozenset())
    assert choice.ipv4 == a("10.0.4.5")
    assert choice.reason == "free address #1 of 10.0.4.0/24"


def test_given_a_launch_ahead_that_already_has_its_eni_when_ranking_then_it_no_longer_counts() -> None:
    served = eni(SUBNET, "10.0.4.4", tags=ours("i-0000000000000000a"))
    waiting = {AZ: ["i-0000000000000000a", ME.instance_id]}
    assert static().choose(SUBNET, ME, View([served], waiting), frozenset()).ipv4 == a("10.0.4.5")
    other_owner = eni(SUBNET, "10.0.4.4", tags={OWNER_TAG: "stack-b", INSTANCE_TAG: "i-0000000000000000a"})
    assert static().choose(SUBNET, ME, View([other_owner], waiting), frozenset()).ipv4 == a("10.0.4.6")


def test_given_a_worker_bound_when_choosing_then_no_address_above_it_is_given() -> None:
    strategy = static(worker_upper_bounds={SMALL.subnet_id: a("10.0.5.6")})
    enis = [eni(SMALL, "10.0.5.4", "10.0.5.5")]
    assert strategy.choose(SMALL, ME, View(enis), frozenset()).ipv4 == a("10.0.5.6")
    enis.append(eni(SMALL, "10.0.5.6"))
    with pytest.raises(WorkerRangeExhausted) as raised:
        strategy.choose(SMALL, ME, View(enis), frozenset())
    assert str(raised.value) == (
        "no free IPv4 address left for workers in subnet-0bbbbbbbbbbbbbbbb (10.0.5.0/28) at or below 10.0.5.6 "
        "(WORKER_IP_UPPER_BOUNDS); raise the bound or free addresses"
    )


def test_given_a_full_subnet_when_choosing_then_insufficient_addresses_names_it() -> None:
    enis = [eni(SMALL, *(f"10.0.5.{n}" for n in range(4, 15)))]
    with pytest.raises(InsufficientAddresses) as raised:
        static().choose(SMALL, ME, View(enis), frozenset())
    assert str(raised.value) == (
        "no free IPv4 address left for workers in subnet-0bbbbbbbbbbbbbbbb (10.0.5.0/28); "
        "use a bigger subnet or fewer workers"
    )


def test_given_fewer_free_addresses_than_launches_ahead_when_choosing_then_it_says_they_take_them_all() -> None:
    enis = [eni(SMALL, *(f"10.0.5.{n}" for n in range(4, 13)))]  # .13 and .14 free
    waiting = {AZ: ["i-0000000000000000a", "i-0000000000000000a0", ME.instance_id]}
    with pytest.raises(InsufficientAddresses) as raised:
        static().choose(SMALL, ME, View(enis, waiting), frozenset())
    assert str(raised.value) == (
        "2 free IPv4 address(es) for workers in subnet-0bbbbbbbbbbbbbbbb (10.0.5.0/28), all taken by the 2 waiting "
        "launch(es) ahead of this one (it is #3); use a bigger subnet or fewer workers"
    )


def test_given_a_full_ipv6_block_when_choosing_then_the_family_is_named_and_no_bound_is_mentioned() -> None:
    enis = [eni(V6_ONLY, *(f"2600:1f18:1:7::{n}" for n in range(4, 7)))]
    strategy = static(worker_upper_bounds={V6_ONLY.subnet_id: a("10.0.5.6")})
    with pytest.raises(InsufficientAddresses) as raised:
        strategy.choose(V6_ONLY, ME, View(enis), frozenset())
    assert str(raised.value) == (
        "no free IPv6 address left for workers in subnet-0dddddddddddddddd (2600:1f18:1:7::/125); "
        "use a bigger subnet or fewer workers"
    )


def test_given_a_dual_stack_subnet_when_choosing_then_both_families_and_both_reasons() -> None:
    enis = [eni(DUAL, "10.0.6.4", "2600:1f18:1:6::4", "2600:1f18:1:6::5")]
    choice = static().choose(DUAL, ME, View(enis), frozenset())
    assert (choice.ipv4, choice.ipv6, choice.ipv6_auto) == (a("10.0.6.5"), IPv6Address("2600:1f18:1:6::6"), False)
    assert choice.reason == "free address #0 of 10.0.6.0/24; free address #0 of 2600:1f18:1:6::/64"


def test_given_an_ipv6_only_subnet_when_choosing_then_no_ipv4_is_asked_for() -> None:
    choice = static().choose(V6_ONLY, ME, View(), frozenset())
    assert (choice.ipv4, choice.ipv6) == (None, IPv6Address("2600:1f18:1:7::4"))


def test_given_addresses_this_launch_found_taken_when_choosing_again_then_they_are_avoided() -> None:
    avoid: frozenset[IPAddress] = frozenset({a("10.0.4.4"), IPv6Address("2600:1f18:1:6::4")})
    choice = static().choose(DUAL, ME, View(), avoid)
    assert choice.ipv4 == a("10.0.6.4"), "another subnet's address avoided changes nothing here"
    assert static().choose(SUBNET, ME, View(), avoid).ipv4 == a("10.0.4.5")
    assert choice.ipv6 == IPv6Address("2600:1f18:1:6::5")


def test_given_a_refused_address_when_ranked_beyond_the_free_ones_then_it_counts_as_a_launch_ahead() -> None:
    # .12 to .14 free, rank 2: the refused .12 may be the ENI of a launch ahead that no describe shows yet, so
    # this launch takes the second of the two left rather than none.
    enis = [eni(SMALL, *(f"10.0.5.{n}" for n in range(4, 12)))]
    waiting = {AZ: ["i-0000000000000000a", "i-0000000000000000a0", ME.instance_id]}
    refused: frozenset[IPAddress] = frozenset({a("10.0.5.12")})
    assert static().choose(SMALL, ME, View(enis, waiting), refused).ipv4 == a("10.0.5.14")


def test_given_an_address_refused_that_no_describe_shows_when_choosing_later_then_it_is_avoided_and_said() -> None:
    clock = ManualClock()
    strategy = static(clock=clock)
    first = strategy.choose(SUBNET, ME, View(), frozenset())
    strategy.refused(SUBNET, first)  # an ENI of another account holds it (a RAM-shared subnet)
    clock.sleep(60)
    later = Instance("i-0000000000000000d", AZ, "pending")
    choice = strategy.choose(SUBNET, later, View(), frozenset())
    assert choice.ipv4 == a("10.0.4.5")
    assert choice.reason == (
        "free address #0 of 10.0.4.0/24; 1 address(es) refused as in use earlier and shown by no describe avoided"
    )
    assert strategy.choose(SMALL, later, View(), frozenset()).ipv4 == a("10.0.5.4"), "only in its own subnet"


def test_given_the_subnets_reservations_when_choosing_twice_within_a_minute_then_they_are_read_once() -> None:
    clock = ManualClock()
    reservations = Reservations({SUBNET.subnet_id: [explicit("10.0.4.0/28")]})
    strategy = static(reservations, clock)
    strategy.choose(SUBNET, ME, View(), frozenset())
    clock.sleep(RESERVATION_CACHE_SECONDS - 1)
    reservations.by_subnet[SUBNET.subnet_id] = [explicit("10.0.4.0/27")]
    assert strategy.choose(SUBNET, ME, View(), frozenset()).ipv4 == a("10.0.4.16")
    assert reservations.reads == [SUBNET.subnet_id]
    clock.sleep(1)
    assert strategy.choose(SUBNET, ME, View(), frozenset()).ipv4 == a("10.0.4.32")
    assert reservations.reads == [SUBNET.subnet_id, SUBNET.subnet_id]


@pytest.mark.parametrize(
    ("subnet", "bound", "message"),
    [
        (
            SMALL,
            "10.0.4.63",
            "WORKER_IP_UPPER_BOUNDS: 10.0.4.63 is not inside subnet-0bbbbbbbbbbbbbbbb (10.0.5.0/28)",
        ),
        (
            V6_ONLY,
            "10.0.4.63",
            "WORKER_IP_UPPER_BOUNDS: 10.0.4.63 is not inside subnet-0dddddddddddddddd (IPv6-only)",
        ),
    ],
    ids=["other-subnet", "ipv6-only"],
)
def test_given_a_worker_bound_outside_the_subnet_when_verifying_then_it_is_misconfigured(
    subnet: Subnet, bound: str, message: str
) -> None:
    strategy = static(worker_upper_bounds={subnet.subnet_id: a(bound)})
    with pytest.raises(SubnetMisconfigured) as raised:
        strategy.verify(subnet)
    assert str(raised.value) == message


def test_given_a_worker_bound_inside_the_subnet_or_none_when_verifying_then_nothing_is_wrong() -> None:
    static(worker_upper_bounds={SMALL.subnet_id: a("10.0.5.6")}).verify(SMALL)
    static().verify(V6_ONLY)


# --- cidr-reservation: EC2 assigns outside the explicit reservations ------------------------------------------


def cidr(by_subnet: dict[str, list[Reservation]], **config: object) -> CidrReservation:
    return CidrReservation(settings(**config), Reservations(by_subnet), ManualClock())


@pytest.mark.parametrize(
    ("subnet", "auto"),
    [(SUBNET, False), (DUAL, True), (V6_ONLY, True)],
    ids=["ipv4", "dual-stack", "ipv6-only"],
)
def test_given_any_subnet_when_choosing_then_ec2_assigns_and_ipv6_is_asked_for_where_there_is_a_block(
    subnet: Subnet, *, auto: bool
) -> None:
    choice = cidr({}).choose(subnet, ME, View(), frozenset())
    assert choice == AddressChoice(
        None, None, ipv6_auto=auto, reason="assigned by EC2 outside the subnet's explicit CIDR reservations"
    )


def test_given_the_configured_reservations_exist_when_verifying_then_nothing_is_wrong() -> None:
    strategy = cidr(
        {DUAL.subnet_id: [explicit("10.0.6.192/26"), explicit("2600:1f18:1:6:8000::/65")]},
        pod_reservations={DUAL.subnet_id: (IPv4Network("10.0.6.192/26"),)},
    )
    strategy.verify(DUAL)


def test_given_a_configured_reservation_missing_when_verifying_then_it_is_named() -> None:
    prefix = Reservation("scr-2", IPv4Network("10.0.4.128/26"), "prefix")
    strategy = cidr(
        {SUBNET.subnet_id: [explicit("10.0.4.192/26"), prefix]},
        pod_reservations={SUBNET.subnet_id: (IPv4Network("10.0.4.192/26"), IPv4Network("10.0.4.128/26"))},
    )
    with pytest.raises(MissingReservation) as raised:
        strategy.verify(SUBNET)
    assert str(raised.value) == (
        "subnet-0aaaaaaaaaaaaaaaa lacks the explicit CIDR reservation(s) 10.0.4.128/26 (POD_CIDR_RESERVATIONS); "
        "without them EC2 may give a worker a pod address"
    )


@pytest.mark.parametrize(
    ("subnet", "reservations", "family"),
    [
        (SUBNET, [], "IPv4"),
        (SUBNET, [Reservation("scr-2", IPv4Network("10.0.4.128/26"), "prefix")], "IPv4"),
        (DUAL, [explicit("10.0.6.192/26")], "IPv6"),
        (V6_ONLY, [explicit("10.0.6.192/26")], "IPv6"),
    ],
    ids=["none", "prefix-only", "dual-stack-without-ipv6", "ipv6-only"],
)
def test_given_no_explicit_reservation_of_a_family_ec2_assigns_when_verifying_then_it_is_missing(
    subnet: Subnet, reservations: list[Reservation], family: str
) -> None:
    with pytest.raises(MissingReservation) as raised:
        cidr({subnet.subnet_id: reservations}).verify(subnet)
    assert str(raised.value) == (
        f"{subnet.subnet_id} has no explicit {family} CIDR reservation for the pod range; "
        f"without one EC2 may give a worker a pod {family} address"
    )


def test_given_an_address_ec2_chose_is_refused_then_nothing_is_remembered_for_the_next_choice() -> None:
    strategy = cidr({})
    choice = strategy.choose(SUBNET, ME, View(), frozenset())
    strategy.refused(SUBNET, choice)
    assert strategy.choose(SUBNET, ME, View(), frozenset()) == choice


def test_given_an_ipv6_reservation_in_a_dual_stack_subnet_when_choosing_then_the_ipv6_address_is_above_it() -> None:
    reservations = Reservations({DUAL.subnet_id: [explicit("2600:1f18:1:6::/120")]})
    assert static(reservations).choose(DUAL, ME, View(), frozenset()).ipv6 == IPv6Address("2600:1f18:1:6::100")


def test_given_a_refused_ipv6_address_when_ranked_beyond_the_free_ones_then_it_counts_as_a_launch_ahead() -> None:
    # ::4 held, ::5 refused (not shown yet), ::6 free: rank 1 takes ::6 rather than none.
    enis = [eni(V6_ONLY, "2600:1f18:1:7::4")]
    waiting = {AZ: ["i-0000000000000000a", ME.instance_id]}
    refused: frozenset[IPAddress] = frozenset({IPv6Address("2600:1f18:1:7::5")})
    assert static().choose(V6_ONLY, ME, View(enis, waiting), refused).ipv6 == IPv6Address("2600:1f18:1:7::6")


def test_given_two_configured_reservations_missing_when_verifying_then_both_are_named() -> None:
    strategy = cidr(
        {SUBNET.subnet_id: []},
        pod_reservations={SUBNET.subnet_id: (IPv4Network("10.0.4.192/26"), IPv4Network("10.0.4.128/26"))},
    )
    with pytest.raises(MissingReservation, match=r"reservation\(s\) 10\.0\.4\.192/26, 10\.0\.4\.128/26 \("):
        strategy.verify(SUBNET)
