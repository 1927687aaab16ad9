"""Subnet arithmetic and worker address choice (pure)."""

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multus_ipam.addressing import (
    AddressSpace,
    aws_reserved,
    choose_device_index,
    choose_worker_address,
    default_device_indexes,
    launch_rank,
)

NET = IPv4Network("10.0.1.0/24")


def a(text: str) -> IPv4Address:
    return IPv4Address(text)


def test_given_a_subnet_when_listing_reserved_then_first_four_and_last_are_reserved() -> None:
    assert aws_reserved(NET) == {a("10.0.1.0"), a("10.0.1.1"), a("10.0.1.2"), a("10.0.1.3"), a("10.0.1.255")}


def test_given_an_ipv6_subnet_when_listing_reserved_then_first_four_and_last_are_reserved() -> None:
    net = IPv6Network("2001:db8:1:2::/64")
    reserved = aws_reserved(net)
    assert IPv6Address("2001:db8:1:2::3") in reserved
    assert IPv6Address("2001:db8:1:2:ffff:ffff:ffff:ffff") in reserved
    assert len(reserved) == 5


def test_given_an_empty_subnet_when_choosing_then_the_first_address_after_the_reserved_ones() -> None:
    assert AddressSpace(NET).lowest_free() == a("10.0.1.4")


def test_given_used_addresses_when_choosing_then_the_lowest_unused_one() -> None:
    space = AddressSpace(NET, used=frozenset({a("10.0.1.4"), a("10.0.1.5"), a("10.0.1.7")}))
    assert space.lowest_free() == a("10.0.1.6")


def test_given_a_reservation_at_the_bottom_when_choosing_then_the_address_after_it() -> None:
    space = AddressSpace(NET, blocked=(IPv4Network("10.0.1.0/28"),))
    assert space.lowest_free() == a("10.0.1.16")


def test_given_an_eni_prefix_when_choosing_then_the_prefix_is_skipped() -> None:
    space = AddressSpace(NET, used=frozenset({a("10.0.1.4")}), blocked=(IPv4Network("10.0.1.0/29"),))
    assert space.lowest_free() == a("10.0.1.8")


def test_given_an_upper_bound_when_the_range_below_is_full_then_nothing_is_free() -> None:
    used = frozenset(a(f"10.0.1.{i}") for i in range(4, 64))
    space = AddressSpace(NET, used=used, upper_bound=a("10.0.1.63"))
    assert space.lowest_free() is None
    assert choose_worker_address(space, rank=0) is None


def test_given_an_upper_bound_outside_the_subnet_then_it_is_rejected() -> None:
    with pytest.raises(ValueError, match="outside subnet"):
        AddressSpace(NET, upper_bound=a("10.0.2.1"))


def test_given_a_full_subnet_when_choosing_then_none() -> None:
    net = IPv4Network("10.0.1.0/28")
    used = frozenset(a(f"10.0.1.{i}") for i in range(4, 15))
    assert AddressSpace(net, used=used).lowest_free() is None


def test_given_ranks_when_choosing_then_each_rank_takes_a_distinct_free_address() -> None:
    space = AddressSpace(NET, used=frozenset({a("10.0.1.5")}))
    picks = [choose_worker_address(space, rank) for rank in range(3)]
    assert [p.address for p in picks if p] == [a("10.0.1.4"), a("10.0.1.6"), a("10.0.1.7")]


def test_given_a_rank_beyond_the_free_addresses_when_choosing_then_there_is_none_for_this_launch() -> None:
    net = IPv4Network("10.0.1.0/28")
    used = frozenset(a(f"10.0.1.{i}") for i in range(4, 13))  # .13 and .14 free
    space = AddressSpace(net, used=used)
    assert choose_worker_address(space, rank=2) is None
    assert choose_worker_address(space, rank=5) is None


def test_given_the_last_rank_that_fits_when_choosing_then_it_gets_the_last_free_address() -> None:
    net = IPv4Network("10.0.1.0/28")
    used = frozenset(a(f"10.0.1.{i}") for i in range(4, 13))
    pick = choose_worker_address(AddressSpace(net, used=used), rank=1)
    assert pick is not None
    assert pick.address == a("10.0.1.14")
    assert pick.rank == 1


def test_given_free_addresses_when_counting_up_to_a_limit_then_the_count_stops_there() -> None:
    space = AddressSpace(IPv4Network("10.0.1.0/28"))  # 11 free
    assert space.count_free(at_most=3) == 3
    assert space.count_free(at_most=50) == 11
    assert AddressSpace(IPv6Network("2001:db8::/64")).count_free(at_most=1000) == 1000


