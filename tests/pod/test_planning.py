"""Pure decisions: which addresses count, which ENI carries each, which EC2 calls make it so."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pod_ip_manager.model import Binding, Eni, HolderEni, IPAddress, MatchedBy, PodInterface
from pod_ip_manager.planning import (
    AssignIpv4,
    AssignIpv6,
    Refusal,
    UnassignIpv4,
    UnassignIpv6,
    bind_all,
    locate,
    missing_interfaces,
    multus_interfaces,
    not_yet_visible,
    plan_assignments,
    plan_release,
    plan_unassign,
    protected_holders,
    usable,
)

PRIMARY = Eni(
    mac="0e:00:00:00:00:00",
    eni_id="eni-primary",
    device_number=0,
    subnet_ipv4=IPv4Network("10.0.0.0/24"),
    subnet_ipv6=(IPv6Network("2600:1f14:0:0::/64"),),
    ipv4s=frozenset({IPv4Address("10.0.0.10")}),
    ipv6s=frozenset(),
)
MULTUS_A = Eni(
    mac="0e:00:00:00:00:0a",
    eni_id="eni-a",
    device_number=1,
    subnet_ipv4=IPv4Network("10.0.4.0/24"),
    subnet_ipv6=(IPv6Network("2600:1f14:0:4::/64"),),
    ipv4s=frozenset({IPv4Address("10.0.4.4")}),
    ipv6s=frozenset(),
)
MULTUS_B = Eni(
    mac="0e:00:00:00:00:0b",
    eni_id="eni-b",
    device_number=2,
    subnet_ipv4=IPv4Network("10.0.5.0/24"),
    subnet_ipv6=(),
    ipv4s=frozenset({IPv4Address("10.0.5.4")}),
    ipv6s=frozenset(),
)
ENIS = (PRIMARY, MULTUS_A, MULTUS_B)


def iface(name: str, mac: str, *addresses: str) -> PodInterface:
    return PodInterface(name=name, index=7, mac=mac, addresses=tuple(ip_address(a) for a in addresses))


def bind(address: str, eni: Eni) -> Binding:
    return Binding(ip_address(address), "net1", eni.eni_id, eni.mac, MatchedBy.MAC)


# --- discovery -------------------------------------------------------------------------------------------------


def test_given_pod_interfaces_when_filtering_then_primary_loopback_and_link_local_are_left_out() -> None:
    interfaces = (
        iface("lo", "00:00:00:00:00:00", "127.0.0.1"),
        iface("eth0", "aa:aa:aa:aa:aa:aa", "192.168.3.4"),
        iface("net1", MULTUS_A.mac, "10.0.4.200", "fe80::1", "2600:1f14:0:4::200"),
    )
    result = multus_interfaces(interfaces, primary="eth0")
    assert [(i.name, i.addresses) for i in result] == [
        ("net1", (IPv4Address("10.0.4.200"), IPv6Address("2600:1f14:0:4::200")))
    ]


def test_given_a_configured_primary_name_when_filtering_then_that_interface_is_excluded() -> None:
    result = multus_interfaces((iface("eth0", "aa", "10.0.4.9"), iface("pod0", "bb", "10.9.9.9")), primary="pod0")
    assert [i.name for i in result] == ["eth0"]


def test_given_expected_names_when_one_lacks_an_address_and_one_is_absent_then_both_are_named() -> None:
    present = (iface("net1", "aa"),)
    assert missing_interfaces(present, expected_names=("net1", "net2"), expected_count=2) == (
        "interface net1 has no usable address",
        "interface net2 does not exist",
    )


def test_given_a_count_when_fewer_interfaces_have_addresses_then_the_shortfall_is_described() -> None:
    present = (iface("net1", "aa", "10.0.4.200"), iface("net2", "bb"))
    (gap,) = missing_interfaces(present, expected_names=(), expected_count=2)
    assert "2 Multus interface(s)" in gap
    assert "found 1 (net1)" in gap


def test_given_every_expected_interface_with_an_address_then_nothing_is_missing() -> None:
    present = (iface("net1", "aa", "10.0.4.200"),)
    assert missing_interfaces(present, expected_names=("net1",), expected_count=1) == ()


# --- ENI lookup ------------------------------------------------------------------------------------------------


def test_given_the_mac_of_a_multus_eni_when_locating_then_that_eni_is_chosen_by_mac() -> None:
    interface = iface("net1", MULTUS_A.mac, "10.0.4.200")
    assert locate(interface, IPv4Address("10.0.4.200"), ENIS) == Binding(
        IPv4Address("10.0.4.200"), "net1", "eni-a", MULTUS_A.mac, MatchedBy.MAC
    )


def test_given_an_unknown_mac_when_the_address_is_in_one_secondary_subnet_then_it_is_chosen_by_subnet() -> None:
    interface = iface("net1", "02:42:ac:11:00:02", "10.0.5.77")
    decision = locate(interface, IPv4Address("10.0.5.77"), ENIS)
    assert isinstance(decision, Binding)
    assert (decision.eni_id, decision.matched_by) == ("eni-b", MatchedBy.SUBNET)


def test_given_a_longer_prefix_on_the_pod_when_locating_then_containment_decides_not_prefix_text() -> None:
    # The pod range 10.0.4.192/26 is inside the ENI's 10.0.4.0/24: the AWS sample compared prefix strings.
    interface = PodInterface("net1", 7, "02:42:ac:11:00:02", (IPv4Address("10.0.4.200"),))
    decision = locate(interface, IPv4Address("10.0.4.200"), ENIS)
    assert isinstance(decision, Binding)
    assert decision.eni_id == "eni-a"


def test_given_the_primary_enis_mac_when_locating_then_it_is_refused() -> None:
    decision = locate(iface("net1", PRIMARY.mac, "10.0.0.50"), IPv4Address("10.0.0.50"), ENIS)
    assert isinstance(decision, Refusal)
    assert "primary ENI" in decision.reason


def test_given_an_address_only_in_the_primary_subnet_when_locating_by_subnet_then_it_is_refused() -> None:
    decision = locate(iface("net1", "02:00:00:00:00:01"), IPv4Address("10.0.0.50"), ENIS)
    assert isinstance(decision, Refusal)
    assert "primary" in decision.reason


def test_given_an_address_outside_every_subnet_when_locating_then_it_is_refused() -> None:
    decision = locate(iface("net1", "02:00:00:00:00:01"), IPv4Address("172.16.0.1"), ENIS)
    assert isinstance(decision, Refusal)
    assert "no ENI" in decision.reason


def test_given_a_mac_match_but_an_address_outside_its_subnet_then_it_is_refused() -> None:
    decision = locate(iface("net1", MULTUS_A.mac), IPv4Address("10.0.5.9"), ENIS)
    assert isinstance(decision, Refusal)
    assert "outside the subnet of eni-a" in decision.reason


def test_given_two_secondary_enis_in_one_subnet_when_locating_by_subnet_then_it_is_ambiguous() -> None:
    twin = Eni("0e:00:00:00:00:0c", "eni-c", 3, IPv4Network("10.0.4.0/24"), (), frozenset(), frozenset())
    decision = locate(iface("net1", "02:00:00:00:00:01"), IPv4Address("10.0.4.9"), (*ENIS, twin))
    assert isinstance(decision, Refusal)
    assert "ambiguous" in decision.reason


def test_given_an_ipv6_address_when_locating_by_subnet_then_the_ipv6_cidr_decides() -> None:
    decision = locate(iface("net1", "02:00:00:00:00:01"), IPv6Address("2600:1f14:0:4::99"), ENIS)
    assert isinstance(decision, Binding)
    assert decision.eni_id == "eni-a"


# --- EC2 calls -------------------------------------------------------------------------------------------------


def test_given_unheld_addresses_when_planning_then_one_call_per_eni_and_family() -> None:
    bindings = [bind("10.0.4.201", MULTUS_A), bind("10.0.4.200", MULTUS_A), bind("2600:1f14:0:4::5", MULTUS_A)]
    assert plan_assignments(bindings, {}) == (
        AssignIpv4("eni-a", (IPv4Address("10.0.4.200"), IPv4Address("10.0.4.201"))),
        AssignIpv6("eni-a", (IPv6Address("2600:1f14:0:4::5"),)),
    )


def test_given_addresses_already_on_their_eni_when_planning_then_no_call_is_made() -> None:
    bindings = [bind("10.0.4.200", MULTUS_A), bind("2600:1f14:0:4::5", MULTUS_A)]
    holders: dict[IPAddress, str] = {b.address: "eni-a" for b in bindings}
    assert plan_assignments(bindings, holders) == ()


def test_given_an_ipv4_held_by_another_eni_when_planning_then_it_is_simply_assigned_with_reassignment() -> None:
    assert plan_assignments([bind("10.0.4.200", MULTUS_A)], {IPv4Address("10.0.4.200"): "eni-other"}) == (
        AssignIpv4("eni-a", (IPv4Address("10.0.4.200"),)),
    )


def test_given_an_ipv6_held_by_another_eni_when_planning_then_it_is_unassigned_there_first() -> None:
    address = IPv6Address("2600:1f14:0:4::5")
    assert plan_assignments([bind(str(address), MULTUS_A)], {address: "eni-other"}) == (
        UnassignIpv6("eni-other", (address,)),
        AssignIpv6("eni-a", (address,)),
    )


def test_given_owned_addresses_when_releasing_then_only_those_still_on_our_eni_are_unassigned() -> None:
    stayed, moved, v6 = bind("10.0.4.200", MULTUS_A), bind("10.0.4.201", MULTUS_A), bind("2600:1f14:0:4::5", MULTUS_A)
    holders: dict[IPAddress, str] = {stayed.address: "eni-a", moved.address: "eni-elsewhere", v6.address: "eni-a"}
    assert plan_release([stayed, moved, v6], holders) == (
        UnassignIpv4("eni-a", (IPv4Address("10.0.4.200"),)),
        UnassignIpv6("eni-a", (IPv6Address("2600:1f14:0:4::5"),)),
    )


def test_given_imds_data_when_checking_visibility_then_missing_addresses_are_pending() -> None:
    shown, pending = bind("10.0.4.4", MULTUS_A), bind("10.0.4.200", MULTUS_A)
    assert not_yet_visible([shown, pending], ENIS) == (pending,)


@given(st.lists(st.tuples(st.integers(0, 63), st.booleans(), st.sampled_from([None, "eni-a", "eni-x"])), max_size=20))
def test_property_applying_the_plan_leaves_every_address_on_its_eni_and_releasing_after_leaves_none(
    rows: list[tuple[int, bool, str | None]],
) -> None:
    bindings, holders = [], {}
    for offset, v6, holder in rows:
        address: IPAddress = (
            IPv6Address(f"2600:1f14:0:4::{offset + 1:x}") if v6 else IPv4Address(f"10.0.4.{192 + offset}")
        )
        bindings.append(bind(str(address), MULTUS_A))
        if holder:
            holders[address] = holder
    state: dict[IPAddress, str] = dict(holders)
    for action in plan_assignments(bindings, holders):
        for address in action.addresses:
            if isinstance(action, UnassignIpv6):
                assert state.get(address) == action.eni_id
                del state[address]
            else:
                assert isinstance(action, (AssignIpv4, AssignIpv6))
                # IPv6 may only be assigned once nobody holds it; IPv4 moves (AllowReassignment)
                assert isinstance(address, IPv4Address) or address not in state
                state[address] = action.eni_id
    assert all(state[b.address] == "eni-a" for b in bindings)
    for action in plan_release(bindings, state):
        for address in action.addresses:
            assert state.pop(address) == action.eni_id
    assert not any(state.get(b.address) == "eni-a" for b in bindings)


def test_given_an_interface_with_a_tentative_ipv6_then_it_is_not_ready_and_the_address_is_named() -> None:
    net1 = PodInterface("net1", 3, "aa", (IPv4Address("10.0.4.200"),), (IPv6Address("2600:1f14:0:4::200"),))
    expected = (
        "interface net1 has tentative address(es) 2600:1f14:0:4::200 (IPv6 duplicate address detection not done)",
    )
    assert missing_interfaces((net1,), expected_names=("net1",), expected_count=1) == expected
    assert missing_interfaces((net1,), expected_names=(), expected_count=1)[-1] == expected[0]


def test_given_only_a_tentative_link_local_address_then_it_does_not_hold_the_interface_back() -> None:
    net1 = PodInterface("net1", 3, "aa", (IPv4Address("10.0.4.200"),), (IPv6Address("fe80::1"),))
    assert missing_interfaces(multus_interfaces((net1,), primary="eth0"), expected_names=(), expected_count=1) == ()


# --- what counts, what is refused, and why ---------------------------------------------------------------------

UNTAGGED = "not tagged node.k8s.amazonaws.com/no_manage=true (a VPC CNI ENI): never touched"
UNTAGGED_ENI = Eni(
    mac="0e:00:00:00:00:0d",
    eni_id="eni-cni",
    device_number=3,
    subnet_ipv4=IPv4Network("10.0.6.0/24"),
    subnet_ipv6=(),
    ipv4s=frozenset(),
    ipv6s=frozenset(),
    no_manage=False,
)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "224.0.0.1",
        "ff02::1",
        "0.0.0.0",  # noqa: S104 - an address under test, nothing binds to it
        "::",
        "240.0.0.1",
        "255.255.255.254",
        "169.254.1.1",
    ],
    ids=[
        "loopback",
        "loopback6",
        "multicast",
        "multicast6",
        "unspecified",
        "unspecified6",
        "reserved",
        "reserved-top",
        "link-local",
    ],
)
def test_given_an_address_no_pod_can_be_reached_at_then_it_is_not_usable(address: str) -> None:
    assert not usable(ip_address(address))


@pytest.mark.parametrize("address", ["10.0.4.5", "2600:1f14:0:4::5", "100.64.0.1"])
def test_given_a_routable_address_then_it_is_usable(address: str) -> None:
    assert usable(ip_address(address))


def test_given_pim_interfaces_when_filtering_then_only_those_are_managed_eth0_included() -> None:
    interfaces = (iface("eth0", "aa", "192.168.3.4"), iface("net1", "bb", "10.0.4.9"), iface("net2", "cc", "10.0.5.9"))
    assert [i.name for i in multus_interfaces(interfaces, primary="eth0", only=("net2",))] == ["net2"]
    assert [i.name for i in multus_interfaces(interfaces, primary="eth0", only=("eth0", "net1"))] == ["eth0", "net1"]


def test_given_an_interface_when_filtering_then_its_link_and_only_its_usable_tentative_addresses_are_kept() -> None:
    net1 = PodInterface(
        "net1", 9, MULTUS_A.mac, (IPv4Address("10.0.4.9"),), (IPv6Address("fe80::9"), IPv6Address("2600:1f14:0:4::9"))
    )
    assert multus_interfaces((net1,), primary="eth0") == (
        PodInterface("net1", 9, MULTUS_A.mac, (IPv4Address("10.0.4.9"),), (IPv6Address("2600:1f14:0:4::9"),)),
    )


def test_given_no_interface_with_an_address_when_counting_then_the_shortfall_says_none() -> None:
    assert missing_interfaces((iface("net1", "aa"),), expected_names=(), expected_count=1) == (
        "1 Multus interface(s) with an address expected, found 0 (none)",
    )


def test_given_two_ready_of_three_when_counting_then_both_ready_ones_are_named() -> None:
    present = (iface("net2", "bb", "10.0.5.9"), iface("net1", "aa", "10.0.4.9"))
    assert missing_interfaces(present, expected_names=(), expected_count=3) == (
        "3 Multus interface(s) with an address expected, found 2 (net1, net2)",
    )


def test_given_two_tentative_addresses_then_both_are_named_until_dad_ends() -> None:
    net1 = PodInterface("net1", 3, "aa", (), (IPv6Address("2600:1f14:0:4::200"), IPv6Address("2600:1f14:0:4::201")))
    assert missing_interfaces((net1,), expected_names=("net1",), expected_count=1) == (
        "interface net1 has tentative address(es) 2600:1f14:0:4::200, 2600:1f14:0:4::201 "
        "(IPv6 duplicate address detection not done)",
    )


def test_given_an_ipv4_and_a_tentative_ipv6_when_dad_ends_then_the_interface_becomes_ready() -> None:
    during = PodInterface("net1", 3, "aa", (IPv4Address("10.0.4.9"),), (IPv6Address("2600:1f14:0:4::9"),))
    after = PodInterface("net1", 3, "aa", (IPv4Address("10.0.4.9"), IPv6Address("2600:1f14:0:4::9")))
    assert missing_interfaces((during,), expected_names=(), expected_count=1) != ()
    assert missing_interfaces((after,), expected_names=(), expected_count=1) == ()


def test_given_the_primary_enis_mac_when_locating_then_the_refusal_names_the_address_interface_and_eni() -> None:
    assert locate(iface("net1", PRIMARY.mac), IPv4Address("10.0.0.50"), ENIS) == Refusal(
        IPv4Address("10.0.0.50"), "net1", "its MAC is the primary ENI's (eni-primary), never touched"
    )


def test_given_the_mac_of_an_untagged_eni_when_locating_then_it_is_refused_as_the_vpc_cnis() -> None:
    assert locate(iface("net1", UNTAGGED_ENI.mac), IPv4Address("10.0.6.9"), (*ENIS, UNTAGGED_ENI)) == Refusal(
        IPv4Address("10.0.6.9"), "net1", f"its MAC is eni-cni's, {UNTAGGED}"
    )


def test_given_the_mac_of_an_eni_whose_tags_are_unknown_when_locating_then_it_is_bound() -> None:
    # IMDS shows no tags (no_manage None): the subnet and MAC decide, as they did before tags were read.
    unknown = Eni("0e:00:00:00:00:0e", "eni-e", 4, IPv4Network("10.0.7.0/24"), (), frozenset(), frozenset(), None)
    decision = locate(iface("net1", unknown.mac), IPv4Address("10.0.7.9"), (*ENIS, unknown))
    assert decision == Binding(IPv4Address("10.0.7.9"), "net1", "eni-e", unknown.mac, MatchedBy.MAC)


def test_given_a_mac_match_and_an_address_outside_its_subnet_then_the_refusal_names_the_address_and_interface() -> None:
    assert locate(iface("net3", MULTUS_A.mac), IPv4Address("10.0.5.9"), ENIS) == Refusal(
        IPv4Address("10.0.5.9"), "net3", "outside the subnet of eni-a (same MAC)"
    )


def test_given_an_unknown_mac_when_bound_by_subnet_then_the_binding_carries_the_enis_mac() -> None:
    assert locate(iface("net2", "02:00:00:00:00:01"), IPv4Address("10.0.5.77"), ENIS) == Binding(
        IPv4Address("10.0.5.77"), "net2", "eni-b", MULTUS_B.mac, MatchedBy.SUBNET
    )


def test_given_only_an_untagged_enis_subnet_contains_the_address_then_it_is_refused_naming_the_eni() -> None:
    decision = locate(iface("net1", "02:00:00:00:00:01"), IPv4Address("10.0.6.9"), (*ENIS, UNTAGGED_ENI))
    assert decision == Refusal(
        IPv4Address("10.0.6.9"), "net1", f"only the subnets of untagged ENIs contain it (eni-cni): {UNTAGGED}"
    )


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.50", "only the primary ENI's subnet contains it, and it is never touched"),
        ("172.16.0.1", "no ENI of this instance is in a subnet that contains it"),
        ("10.0.4.9", "ambiguous: several ENIs are in subnets that contain it (eni-a, eni-c)"),
    ],
    ids=["primary-only", "no-subnet", "ambiguous"],
)
def test_given_no_single_eni_by_subnet_when_locating_then_the_refusal_says_why(address: str, reason: str) -> None:
    twin = Eni("0e:00:00:00:00:0c", "eni-c", 3, IPv4Network("10.0.4.0/24"), (), frozenset(), frozenset())
    decision = locate(iface("net2", "02:00:00:00:00:01"), ip_address(address), (twin, *ENIS))
    assert decision == Refusal(ip_address(address), "net2", reason)


def test_given_a_pods_interfaces_when_binding_all_then_each_address_is_bound_or_refused() -> None:
    interfaces = (iface("net1", MULTUS_A.mac, "10.0.4.200", "10.0.5.9"), iface("net2", MULTUS_B.mac, "10.0.5.10"))
    bindings, refusals = bind_all(interfaces, ENIS)
    assert bindings == [
        Binding(IPv4Address("10.0.4.200"), "net1", "eni-a", MULTUS_A.mac, MatchedBy.MAC),
        Binding(IPv4Address("10.0.5.10"), "net2", "eni-b", MULTUS_B.mac, MatchedBy.MAC),
    ]
    assert refusals == [Refusal(IPv4Address("10.0.5.9"), "net1", "outside the subnet of eni-a (same MAC)")]
    assert str(refusals[0]) == "10.0.5.9 on net1: outside the subnet of eni-a (same MAC)"


def test_given_held_addresses_when_unassigning_then_one_call_per_eni_and_family() -> None:
    held: list[tuple[IPAddress, str]] = [
        (IPv4Address("10.0.4.201"), "eni-a"),
        (IPv6Address("2600:1f14:0:4::5"), "eni-a"),
        (IPv4Address("10.0.4.200"), "eni-a"),
        (IPv4Address("10.0.5.9"), "eni-b"),
    ]
    assert plan_unassign(held) == (
        UnassignIpv4("eni-a", (IPv4Address("10.0.4.200"), IPv4Address("10.0.4.201"))),
        UnassignIpv4("eni-b", (IPv4Address("10.0.5.9"),)),
        UnassignIpv6("eni-a", (IPv6Address("2600:1f14:0:4::5"),)),
    )
    assert plan_unassign(iter(held)) == plan_unassign(held), "any iterable, read once"


def test_given_an_address_held_by_a_primary_eni_then_it_is_protected_naming_both() -> None:
    holders: dict[IPAddress, HolderEni] = {
        IPv4Address("10.0.4.200"): HolderEni("eni-other-primary", device_index=0, no_manage=True)
    }
    assert protected_holders([bind("10.0.4.200", MULTUS_A)], holders) == (
        "10.0.4.200 is held by eni-other-primary, an instance's primary ENI (device index 0)",
    )


def test_given_an_address_held_by_an_untagged_eni_then_it_is_protected_naming_the_tag() -> None:
    holders: dict[IPAddress, HolderEni] = {
        IPv6Address("2600:1f14:0:4::5"): HolderEni("eni-cni", device_index=1, no_manage=False)
    }
    assert protected_holders([bind("2600:1f14:0:4::5", MULTUS_A)], holders) == (
        "2600:1f14:0:4::5 is held by eni-cni, which is not tagged node.k8s.amazonaws.com/no_manage=true",
    )


def test_given_addresses_unheld_held_by_us_or_by_another_multus_eni_then_none_is_protected() -> None:
    holders: dict[IPAddress, HolderEni] = {
        IPv4Address("10.0.4.201"): HolderEni("eni-a", device_index=0, no_manage=False),  # ours already
        IPv4Address("10.0.4.202"): HolderEni("eni-other-node", device_index=1, no_manage=True),  # a floating IP
        IPv4Address("10.0.4.203"): HolderEni("eni-detached", device_index=None, no_manage=True),
    }
    bindings = [bind(f"10.0.4.{n}", MULTUS_A) for n in (200, 201, 202, 203)]
    assert protected_holders(bindings, holders) == ()


def test_given_several_bindings_then_every_protected_one_is_named_not_only_the_first() -> None:
    holders: dict[IPAddress, HolderEni] = {
        IPv4Address("10.0.4.201"): HolderEni("eni-a", device_index=1, no_manage=True),
        IPv4Address("10.0.4.202"): HolderEni("eni-p", device_index=0, no_manage=True),
        IPv4Address("10.0.4.203"): HolderEni("eni-cni", device_index=2, no_manage=False),
    }
    bindings = [bind(f"10.0.4.{n}", MULTUS_A) for n in (201, 202, 203)]
    assert [reason.split(",")[0] for reason in protected_holders(bindings, holders)] == [
        "10.0.4.202 is held by eni-p",
        "10.0.4.203 is held by eni-cni",
    ]


def test_given_an_eni_when_asked_whether_it_holds_an_address_then_the_family_list_decides() -> None:
    eni = Eni(
        "0e:00:00:00:00:0a",
        "eni-a",
        1,
        IPv4Network("10.0.4.0/24"),
        (IPv6Network("2600:1f14:0:4::/64"),),
        frozenset({IPv4Address("10.0.4.4")}),
        frozenset({IPv6Address("2600:1f14:0:4::4")}),
    )
    assert eni.holds(IPv6Address("2600:1f14:0:4::4"))
    assert not eni.holds(IPv6Address("2600:1f14:0:4::5"))
    assert eni.holds(IPv4Address("10.0.4.4"))
    assert not eni.holds(IPv4Address("10.0.4.5"))


def test_given_two_untagged_enis_whose_subnets_contain_the_address_then_both_are_named() -> None:
    twin = Eni("0e:00:00:00:00:0f", "eni-cni2", 4, IPv4Network("10.0.6.0/24"), (), frozenset(), frozenset(), False)
    decision = locate(iface("net1", "02:00:00:00:00:01"), IPv4Address("10.0.6.9"), (twin, *ENIS, UNTAGGED_ENI))
    assert isinstance(decision, Refusal)
    assert decision.reason.startswith("only the subnets of untagged ENIs contain it (eni-cni, eni-cni2): ")
