"""The node agent's pure decisions: which ENIs are Multus ENIs, what the pods want, and desired vs actual."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from hypothesis import given
from hypothesis import strategies as st

from pod_ip_manager.model import AttachedEni, Eni, HolderEni, IPAddress, PodInterface
from pod_ip_manager.node_planning import (
    MultusEni,
    Release,
    SkipReason,
    aws_reserved,
    desired_state,
    held_by,
    multus_enis,
    not_held,
    plan_node,
)
from pod_ip_manager.planning import AssignIpv4, AssignIpv6, UnassignIpv4, UnassignIpv6

MAC_A, MAC_B, MAC_POD = "0e:00:00:00:00:0a", "0e:00:00:00:00:0b", "0e:99:99:99:99:99"


def eni(eni_id: str, mac: str, device: int, ipv4: str, ipv6: str | None = None) -> Eni:
    return Eni(
        mac=mac,
        eni_id=eni_id,
        device_number=device,
        subnet_ipv4=IPv4Network(ipv4),
        subnet_ipv6=(IPv6Network(ipv6),) if ipv6 else (),
        ipv4s=frozenset(),
        ipv6s=frozenset(),
        no_manage=True,
    )


def multus(identity: Eni, primary: str, *secondary: str) -> MultusEni:
    return MultusEni(identity, "subnet-" + identity.eni_id, frozenset({ip_address(primary)}), _ips(*secondary))


def _ips(*texts: str) -> frozenset[IPAddress]:
    return frozenset(ip_address(t) for t in texts)


A = multus(eni("eni-a", MAC_A, 1, "10.0.4.0/24", "2600:1f14:0:4::/64"), "10.0.4.5")
B = multus(eni("eni-b", MAC_B, 2, "10.0.5.0/24"), "10.0.5.5")
ENIS = (A, B)


def link(mac: str, *addresses: str, tentative: tuple[str, ...] = (), name: str = "net1") -> PodInterface:
    return PodInterface(name, 3, mac, tuple(ip_address(a) for a in addresses), tuple(ip_address(a) for a in tentative))


def holder(eni_id: str, device: int | None = 1, *, no_manage: bool = True) -> HolderEni:
    return HolderEni(eni_id, device, no_manage)


# --- which ENIs ------------------------------------------------------------------------------------------------


def test_given_the_instances_enis_then_only_tagged_secondary_enis_shown_in_imds_are_multus_enis() -> None:
    def attached(eni_id: str, device: int | None, *, tagged: bool) -> AttachedEni:
        return AttachedEni(eni_id, "subnet-x", f"0e:00:00:00:00:{device or 0:02x}", device, tagged, frozenset(), _ips())

    imds = [eni(f"eni-{n}", f"0e:00:00:00:00:{n:02x}", n, "10.0.4.0/24") for n in range(4)]
    enis, left_out = multus_enis(
        [
            attached("eni-0", 0, tagged=True),  # the primary ENI, even tagged: never
            attached("eni-1", 1, tagged=True),
            attached("eni-2", 2, tagged=False),  # the VPC CNI's
            attached("eni-3", 3, tagged=True),
            attached("eni-9", 9, tagged=True),  # just attached: IMDS does not list it yet
        ],
        imds,
    )
    assert [e.eni_id for e in enis] == ["eni-1", "eni-3"]
    assert left_out == ["eni-9 (tagged, device index 9) is not in instance metadata yet"]


# --- desired state ---------------------------------------------------------------------------------------------


def test_given_pods_then_only_links_with_a_multus_enis_mac_are_assigned_but_every_address_counts_as_present() -> None:
    pods = {
        "cni-1": (link("aa:aa:aa:aa:aa:aa", "192.168.3.4", name="eth0"), link(MAC_A, "10.0.4.200", "fe80::1")),
        "cni-2": (link(MAC_POD, "10.0.4.201", name="macvlan0"),),  # a sidecar pod matched by subnet, say
    }
    desired = desired_state(pods, ENIS, host=(link(MAC_A, "10.0.4.240", name="multus0"),))
    assert [(c.netns, str(c.address), c.eni_id) for c in desired.carried] == [("cni-1", "10.0.4.200", "eni-a")]
    assert desired.present == _ips("192.168.3.4", "10.0.4.200", "10.0.4.201", "10.0.4.240")  # no link-local


def test_given_an_address_outside_the_subnet_of_its_links_eni_then_it_is_skipped_with_the_reason() -> None:
    desired = desired_state({"cni-1": (link(MAC_A, "10.0.9.9", "10.0.4.200"),)}, ENIS)
    (skipped,) = desired.skipped
    assert (skipped.netns, str(skipped.address), skipped.reason) == ("cni-1", "10.0.9.9", SkipReason.OUTSIDE_SUBNET)
    assert [str(c.address) for c in desired.carried] == ["10.0.4.200"]


def test_given_aws_reserved_addresses_then_they_are_skipped() -> None:
    reserved = (
        "10.0.4.0",
        "10.0.4.1",
        "10.0.4.3",
        "10.0.4.255",
        "2600:1f14:0:4::2",
        "2600:1f14:0:4:ffff:ffff:ffff:ffff",
    )
    desired = desired_state({"cni-1": (link(MAC_A, *reserved, "10.0.4.4"),)}, ENIS)
    assert {str(s.address) for s in desired.skipped if s.reason is SkipReason.AWS_RESERVED} == set(reserved)
    assert [str(c.address) for c in desired.carried] == ["10.0.4.4"]
    assert not aws_reserved(IPv4Address("10.0.5.1"), A.eni)  # another subnet: not A's to say


def test_given_one_address_on_links_of_two_enis_in_one_subnet_then_it_is_a_conflict_and_not_assigned() -> None:
    c = multus(eni("eni-c", "0e:00:00:00:00:0c", 3, "10.0.4.0/24"), "10.0.4.6")  # a second ENI in A's subnet
    pods = {"cni-1": (link(MAC_A, "10.0.4.200"),), "cni-2": (link(c.mac, "10.0.4.200"),)}
    desired = desired_state(pods, (A, B, c))
    assert desired.carried == ()
    assert {(s.netns, s.reason) for s in desired.skipped} == {
        ("cni-1", SkipReason.CONFLICT),
        ("cni-2", SkipReason.CONFLICT),
    }
    assert IPv4Address("10.0.4.200") in desired.present  # and so never released either


def test_given_the_same_address_in_two_pods_on_the_same_eni_then_it_is_carried_once() -> None:
    pods = {"cni-1": (link(MAC_A, "10.0.4.250"),), "cni-2": (link(MAC_A, "10.0.4.250"),)}
    desired = desired_state(pods, ENIS)
    assert [(c.netns, str(c.address)) for c in desired.carried] == [("cni-1", "10.0.4.250")]


def test_given_a_tentative_ipv6_then_it_waits_and_counts_as_present() -> None:
    desired = desired_state({"cni-1": (link(MAC_A, "10.0.4.200", tentative=("2600:1f14:0:4::200",)),)}, ENIS)
    assert desired.waiting == (("cni-1", IPv6Address("2600:1f14:0:4::200")),)
    assert IPv6Address("2600:1f14:0:4::200") in desired.present
    assert [str(c.address) for c in desired.carried] == ["10.0.4.200"]


# --- the plan --------------------------------------------------------------------------------------------------


def test_given_desired_and_actual_then_missing_are_assigned_stale_released_and_the_rest_left_alone() -> None:
    a = multus(A.eni, "10.0.4.5", "10.0.4.200", "10.0.4.210", "10.0.4.250", "2600:1f14:0:4::210")
    pods = {"cni-1": (link(MAC_A, "10.0.4.200", "10.0.4.201", "2600:1f14:0:4::201"),)}
    desired = desired_state(pods, (a, B))
    holders = held_by((a, B))
    plan = plan_node(desired, (a, B), holders, floating=_ips("10.0.4.250"))
    assert [str(c.address) for c in plan.assign] == ["10.0.4.201", "2600:1f14:0:4::201"]
    assert plan.release == (
        Release(IPv4Address("10.0.4.210"), "eni-a"),
        Release(IPv6Address("2600:1f14:0:4::210"), "eni-a"),
    )
    assert plan.kept_floating == (Release(IPv4Address("10.0.4.250"), "eni-a"),)
    assert plan.actions(holders) == (
        UnassignIpv4("eni-a", (IPv4Address("10.0.4.210"),)),
        UnassignIpv6("eni-a", (IPv6Address("2600:1f14:0:4::210"),)),
        AssignIpv4("eni-a", (IPv4Address("10.0.4.201"),)),
        AssignIpv6("eni-a", (IPv6Address("2600:1f14:0:4::201"),)),
    )


def test_given_everything_in_place_then_the_plan_is_empty() -> None:
    a = multus(A.eni, "10.0.4.5", "10.0.4.200")
    desired = desired_state({"cni-1": (link(MAC_A, "10.0.4.200"),)}, (a, B))
    plan = plan_node(desired, (a, B), held_by((a, B)))
    assert plan.actions(held_by((a, B))) == ()
    assert not_held(desired, held_by((a, B))) == ()


def test_given_a_primary_address_a_present_address_or_another_enis_address_then_none_is_released() -> None:
    a = multus(A.eni, "10.0.4.5", "10.0.4.201")
    holders = {**held_by((a, B)), IPv4Address("10.0.4.220"): holder("eni-other-node")}
    desired = desired_state({"cni-1": (link(MAC_POD, "10.0.4.201"),)}, (a, B))  # carried, though not assigned from
    plan = plan_node(desired, (a, B), holders)
    assert plan.release == ()  # not .5 (primary), not .201 (present), not .220 (not ours)


def test_given_an_address_held_by_a_primary_or_untagged_eni_then_it_is_skipped_never_taken() -> None:
    desired = desired_state({"cni-1": (link(MAC_A, "10.0.4.200", "10.0.4.201", "10.0.4.202"),)}, ENIS)
    holders: dict[IPAddress, HolderEni] = {
        IPv4Address("10.0.4.200"): holder("eni-primary-of-someone", 0),
        IPv4Address("10.0.4.201"): holder("eni-vpc-cni", 2, no_manage=False),
        IPv4Address("10.0.4.202"): holder("eni-other-node"),  # another node's Multus ENI: a floating IP moving
    }
    plan = plan_node(desired, ENIS, holders)
    assert {(str(s.address), s.reason) for s in plan.skipped} == {
        ("10.0.4.200", SkipReason.PROTECTED_HOLDER),
        ("10.0.4.201", SkipReason.PROTECTED_HOLDER),
    }
    assert [str(c.address) for c in plan.assign] == ["10.0.4.202"]


def test_given_an_address_on_our_other_eni_then_it_moves_and_is_not_released() -> None:
    b = multus(B.eni, "10.0.5.5", "10.0.4.200")  # odd, but possible after a NAD change: it is on eni-b
    desired = desired_state({"cni-1": (link(MAC_A, "10.0.4.200"),)}, (A, b))
    holders = held_by((A, b))
    plan = plan_node(desired, (A, b), holders)
    assert plan.release == ()
    assert plan.actions(holders) == (AssignIpv4("eni-a", (IPv4Address("10.0.4.200"),)),)


def test_given_a_scope_then_only_those_addresses_are_decided() -> None:
    a = multus(A.eni, "10.0.4.5", "10.0.4.210", "10.0.4.211")
    desired = desired_state({"cni-1": (link(MAC_A, "10.0.4.200", "10.0.4.201"),)}, (a, B))
    plan = plan_node(desired, (a, B), held_by((a, B)), scope=_ips("10.0.4.201", "10.0.4.211"))
    assert [str(c.address) for c in plan.assign] == ["10.0.4.201"]
    assert [str(r.address) for r in plan.release] == ["10.0.4.211"]


@given(
    carried=st.lists(st.tuples(st.integers(64, 90), st.booleans()), max_size=12),
    held=st.lists(
        st.tuples(st.integers(64, 90), st.booleans(), st.sampled_from(["eni-a", "eni-b", "eni-x"])), max_size=12
    ),
    floating=st.sets(st.integers(64, 90), max_size=4),
)
def test_property_applying_the_plan_reaches_desired_state_and_touches_only_what_we_own(
    carried: list[tuple[int, bool]], held: list[tuple[int, bool, str]], floating: set[int]
) -> None:
    def address(host: int, v6: bool) -> IPAddress:
        return IPv6Address(f"2600:1f14:0:4::{host:x}") if v6 else IPv4Address(f"10.0.4.{host}")

    state: dict[IPAddress, str] = {}
    for host, v6, eni_id in held:
        state.setdefault(address(host, v6), eni_id)
    a = MultusEni(A.eni, "subnet-a", _ips("10.0.4.5"), frozenset(k for k, v in state.items() if v == "eni-a"))
    b = MultusEni(B.eni, "subnet-b", _ips("10.0.5.5"), frozenset(k for k, v in state.items() if v == "eni-b"))
    pods = {"cni-1": (link(MAC_A, *(str(address(h, v6)) for h, v6 in carried)),)}
    floating_ips = {address(h, v6) for h in floating for v6 in (False, True)}
    desired = desired_state(pods, (a, b))
    holders = {k: holder(v) for k, v in state.items()}
    before = dict(state)

    plan = plan_node(desired, (a, b), holders, floating=floating_ips)
    for action in plan.actions(holders):
        for item in action.addresses:
            if isinstance(action, (UnassignIpv4, UnassignIpv6)):
                assert state.pop(item) == action.eni_id
            else:
                assert isinstance(item, IPv4Address) or item not in state  # IPv6 only once released
                state[item] = action.eni_id

    wanted = {c.address for c in desired.carried}
    assert all(state[x] == "eni-a" for x in wanted)
    for x, eni_id in before.items():
        if x in wanted:
            continue
        if eni_id in ("eni-a", "eni-b") and x not in floating_ips:
            assert x not in state  # owned and no pod carries it: released
        else:
            assert state[x] == eni_id  # another node's, or a floating IP: untouched