def test_given_two_reservations_one_address_apart_when_choosing_then_the_address_between_them_is_free() -> None:
    space = AddressSpace(NET, blocked=(IPv4Network("10.0.1.0/29"), IPv4Network("10.0.1.9/32")))
    assert list(space.free())[:2] == [a("10.0.1.8"), a("10.0.1.10")]


def test_given_reservations_outside_the_subnet_when_choosing_then_they_block_nothing() -> None:
    space = AddressSpace(NET, blocked=(IPv4Network("10.0.0.0/24"), IPv4Network("10.0.2.0/24")))
    assert space.count_free(at_most=300) == 251


def test_given_a_reservation_of_another_ip_version_then_the_space_is_rejected_naming_it() -> None:
    with pytest.raises(ValueError, match=r"range 2001:db8::/64 is not of the same IP version as subnet 10\.0\.1\.0/24"):
        AddressSpace(NET, blocked=(IPv6Network("2001:db8::/64"),))


def test_given_a_negative_rank_then_it_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^rank must be >= 0$"):
        AddressSpace(NET).nth_free(-1)
    with pytest.raises(ValueError, match=r"^rank and uncertain must be >= 0$"):
        choose_worker_address(AddressSpace(NET), rank=-1)
    with pytest.raises(ValueError, match=r"^rank and uncertain must be >= 0$"):
        choose_worker_address(AddressSpace(NET), rank=0, uncertain=-1)


def test_given_a_rank_when_choosing_then_the_reason_names_the_rank_and_the_subnet() -> None:
    pick = choose_worker_address(AddressSpace(NET), rank=2)
    assert pick is not None
    assert pick.reason == "free address #2 of 10.0.1.0/24"


def test_given_more_uncertain_addresses_than_the_rank_when_beyond_the_free_ones_then_the_lowest_free_one() -> None:
    net = IPv4Network("10.0.1.0/28")
    used = frozenset(a(f"10.0.1.{i}") for i in range(4, 13))  # .13 and .14 free
    pick = choose_worker_address(AddressSpace(net, used=used), rank=2, uncertain=5)
    assert pick is not None
    assert (pick.address, pick.rank) == (a("10.0.1.13"), 0)
    assert pick.reason == "free address #0 of 10.0.1.0/28 (rank 2, less 5 taken address(es) not shown yet)"


def test_given_an_ipv6_subnet_when_choosing_then_the_lowest_is_found_without_enumerating_it() -> None:
    net = IPv6Network("2001:db8::/64")
    reservation = IPv6Network("2001:db8::/80")
    assert AddressSpace(net, blocked=(reservation,)).lowest_free() == IPv6Address("2001:db8::1:0:0:0")


def test_given_waiting_instances_when_ranking_then_the_order_is_by_instance_id() -> None:
    waiting = ["i-0c", "i-0a", "i-0b"]
    assert launch_rank("i-0b", waiting) == 1
    assert launch_rank("i-0d", waiting) == 3


def test_given_an_occupied_device_index_when_choosing_then_the_next_free_one() -> None:
    assert choose_device_index(1, occupied=[0, 1, 2]) == 3
    assert choose_device_index(2, occupied=[0, 1]) == 2


def test_given_the_desired_index_taken_and_the_next_free_when_choosing_then_no_index_is_skipped() -> None:
    assert choose_device_index(1, occupied=[0, 1, 3]) == 2


def test_given_subnets_of_an_az_when_defaulting_device_indexes_then_they_start_at_one() -> None:
    assert default_device_indexes(["subnet-b", "subnet-a"]) == {"subnet-b": 1, "subnet-a": 2}


# --- properties -------------------------------------------------------------------------------------

prefix_lengths = st.integers(min_value=24, max_value=28)


