"""Pure decisions: which addresses count, which ENI carries each, which EC2 calls make it so."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from hypothesis import given
from hypothesis import strategies as st

from pod_ip_manager.model import Binding, Eni, IPAddress, MatchedBy, PodInterface
from pod_ip_manager.planning import (
    AssignIpv4,
    AssignIpv6,
    Refusal,
    UnassignIpv4,
    UnassignIpv6,
    locate,
    missing_interfaces,
    multus_interfaces,
    not_yet_visible,
    plan_assignments,
    plan_release,
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