@st.composite
def spaces(draw: st.DrawFn) -> AddressSpace:
    length = draw(prefix_lengths)
    net = IPv4Network(f"10.20.0.0/{length}")
    hosts = list(range(int(net.network_address), int(net.broadcast_address) + 1))
    used = draw(st.frozensets(st.sampled_from(hosts), max_size=len(hosts)))
    blocks = []
    for _ in range(draw(st.integers(0, 3))):
        block_len = draw(st.integers(min_value=length + 1, max_value=32))
        start = draw(st.sampled_from(hosts))
        blocks.append(ip_network(f"{IPv4Address(start)}/{block_len}", strict=False))
    if draw(st.booleans()):
        # A single free address between two blocked ranges: random blocks almost never leave a gap of one.
        gap = draw(st.sampled_from(hosts[1:-1]))
        aligned = (gap & -gap).bit_length() - 1  # the range below may be as large as the gap's alignment
        size = draw(st.integers(min_value=0, max_value=min(aligned, 32 - length - 1)))
        blocks = [b for b in blocks if IPv4Address(gap) not in b]  # the gap must stay unblocked
        blocks.append(IPv4Network((gap - 2**size, 32 - size)))  # ends right below the gap
        blocks.append(IPv4Network((gap + 1, 32)))
    bound = draw(st.none() | st.sampled_from(hosts).map(IPv4Address))
    return AddressSpace(
        net,
        used=frozenset(IPv4Address(h) for h in used),
        blocked=tuple(b for b in blocks if isinstance(b, IPv4Network)),
        upper_bound=bound,
    )


def _brute_force_free(space: AddressSpace) -> list[IPv4Address]:
    reserved = aws_reserved(space.network)
    result = []
    for host in space.network:
        assert isinstance(host, IPv4Address)
        if host in reserved or host in space.used or any(host in b for b in space.blocked):
            continue
        if space.upper_bound is not None and int(host) > int(space.upper_bound):
            continue
        result.append(host)
    return result


@settings(max_examples=300, deadline=None)
@given(spaces())
def test_property_lowest_free_is_never_used_reserved_blocked_or_above_the_bound(space: AddressSpace) -> None:
    expected = _brute_force_free(space)
    chosen = space.lowest_free()
    assert chosen == (expected[0] if expected else None)
    if chosen is not None:
        assert chosen not in aws_reserved(space.network)
        assert chosen not in space.used
        assert not any(chosen in b for b in space.blocked)
        assert space.upper_bound is None or int(chosen) <= int(space.upper_bound)


@settings(max_examples=200, deadline=None)
@given(spaces())
def test_property_free_lists_every_free_address_in_ascending_order(space: AddressSpace) -> None:
    assert list(space.free()) == _brute_force_free(space)


@settings(max_examples=200, deadline=None)
@given(spaces(), st.integers(min_value=1, max_value=40))
def test_property_n_ranks_take_exactly_the_n_lowest_free_addresses(space: AddressSpace, n: int) -> None:
    expected = _brute_force_free(space)[:n]
    picks = [space.nth_free(rank) for rank in range(n)]
    assert [p for p in picks if p is not None] == expected


@settings(max_examples=300, deadline=None)
@given(spaces(), st.integers(min_value=0, max_value=40))
def test_property_a_rank_gets_the_rank_th_free_address_or_none_when_fewer_are_free(
    space: AddressSpace, rank: int
) -> None:
    expected = _brute_force_free(space)
    pick = choose_worker_address(space, rank)
    if rank < len(expected):
        assert pick is not None
        assert pick.address == expected[rank]
        assert pick.rank == rank
    else:
        assert pick is None, "an overflow launch must not be sent to an address a launch ahead of it takes"


@settings(max_examples=200, deadline=None)
@given(spaces(), st.integers(min_value=0, max_value=300))
def test_property_count_free_is_the_number_of_free_addresses_capped(space: AddressSpace, at_most: int) -> None:
    assert space.count_free(at_most) == min(len(_brute_force_free(space)), at_most)


def test_given_a_refused_address_not_shown_yet_when_ranked_beyond_the_free_ones_then_the_rank_is_discounted() -> None:
    net = IPv4Network("10.0.1.0/28")
    used = frozenset(a(f"10.0.1.{i}") for i in range(4, 13))  # .13 and .14 free
    pick = choose_worker_address(AddressSpace(net, used=used), rank=2, uncertain=1)
    assert pick is not None
    assert pick.address == a("10.0.1.14")
    assert pick.rank == 1


@settings(max_examples=300, deadline=None)
@given(spaces(), st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=5))
def test_property_uncertain_addresses_discount_the_rank_only_beyond_the_free_addresses(
    space: AddressSpace, rank: int, uncertain: int
) -> None:
    expected = _brute_force_free(space)
    pick = choose_worker_address(space, rank, uncertain)
    if rank < len(expected):
        assert pick is not None
        assert pick.address == expected[rank]
    elif max(rank - uncertain, 0) < len(expected):
        assert pick is not None
        assert pick.address == expected[max(rank - uncertain, 0)]
    else:
        assert pick is None
