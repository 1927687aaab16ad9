"""The subnet plan (pure): ranges, capacities, conflicts and the whereabouts block; the CLI offline, and the
CLI's answers when a live subnet cannot be read (no network: botocore fails before sending, or is stubbed)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from multus_ipam.__main__ import EXIT_CONFLICTS, EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE, main
from multus_ipam.addressing import IPNetwork, aws_reserved
from multus_ipam.aws.clients import retry_config
from multus_ipam.aws.ec2 import Ec2Adapter
from multus_ipam.plan import (
    AddressRange,
    ConflictKind,
    Plan,
    PlanError,
    PlanMode,
    SubnetPlan,
    plan_networks,
    plan_subnet,
    render,
)
from multus_ipam.ports import Attachment, Ec2, Eni, Reservation
from multus_ipam.settings import OWNER_TAG

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

NET = IPv4Network("10.0.4.0/24")
OURS = {OWNER_TAG: "stack-a"}


def a(text: str) -> IPv4Address:
    return IPv4Address(text)


def eni(eni_id: str, *addresses: str, tags: dict[str, str] | None = None, prefixes: tuple[str, ...] = ()) -> Eni:
    return Eni(
        eni_id=eni_id,
        subnet_id="subnet-0123456789abcdef0",
        status="in-use",
        private_ipv4s=tuple(a(x) for x in addresses),
        ipv4_prefixes=tuple(IPv4Network(p) for p in prefixes),
        attachment=Attachment(
            f"eni-attach-{eni_id[4:]}", "i-0abc", 1, 0, delete_on_termination=True, status="attached"
        ),
        tags=tags or {},
    )


def explicit(cidr: str) -> Reservation:
    return Reservation(reservation_id="scr-1", cidr=ip_network(cidr), kind="explicit")


def kinds(plan: SubnetPlan | Plan) -> list[ConflictKind]:
    return [c.kind for c in plan.conflicts]


def ipam(plan: SubnetPlan | Plan) -> dict[str, Any]:
    """The whereabouts block, which the plan must have."""
    block = plan.whereabouts()
    assert block is not None, "no whereabouts block"
    return block


def whereabouts_hands_out(entry: dict[str, Any]) -> set[int]:
    """The addresses whereabouts may give a pod from one range entry, as its pkg/allocate does: the addresses of
    ``range`` but its network and broadcast address, from ``range_start`` to ``range_end``, outside every CIDR of
    ``exclude``. (Small ranges only: it enumerates.)"""
    network = ip_network(entry["range"])
    first = max(int(ip_network(entry["range_start"]).network_address), int(network.network_address) + 1)
    last = min(int(ip_network(entry["range_end"]).network_address), int(network.broadcast_address) - 1)
    excluded = [ip_network(cidr) for cidr in entry["exclude"]]
    return {
        value
        for value in range(first, last + 1)
        if not any(int(n.network_address) <= value <= int(n.broadcast_address) for n in excluded)
    }


def pod_addresses(plan: SubnetPlan) -> set[int]:
    """Every address whereabouts may hand out: the pod ranges minus exclude."""
    spans = [(int(n.network_address), int(n.broadcast_address)) for n in plan.exclude]
    return {
        value
        for r in plan.pod_ranges
        for value in range(int(r.first), int(r.last) + 1)
        if not any(lo <= value <= hi for lo, hi in spans)
    }


# --- static mode -----------------------------------------------------------------------------------------


def test_given_a_worker_bound_when_planning_then_workers_below_pods_above_and_reserved_listed() -> None:
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"))
    assert plan.mode is PlanMode.STATIC
    assert plan.worker_ranges == (AddressRange(a("10.0.4.4"), a("10.0.4.63")),)
    assert plan.pod_ranges == (AddressRange(a("10.0.4.64"), a("10.0.4.254")),)
    assert set(plan.aws_reserved) == aws_reserved(NET)
    assert (plan.worker_capacity, plan.pod_capacity) == (60, 191)
    assert plan.conflicts == ()


def test_given_a_worker_bound_when_rendering_whereabouts_then_whole_subnet_range_bounded_to_the_pods() -> None:
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"))
    assert plan.whereabouts() == {
        "type": "whereabouts",
        "range": "10.0.4.0/24",
        "range_start": "10.0.4.64",
        "range_end": "10.0.4.254",
        "exclude": [],
    }


def test_given_the_bound_at_the_last_usable_address_when_planning_then_no_pod_capacity_is_a_conflict() -> None:
    plan = plan_subnet(NET, worker_bound=a("10.0.4.254"))
    assert plan.pod_ranges == ()
    assert kinds(plan) == [ConflictKind.NO_POD_CAPACITY]
    assert plan.whereabouts() is None


def test_given_nothing_left_for_pods_when_rendering_then_a_clear_message_and_no_block() -> None:
    out = render(Plan((plan_subnet(NET, worker_bound=a("10.0.4.254")),)))
    assert "no-pod-capacity: no address is left for pods in 10.0.4.0/24" in out
    assert out.endswith("No whereabouts block: no address is left for pods in 10.0.4.0/24.\n")
    assert "{" not in out
    assert "ipRanges" not in out


def test_given_every_pod_address_held_by_another_eni_when_planning_then_no_block() -> None:
    plan = plan_subnet(
        NET, pod_ranges=[IPv4Network("10.0.4.64/30")], enis=[eni("eni-09", *[f"10.0.4.{n}" for n in (64, 65, 66, 67)])]
    )
    assert plan.pod_capacity == 0
    assert ConflictKind.NO_POD_CAPACITY in kinds(plan)
    assert plan.whereabouts() is None


@pytest.mark.parametrize("bound", ["10.0.5.10", "10.0.4.2", "10.0.4.255"])
def test_given_a_bound_outside_the_usable_addresses_when_planning_then_plan_error_names_it(bound: str) -> None:
    with pytest.raises(PlanError, match=bound):
        plan_subnet(NET, worker_bound=a(bound))


def test_given_a_reservation_in_the_worker_range_when_planning_static_then_worker_capacity_shrinks() -> None:
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), reservations=[explicit("10.0.4.16/28")])
    assert plan.worker_capacity == 60 - 16
    assert plan.conflicts == ()


def test_given_a_prefix_reservation_in_the_pod_range_when_planning_static_then_it_is_a_conflict() -> None:
    prefix = Reservation(reservation_id="scr-9", cidr=IPv4Network("10.0.4.128/28"), kind="prefix")
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), reservations=[prefix])
    assert kinds(plan) == [ConflictKind.RESERVATION_OVERLAPS_POD_RANGE]


# --- cidr-reservation mode ---------------------------------------------------------------------------------


def test_given_a_pod_range_when_planning_then_workers_are_everything_usable_outside_it() -> None:
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.64/26")])
    assert plan.mode is PlanMode.CIDR_RESERVATION
    assert plan.worker_ranges == (
        AddressRange(a("10.0.4.4"), a("10.0.4.63")),
        AddressRange(a("10.0.4.128"), a("10.0.4.254")),
    )
    assert (plan.worker_capacity, plan.pod_capacity) == (60 + 127, 64)
    assert ipam(plan)["range_start"] == "10.0.4.64"
    assert ipam(plan)["range_end"] == "10.0.4.127"


def test_given_a_pod_range_at_the_top_when_planning_then_the_broadcast_address_is_a_note_and_kept_out() -> None:
    # The layout the docs used to recommend: the subnet's last address is AWS-reserved and inside the range.
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.192/26")])
    assert plan.conflicts == ()
    assert plan.notes == (
        "10.0.4.255 (AWS-reserved) is inside the pod range 10.0.4.192 - 10.0.4.255: kept out of whereabouts",
    )
    assert (ipam(plan)["range_start"], ipam(plan)["range_end"], ipam(plan)["exclude"]) == (
        "10.0.4.192",
        "10.0.4.254",
        [],
    )
    assert plan.pod_capacity == 63


def test_given_a_pod_range_at_the_bottom_when_planning_then_the_four_first_addresses_are_a_note_and_kept_out() -> None:
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.0/27")])
    assert plan.conflicts == ()
    assert plan.notes == (
        "10.0.4.0, 10.0.4.1, 10.0.4.2, 10.0.4.3 (AWS-reserved) are inside the pod range 10.0.4.0 - 10.0.4.31: "
        "kept out of whereabouts",
    )
    assert (ipam(plan)["range_start"], ipam(plan)["exclude"]) == ("10.0.4.4", [])


def test_given_overlapping_pod_ranges_when_planning_then_it_is_a_conflict() -> None:
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.64/26"), IPv4Network("10.0.4.96/27")])
    assert ConflictKind.POD_RANGES_OVERLAP in kinds(plan)


def test_given_two_pod_ranges_when_rendering_whereabouts_then_one_range_with_the_gap_excluded() -> None:
    # ipRanges would give every pod one address per entry: two IPv4 addresses. One range, the gap in exclude.
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.64/27"), IPv4Network("10.0.4.160/27")])
    assert plan.whereabouts() == {
        "type": "whereabouts",
        "range": "10.0.4.0/24",
        "range_start": "10.0.4.64",
        "range_end": "10.0.4.191",
        "exclude": ["10.0.4.96/27", "10.0.4.128/27"],
    }


def test_given_pod_ranges_given_out_of_order_with_reserved_and_held_addresses_then_one_range_excludes_them_all() -> (
    None
):
    plan = plan_subnet(
        NET,
        pod_ranges=[IPv4Network("10.0.4.224/27"), IPv4Network("10.0.4.0/28"), IPv4Network("10.0.4.100/30")],
        enis=[eni("eni-05", "10.0.4.20", "10.0.4.101")],
    )
    assert ipam(plan) == {
        "type": "whereabouts",
        "range": "10.0.4.0/24",
        "range_start": "10.0.4.4",
        "range_end": "10.0.4.254",
        "exclude": [
            "10.0.4.16/28",
            "10.0.4.32/27",
            "10.0.4.64/27",
            "10.0.4.96/30",
            "10.0.4.101/32",
            "10.0.4.104/29",
            "10.0.4.112/28",
            "10.0.4.128/26",
            "10.0.4.192/27",
        ],
    }
    assert plan.pod_capacity == 12 + 3 + 31 == len(whereabouts_hands_out(ipam(plan)))


def test_given_a_pod_range_outside_the_subnet_when_planning_then_plan_error() -> None:
    with pytest.raises(PlanError, match="not inside subnet"):
        plan_subnet(NET, pod_ranges=[IPv4Network("10.0.5.0/26")])


def test_given_live_reservations_without_the_pod_range_when_planning_then_missing_reservation() -> None:
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.64/26")], reservations=[explicit("10.0.4.128/26")])
    assert kinds(plan) == [ConflictKind.MISSING_RESERVATION]


def test_given_the_live_reservation_when_planning_with_its_range_then_no_conflict() -> None:
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.64/26")], reservations=[explicit("10.0.4.64/26")])
    assert plan.conflicts == ()


def test_given_only_live_explicit_reservations_when_planning_then_they_are_the_pod_ranges() -> None:
    plan = plan_subnet(NET, reservations=[explicit("10.0.4.128/25")])
    assert plan.mode is PlanMode.CIDR_RESERVATION
    assert plan.pod_ranges == (AddressRange(a("10.0.4.128"), a("10.0.4.255")),)
    assert plan.notes


@pytest.mark.parametrize(
    "arguments",
    [{}, {"worker_bound": a("10.0.4.63"), "pod_ranges": [IPv4Network("10.0.4.64/26")]}],
)
def test_given_no_mode_or_both_when_planning_then_plan_error(arguments: dict[str, Any]) -> None:
    with pytest.raises(PlanError, match="worker bound"):
        plan_subnet(NET, **arguments)


# --- live ENIs ---------------------------------------------------------------------------------------------


def test_given_our_worker_inside_the_pod_range_when_planning_then_conflict_named_and_address_excluded() -> None:
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), enis=[eni("eni-01", "10.0.4.70", tags=OURS)])
    assert kinds(plan) == [ConflictKind.WORKER_IN_POD_RANGE]
    assert "eni-01" in str(plan.conflicts[0])
    assert "i-0abc" in str(plan.conflicts[0])
    assert ipam(plan)["exclude"] == ["10.0.4.70/32"]
    assert plan.pod_capacity == 190


def test_given_pod_addresses_on_our_worker_eni_when_planning_then_they_are_not_conflicts() -> None:
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), enis=[eni("eni-01", "10.0.4.4", "10.0.4.64", tags=OURS)])
    assert plan.conflicts == ()
    assert plan.workers_in_use == 1


def test_given_a_foreign_eni_in_the_pod_range_when_planning_then_address_in_use_conflict() -> None:
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), enis=[eni("eni-02", "10.0.4.4", "10.0.4.100")])
    assert kinds(plan) == [ConflictKind.ADDRESS_IN_USE_IN_POD_RANGE]
    assert ipam(plan)["exclude"] == ["10.0.4.100/32"]


def test_given_another_stacks_eni_when_planning_with_an_owner_then_it_counts_as_foreign() -> None:
    other = eni("eni-03", "10.0.4.10", "10.0.4.90", tags={OWNER_TAG: "stack-b"})
    assert kinds(plan_subnet(NET, worker_bound=a("10.0.4.63"), enis=[other], owner="stack-a")) == [
        ConflictKind.ADDRESS_IN_USE_IN_POD_RANGE
    ]
    assert plan_subnet(NET, worker_bound=a("10.0.4.63"), enis=[other]).conflicts == ()


def test_given_an_eni_prefix_in_the_pod_range_when_planning_then_conflict_and_prefix_excluded() -> None:
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), enis=[eni("eni-04", "10.0.4.5", prefixes=("10.0.4.96/28",))])
    assert kinds(plan) == [ConflictKind.ADDRESS_IN_USE_IN_POD_RANGE]
    assert ipam(plan)["exclude"] == ["10.0.4.96/28"]


# --- IPv6 and properties -----------------------------------------------------------------------------------


def test_given_an_ipv6_subnet_when_planning_static_then_capacities_are_computed_without_enumerating() -> None:
    net = IPv6Network("2001:db8:1:2::/64")
    plan = plan_subnet(net, worker_bound=IPv6Address("2001:db8:1:2::ff"))
    assert plan.worker_capacity == 0xFF - 3
    assert plan.pod_capacity == 2**64 - 5 - plan.worker_capacity


@given(prefix=st.integers(16, 28), offset=st.integers(0, 2**16))
def test_given_any_static_plan_then_workers_pods_and_reserved_partition_the_subnet(prefix: int, offset: int) -> None:
    net = IPv4Network(f"10.0.0.0/{prefix}")
    bound = a("10.0.0.4") + offset % (net.num_addresses - 5)
    plan = plan_subnet(net, worker_bound=bound)
    assert plan.worker_capacity + plan.pod_capacity + len(plan.aws_reserved) == net.num_addresses
    assert all(int(r.first) > int(bound) for r in plan.pod_ranges)


@given(prefix=st.integers(22, 28), reservation_prefix=st.integers(24, 32), index=st.integers(0, 2**10))
def test_given_any_pod_range_then_pods_never_get_a_reserved_or_worker_address(
    prefix: int, reservation_prefix: int, index: int
) -> None:
    net = IPv4Network(f"10.0.0.0/{prefix}")
    subnets = list(net.subnets(new_prefix=max(reservation_prefix, prefix)))
    pod_range = subnets[index % len(subnets)]
    plan = plan_subnet(net, pod_ranges=[pod_range])
    pods = pod_addresses(plan)
    workers = {v for r in plan.worker_ranges for v in range(int(r.first), int(r.last) + 1)}
    assert not pods & {int(x) for x in aws_reserved(net)}
    assert not pods & workers
    assert len(pods) == plan.pod_capacity


@st.composite
def pod_range_sets(draw: st.DrawFn) -> tuple[IPv4Network, list[IPv4Network]]:
    """A subnet of /22 to /28 and one to four disjoint pod ranges inside it, in any order."""
    net = IPv4Network(f"10.0.0.0/{draw(st.integers(22, 28))}")
    chosen: list[IPv4Network] = []
    for _ in range(draw(st.integers(1, 4))):
        size = draw(st.integers(max(net.prefixlen, 24), 32))
        candidates = list(net.subnets(new_prefix=size))
        candidate = candidates[draw(st.integers(0, len(candidates) - 1))]
        if not any(candidate.overlaps(other) for other in chosen):
            chosen.append(candidate)
    return net, chosen


@given(case=pod_range_sets(), held=st.lists(st.integers(0, 1023), max_size=6))
def test_given_any_set_of_pod_ranges_then_one_whereabouts_range_hands_out_exactly_the_free_pod_addresses(
    case: tuple[IPv4Network, list[IPv4Network]], held: list[int]
) -> None:
    net, pod_ranges = case
    foreign = eni("eni-07", *(str(net[n % net.num_addresses]) for n in held)) if held else None
    plan = plan_subnet(net, pod_ranges=pod_ranges, enis=[foreign] if foreign else [])
    block = plan.whereabouts()
    if plan.pod_capacity == 0:
        assert block is None
        return
    assert block is not None
    assert "ipRanges" not in block, "one family: one range, else every pod gets one address per entry"
    assert block["range"] == str(net)
    handed_out = whereabouts_hands_out(block)
    in_pod_ranges = {v for r in pod_ranges for v in range(int(r.network_address), int(r.broadcast_address) + 1)}
    taken = {int(x) for x in aws_reserved(net)} | {int(x) for x in (foreign.private_ipv4s if foreign else ())}
    assert handed_out == in_pod_ranges - taken
    assert not handed_out & {v for r in plan.worker_ranges for v in range(int(r.first), int(r.last) + 1)}
    assert len(handed_out) == plan.pod_capacity


# --- dual stack, exclusions, notes ---------------------------------------------------------------------------

NET6 = IPv6Network("2600:1f18:1:4::/64")


def test_given_ipv4_and_ipv6_pod_ranges_when_planning_a_dual_stack_subnet_then_ip_ranges_has_one_entry_each() -> None:
    plan = plan_networks(
        [NET6, NET],
        pod_ranges=[IPv4Network("10.0.4.64/26"), IPv6Network("2600:1f18:1:4:1::/80"), IPv4Network("10.0.4.128/25")],
    )
    assert [f.network for f in plan.families] == [NET, NET6]
    assert ipam(plan) == {
        "type": "whereabouts",
        "ipRanges": [
            {"range": "10.0.4.0/24", "range_start": "10.0.4.64", "range_end": "10.0.4.254", "exclude": []},
            {
                "range": "2600:1f18:1:4::/64",
                "range_start": "2600:1f18:1:4:1::",
                "range_end": "2600:1f18:1:4:1:ffff:ffff:ffff",
                "exclude": [],
            },
        ],
    }


def test_given_two_ipv6_pod_ranges_when_planning_then_one_ipv6_range_with_the_gap_excluded() -> None:
    plan = plan_networks([NET6], pod_ranges=[IPv6Network("2600:1f18:1:4:1::/80"), IPv6Network("2600:1f18:1:4:3::/80")])
    assert ipam(plan) == {
        "type": "whereabouts",
        "range": "2600:1f18:1:4::/64",
        "range_start": "2600:1f18:1:4:1::",
        "range_end": "2600:1f18:1:4:3:ffff:ffff:ffff",
        "exclude": ["2600:1f18:1:4:2::/80"],
    }


def test_given_a_dual_stack_subnet_with_ipv4_pods_only_then_a_note_and_a_plain_ipv4_block() -> None:
    plan = plan_networks([NET, NET6], worker_bound=a("10.0.4.63"))
    assert [f.network for f in plan.families] == [NET]
    assert plan.notes == ("no IPv6 pod range in 2600:1f18:1:4::/64: pods get no IPv6 address",)
    assert "range" in ipam(plan)


def test_given_a_dual_stack_subnet_whose_ipv6_range_is_all_taken_then_no_block_at_all() -> None:
    plan = plan_networks(
        [NET, NET6],
        worker_bound=a("10.0.4.63"),
        pod_ranges=[IPv6Network("2600:1f18:1:4:1::/126")],
        exclude=[IPv6Network("2600:1f18:1:4:1::/126")],
    )
    assert kinds(plan) == [ConflictKind.NO_POD_CAPACITY]
    assert plan.whereabouts() is None
    assert "No whereabouts block: no address is left for pods in 2600:1f18:1:4::/64." in render(plan)


def test_given_a_static_ipv4_bound_and_an_ipv6_pod_range_then_each_family_has_its_mode() -> None:
    plan = plan_networks([NET, NET6], worker_bound=a("10.0.4.63"), pod_ranges=[IPv6Network("2600:1f18:1:4:1::/80")])
    assert [f.mode for f in plan.families] == [PlanMode.STATIC, PlanMode.CIDR_RESERVATION]


@pytest.mark.parametrize(
    ("networks", "arguments", "message"),
    [
        ([NET], {"pod_ranges": [IPv6Network("2600::/80")]}, "has no IPv6 CIDR block"),
        ([NET6], {"worker_bound": a("10.0.4.63")}, "has no IPv4 CIDR block"),
        ([NET, IPv4Network("10.0.5.0/24")], {"worker_bound": a("10.0.4.63")}, "one CIDR block per address family"),
        ([NET], {"worker_bound": a("10.0.4.63"), "pod_ranges": [IPv4Network("10.0.4.64/26")]}, "not both"),
        ([NET], {}, "give a worker bound"),
        (
            [NET, NET6],
            {"worker_bound": a("10.0.4.63"), "exclude": [IPv6Network("2600:1f18:1:4::10/128")]},
            "no IPv6 pods are planned",
        ),
        ([NET], {"worker_bound": a("10.0.4.63"), "exclude": [IPv4Network("10.0.5.250/32")]}, "not inside subnet"),
    ],
)
def test_given_inputs_that_describe_no_plan_when_planning_networks_then_plan_error(
    networks: list[IPNetwork], arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(PlanError, match=message):
        plan_networks(networks, **arguments)


def test_given_an_exclusion_in_the_pod_range_when_planning_then_it_is_excluded_and_capacity_shrinks() -> None:
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), exclude=[IPv4Network("10.0.4.250/32")])
    assert ipam(plan)["exclude"] == ["10.0.4.250/32"]
    assert plan.pod_capacity == 190
    assert plan.conflicts == ()


def test_given_an_exclusion_outside_the_pod_range_when_planning_then_a_note_says_it_changes_nothing() -> None:
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), exclude=[IPv4Network("10.0.4.10/32")])
    assert plan.notes == ("exclusion 10.0.4.10/32 is outside the pod range: nothing to exclude",)
    assert ipam(plan)["exclude"] == []
    assert (plan.exclude, plan.pod_capacity) == ((), 191)


def test_given_an_ipv6_pod_range_above_the_first_half_of_the_64_then_a_note_on_older_whereabouts() -> None:
    plan = plan_subnet(NET6, pod_ranges=[IPv6Network("2600:1f18:1:4:8000::/80")])
    (note,) = plan.notes
    assert "reaches above 2600:1f18:1:4:7fff:ffff:ffff:ffff" in note
    assert "first /65" in note
    assert plan.conflicts == ()
    assert plan_subnet(NET6, pod_ranges=[IPv6Network("2600:1f18:1:4:7fff::/80")]).notes == ()


def test_given_families_out_of_order_or_repeated_when_making_a_plan_then_value_error() -> None:
    v4, v6 = (
        plan_subnet(NET, worker_bound=a("10.0.4.63")),
        plan_subnet(NET6, pod_ranges=[IPv6Network("2600:1f18:1:4:1::/80")]),
    )
    for families in [(), (v6, v4), (v4, v4)]:
        with pytest.raises(ValueError, match="one family per IP version"):
            Plan(families)


# --- the command, offline ------------------------------------------------------------------------------------


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def whereabouts_block(output: str) -> dict[str, Any]:
    block: dict[str, Any] = json.loads(output[output.index("{") :])
    return block


def test_given_a_cidr_and_bound_when_running_plan_then_report_and_pasteable_block_exit_0() -> None:
    code, out, _ = run("plan", "--cidr", "10.0.4.0/24", "--worker-bound", "10.0.4.63")
    assert code == EXIT_OK
    assert "workers       10.0.4.4 - 10.0.4.63  (60 addresses)" in out
    assert "pods          10.0.4.64 - 10.0.4.254  (191 addresses)" in out
    assert "10.0.4.0, 10.0.4.1, 10.0.4.2, 10.0.4.3, 10.0.4.255" in out
    assert whereabouts_block(out)["range_start"] == "10.0.4.64"


def test_given_overlapping_pod_ranges_when_running_plan_then_conflicts_listed_exit_1() -> None:
    code, out, _ = run("plan", "--cidr", "10.0.4.0/24", "--pod-range", "10.0.4.64/26", "--pod-range", "10.0.4.96/27")
    assert code == EXIT_CONFLICTS
    assert "pod-ranges-overlap" in out


def test_given_a_pod_range_holding_the_subnet_s_last_address_when_running_plan_then_a_note_and_exit_0() -> None:
    code, out, err = run("plan", "--cidr", "10.0.4.0/24", "--pod-range", "10.0.4.192/26")
    assert (code, err) == (EXIT_OK, "")
    assert "  note: 10.0.4.255 (AWS-reserved) is inside the pod range" in out
    assert "Conflicts: none" in out
    assert whereabouts_block(out)["range_end"] == "10.0.4.254"


def test_given_several_pod_ranges_when_running_plan_then_one_range_not_ip_ranges() -> None:
    code, out, _ = run("plan", "--cidr", "10.0.4.0/24", "--pod-range", "10.0.4.64/27", "--pod-range", "10.0.4.160/27")
    assert code == EXIT_OK
    block = whereabouts_block(out)
    assert "ipRanges" not in block
    assert block["exclude"] == ["10.0.4.96/27", "10.0.4.128/27"]


def test_given_a_dual_stack_cidr_pair_when_running_plan_then_ip_ranges_one_per_family() -> None:
    code, out, _ = run(
        "plan",
        "--cidr",
        "10.0.4.0/24",
        "--cidr",
        str(NET6),
        "--worker-bound",
        "10.0.4.63",
        "--pod-range",
        "2600:1f18:1:4:1::/80",
    )
    assert code == EXIT_OK
    assert [entry["range"] for entry in whereabouts_block(out)["ipRanges"]] == ["10.0.4.0/24", str(NET6)]


def test_given_nothing_left_for_pods_when_running_plan_then_message_no_block_and_exit_1() -> None:
    code, out, err = run("plan", "--cidr", "10.0.4.0/24", "--worker-bound", "10.0.4.254")
    assert (code, err) == (EXIT_CONFLICTS, "")
    assert out.endswith("No whereabouts block: no address is left for pods in 10.0.4.0/24.\n")
    assert "{" not in out


def test_given_an_exclusion_when_running_plan_then_the_block_excludes_it() -> None:
    code, out, _ = run("plan", "--cidr", "10.0.4.0/24", "--worker-bound", "10.0.4.63", "--exclude", "10.0.4.250/32")
    assert code == EXIT_OK
    assert whereabouts_block(out)["exclude"] == ["10.0.4.250/32"]


@pytest.mark.parametrize(
    "argv",
    [
        ("plan", "--cidr", "10.0.4.0/24"),
        ("plan", "--cidr", "10.0.4.0/24", "--pod-range", "10.0.9.0/26"),
        ("plan", "--cidr", "10.0.4.0/24", "--worker-bound", "10.0.4.63", "--pod-range", "10.0.4.64/26"),
        ("plan", "--cidr", "10.0.4.0/24", "--cidr", "10.0.5.0/24", "--worker-bound", "10.0.4.63"),
        ("plan", "--cidr", "10.0.4.0/24", "--worker-bound", "10.0.4.63", "--exclude", "10.0.9.1/32"),
    ],
)
def test_given_arguments_that_describe_no_plan_when_running_then_message_and_exit_2(argv: tuple[str, ...]) -> None:
    code, out, err = run(*argv)
    assert code == EXIT_USAGE
    assert out == ""
    assert err.startswith("plan: ")


@pytest.mark.parametrize(
    "argv",
    [("plan", "--cidr", "10.0.4.0/33"), ("plan", "--subnet-id", "subnet-xyz"), ("plan", "--worker-bound", "10.0.4.63")],
)
def test_given_malformed_arguments_when_running_then_argparse_refuses_them_with_exit_2(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(*argv)
    assert exit_info.value.code == EXIT_USAGE


# --- the command, when the live subnet cannot be read (exit 3, one line on stderr) -------------------------------

SUBNET = "subnet-0123456789abcdef0"


@pytest.fixture
def no_aws_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No region, no credentials, no config files and no instance metadata, as on a fresh laptop or CI runner."""
    for variable in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def assert_unreadable(result: tuple[int, str, str], why: str) -> None:
    code, out, err = result
    assert (code, out) == (EXIT_UNREADABLE, "")
    assert err.startswith(f"plan: could not read {SUBNET}: ")
    assert why in err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.mark.usefixtures("no_aws_configuration")
def test_given_no_region_when_planning_a_live_subnet_then_one_line_and_exit_3() -> None:
    assert_unreadable(run("plan", "--subnet-id", SUBNET, "--worker-bound", "10.0.4.63"), "no AWS region: give --region")


@pytest.mark.usefixtures("no_aws_configuration")
def test_given_no_credentials_when_planning_a_live_subnet_then_one_line_and_exit_3() -> None:
    result = run("plan", "--subnet-id", SUBNET, "--worker-bound", "10.0.4.63", "--region", "us-east-1")
    assert_unreadable(result, "DescribeSubnets failed: NoCredentialsError: Unable to locate credentials")


@pytest.mark.usefixtures("no_aws_configuration")
def test_given_a_profile_that_does_not_exist_when_planning_a_live_subnet_then_one_line_and_exit_3(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nobody")
    result = run("plan", "--subnet-id", SUBNET, "--worker-bound", "10.0.4.63", "--region", "us-east-1")
    assert_unreadable(result, "ProfileNotFound: The config profile (nobody) could not be found")


@pytest.fixture
def stubbed_ec2() -> Iterator[tuple[EC2Client, Stubber]]:
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    client: EC2Client = session.client("ec2", config=retry_config(1))
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def run_stubbed(client: EC2Client) -> tuple[int, str, str]:
    def factory(_region: str | None) -> Ec2:
        return Ec2Adapter(client)

    out, err = io.StringIO(), io.StringIO()
    code = main(["plan", "--subnet-id", SUBNET, "--worker-bound", "10.0.4.63"], out=out, err=err, ec2_factory=factory)
    return code, out.getvalue(), err.getvalue()


def test_given_access_denied_when_planning_a_live_subnet_then_the_needed_actions_are_named_and_exit_3(
    stubbed_ec2: tuple[EC2Client, Stubber],
) -> None:
    client, stubber = stubbed_ec2
    stubber.add_client_error(
        "describe_subnets",
        service_error_code="UnauthorizedOperation",
        service_message="You are not authorized to perform this operation.\nUser: arn:aws:iam::1:user/x",
        http_status_code=403,
        expected_params={"SubnetIds": [SUBNET]},
    )
    assert_unreadable(
        run_stubbed(client),
        "DescribeSubnets failed: UnauthorizedOperation: You are not authorized to perform this operation. User: "
        "arn:aws:iam::1:user/x (the plan needs ec2:DescribeSubnets, ec2:DescribeNetworkInterfaces, "
        "ec2:GetSubnetCidrReservations)",
    )


def test_given_a_subnet_that_does_not_exist_when_planning_live_then_one_line_and_exit_3(
    stubbed_ec2: tuple[EC2Client, Stubber],
) -> None:
    client, stubber = stubbed_ec2
    stubber.add_client_error(
        "describe_subnets",
        service_error_code="InvalidSubnetID.NotFound",
        service_message=f"The subnet ID '{SUBNET}' does not exist",
        http_status_code=400,
        expected_params={"SubnetIds": [SUBNET]},
    )
    assert_unreadable(run_stubbed(client), "no such subnet in this account and region (InvalidSubnetID.NotFound)")


def test_given_access_denied_on_the_reservations_when_planning_live_then_exit_3_not_a_partial_plan(
    stubbed_ec2: tuple[EC2Client, Stubber],
) -> None:
    client, stubber = stubbed_ec2
    subnet = {"SubnetId": SUBNET, "AvailabilityZone": "us-east-1a", "VpcId": "vpc-1", "CidrBlock": "10.0.4.0/24"}
    stubber.add_response("describe_subnets", {"Subnets": [subnet]}, {"SubnetIds": [SUBNET]})
    stubber.add_response(
        "describe_network_interfaces",
        {"NetworkInterfaces": []},
        {"Filters": [{"Name": "subnet-id", "Values": [SUBNET]}], "MaxResults": 1000},
    )
    stubber.add_client_error(
        "get_subnet_cidr_reservations",
        service_error_code="UnauthorizedOperation",
        service_message="You are not authorized to perform this operation.",
        http_status_code=403,
        expected_params={"SubnetId": SUBNET, "MaxResults": 1000},
    )
    assert_unreadable(run_stubbed(client), "GetSubnetCidrReservations failed: UnauthorizedOperation")


# --- ranges, conflicts and messages an operator reads --------------------------------------------------------


def test_given_an_ipv4_range_then_only_ipv4_addresses_inside_it_are_in_it() -> None:
    pods = AddressRange(a("10.0.4.64"), a("10.0.4.127"))
    assert a("10.0.4.64") in pods
    assert a("10.0.4.127") in pods
    assert a("10.0.4.128") not in pods
    assert IPv6Address("::a00:440") not in pods, "the same integer in another family"
    assert "10.0.4.70" not in pods


def test_given_a_network_that_touches_a_range_at_either_end_then_it_overlaps_it() -> None:
    pods = AddressRange(a("10.0.4.64"), a("10.0.4.127"))
    assert pods.overlaps(IPv4Network("10.0.4.127/32"))
    assert pods.overlaps(IPv4Network("10.0.4.64/32"))
    assert not pods.overlaps(IPv4Network("10.0.4.60/30"))  # .60 - .63: ends right below
    assert not pods.overlaps(IPv4Network("10.0.4.128/25"))


def test_given_a_range_of_one_address_when_shown_then_it_is_that_address() -> None:
    assert str(AddressRange(a("10.0.4.9"), a("10.0.4.9"))) == "10.0.4.9"
    assert str(AddressRange(a("10.0.4.9"), a("10.0.4.10"))) == "10.0.4.9 - 10.0.4.10"


def test_given_a_bound_and_pod_ranges_when_planning_then_the_error_asks_for_one_of_them() -> None:
    with pytest.raises(PlanError) as raised:
        plan_subnet(NET, worker_bound=a("10.0.4.63"), pod_ranges=[IPv4Network("10.0.4.64/26")])
    assert str(raised.value) == (
        "give a worker bound (static mode) or pod ranges (cidr-reservation mode) for IPv4, not both"
    )


def test_given_neither_a_bound_nor_pod_ranges_when_planning_then_the_error_names_both_modes() -> None:
    expected = "give a worker bound (static mode) or pod ranges / explicit reservations (cidr-reservation)"
    with pytest.raises(PlanError) as raised:
        plan_subnet(NET)
    assert str(raised.value) == expected
    with pytest.raises(PlanError) as raised:
        plan_networks([NET])
    assert str(raised.value) == expected


def test_given_a_bound_in_another_subnet_when_planning_then_it_is_not_inside_the_subnet() -> None:
    with pytest.raises(PlanError) as raised:
        plan_subnet(NET, worker_bound=a("10.0.5.10"))
    assert str(raised.value) == "worker bound 10.0.5.10 is not inside subnet 10.0.4.0/24"


def test_given_overlapping_pod_ranges_when_planning_then_the_conflict_names_them() -> None:
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.64/26"), IPv4Network("10.0.4.96/27")])
    assert [str(c) for c in plan.conflicts] == ["pod-ranges-overlap: 10.0.4.64/26, 10.0.4.96/27 overlap"]


def test_given_live_explicit_and_prefix_reservations_when_planning_then_only_the_explicit_ones_are_pod_ranges() -> None:
    prefix = Reservation(reservation_id="scr-2", cidr=IPv4Network("10.0.4.16/28"), kind="prefix")
    plan = plan_subnet(NET, reservations=[explicit("10.0.4.128/25"), prefix])
    assert plan.pod_ranges == (AddressRange(a("10.0.4.128"), a("10.0.4.255")),)
    assert plan.notes[0] == "pod ranges taken from the subnet's explicit CIDR reservations"


def test_given_a_prefix_reservation_outside_the_pod_range_then_workers_never_get_its_addresses() -> None:
    # EC2 assigns automatically inside no reservation, explicit or prefix.
    prefix = Reservation(reservation_id="scr-2", cidr=IPv4Network("10.0.4.16/28"), kind="prefix")
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.128/25")], reservations=[explicit("10.0.4.128/25"), prefix])
    assert plan.worker_ranges == (
        AddressRange(a("10.0.4.4"), a("10.0.4.15")),
        AddressRange(a("10.0.4.32"), a("10.0.4.127")),
    )
    assert plan.conflicts == ()


@pytest.mark.parametrize("order", ["explicit-first", "prefix-first"])
def test_given_a_prefix_reservation_overlapping_the_pod_range_in_cidr_reservation_mode_then_it_is_a_conflict(
    order: str,
) -> None:
    prefix = Reservation(reservation_id="scr-2", cidr=IPv4Network("10.0.4.96/28"), kind="prefix")
    reservations = [explicit("10.0.4.64/26"), prefix]
    if order == "prefix-first":
        reservations.reverse()
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.64/26")], reservations=reservations)
    assert [str(c) for c in plan.conflicts] == [
        "reservation-overlaps-pod-range: prefix reservation 10.0.4.96/28 (scr-2) overlaps the pod range "
        "10.0.4.64 - 10.0.4.127"
    ]


def test_given_a_reservation_without_an_id_when_it_conflicts_then_the_conflict_says_so() -> None:
    prefix = Reservation(reservation_id="", cidr=IPv4Network("10.0.4.128/28"), kind="prefix")
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), reservations=[prefix])
    assert [str(c) for c in plan.conflicts] == [
        "reservation-overlaps-pod-range: prefix reservation 10.0.4.128/28 (no id) overlaps the pod range "
        "10.0.4.64 - 10.0.4.254"
    ]


def test_given_pod_ranges_covering_every_usable_address_then_no_worker_capacity_is_a_conflict() -> None:
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.0/24")])
    assert plan.worker_capacity == 0
    assert [str(c) for c in plan.conflicts] == ["no-worker-capacity: no address is left for workers in 10.0.4.0/24"]


def test_given_one_address_left_for_workers_then_there_is_no_capacity_conflict() -> None:
    pod_ranges = [IPv4Network("10.0.4.0/30"), IPv4Network("10.0.4.5/32"), IPv4Network("10.0.4.6/31")]
    pod_ranges += [IPv4Network("10.0.4.8/29"), IPv4Network("10.0.4.16/28"), IPv4Network("10.0.4.32/27")]
    pod_ranges += [IPv4Network("10.0.4.64/26"), IPv4Network("10.0.4.128/25")]
    plan = plan_subnet(NET, pod_ranges=pod_ranges)
    assert plan.worker_capacity == 1
    assert ConflictKind.NO_WORKER_CAPACITY not in kinds(plan)


def test_given_ipv6_when_a_foreign_eni_holds_an_address_and_a_prefix_in_the_pod_range_then_both_conflict() -> None:
    net6 = IPv6Network("2600:1f18:1:4::/64")
    held = Eni(
        eni_id="eni-06",
        subnet_id="subnet-0123456789abcdef0",
        status="in-use",
        ipv6s=(IPv6Address("2600:1f18:1:4:1::5"),),
        ipv6_prefixes=(IPv6Network("2600:1f18:1:4:1::100/124"),),
    )
    plan = plan_subnet(net6, pod_ranges=[IPv6Network("2600:1f18:1:4:1::/80")], enis=[held])
    pod_range = "2600:1f18:1:4:1:: - 2600:1f18:1:4:1:ffff:ffff:ffff"
    assert [str(c) for c in plan.conflicts] == [
        f"address-in-use-in-pod-range: eni-06 (not attached, not ours) holds 2600:1f18:1:4:1::5 inside the pod range "
        f"{pod_range}",
        f"address-in-use-in-pod-range: eni-06 (not attached) has prefix 2600:1f18:1:4:1::100/124 inside the pod range "
        f"{pod_range}",
    ]
    assert plan.exclude == (IPv6Network("2600:1f18:1:4:1::5/128"), IPv6Network("2600:1f18:1:4:1::100/124"))


def test_given_an_eni_prefix_in_the_pod_range_then_the_conflict_names_the_eni_its_instance_and_the_prefix() -> None:
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), enis=[eni("eni-04", "10.0.4.5", prefixes=("10.0.4.96/28",))])
    assert [str(c) for c in plan.conflicts] == [
        "address-in-use-in-pod-range: eni-04 (i-0abc) has prefix 10.0.4.96/28 inside the pod range "
        "10.0.4.64 - 10.0.4.254"
    ]


def test_given_two_blocks_of_one_family_when_planning_networks_then_the_error_names_them() -> None:
    with pytest.raises(PlanError) as raised:
        plan_networks([NET, IPv4Network("10.0.5.0/24")], worker_bound=a("10.0.4.63"))
    assert str(raised.value) == "one CIDR block per address family, not 10.0.4.0/24, 10.0.5.0/24"


def test_given_a_dual_stack_subnet_with_only_ipv4_explicit_reservations_then_ipv6_gets_a_note_not_a_plan() -> None:
    plan = plan_networks([NET, NET6], reservations=[explicit("10.0.4.128/25")])
    assert [f.network for f in plan.families] == [NET]
    assert plan.notes == (f"no IPv6 pod range in {NET6}: pods get no IPv6 address",)


def test_given_a_dual_stack_subnet_with_only_an_ipv6_pod_range_then_ipv6_is_planned_after_the_ipv4_note() -> None:
    plan = plan_networks([NET, NET6], pod_ranges=[IPv6Network("2600:1f18:1:4:1::/80")])
    assert [f.network for f in plan.families] == [NET6]
    assert plan.notes == (f"no IPv4 pod range in {NET}: pods get no IPv4 address",)


def test_given_an_owner_when_planning_networks_then_another_stacks_eni_counts_as_foreign() -> None:
    other = eni("eni-03", "10.0.4.10", "10.0.4.90", tags={OWNER_TAG: "stack-b"})
    plan = plan_networks([NET], worker_bound=a("10.0.4.63"), enis=[other], owner="stack-a")
    assert kinds(plan) == [ConflictKind.ADDRESS_IN_USE_IN_POD_RANGE]


def test_given_a_detached_foreign_eni_in_the_pod_range_then_the_conflict_says_not_attached() -> None:
    detached = Eni(
        eni_id="eni-08", subnet_id="subnet-0123456789abcdef0", status="available", private_ipv4s=(a("10.0.4.90"),)
    )
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), enis=[detached])
    assert [str(c) for c in plan.conflicts] == [
        "address-in-use-in-pod-range: eni-08 (not attached, not ours) holds 10.0.4.90 inside the pod range "
        "10.0.4.64 - 10.0.4.254"
    ]


def test_given_a_plan_with_conflicts_when_rendered_then_the_subnet_header_comes_first_and_each_conflict_is_listed() -> (
    None
):
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), enis=[eni("eni-01", "10.0.4.70", tags=OURS)])
    lines = render(Plan((plan,))).splitlines()
    assert lines[:6] == [
        "Subnet 10.0.4.0/24 (mode static, workers up to 10.0.4.63)",
        "  AWS-reserved  10.0.4.0, 10.0.4.1, 10.0.4.2, 10.0.4.3, 10.0.4.255  (5 addresses)",
        "  workers       10.0.4.4 - 10.0.4.63  (60 addresses (0 in use))",
        "  pods          10.0.4.64 - 10.0.4.254  (190 addresses)",
        "Conflicts (1):",
        "  - worker-in-pod-range: eni-01 (i-0abc) has worker address 10.0.4.70 inside the pod range "
        "10.0.4.64 - 10.0.4.254",
    ]


def test_given_a_dual_stack_plan_when_rendered_then_both_families_are_shown() -> None:
    plan = plan_networks([NET, NET6], pod_ranges=[IPv4Network("10.0.4.64/26"), IPv6Network("2600:1f18:1:4:1::/80")])
    out = render(plan)
    assert out.startswith("Subnet 10.0.4.0/24 (mode cidr-reservation)\n")
    assert "\nSubnet 2600:1f18:1:4::/64 (mode cidr-reservation)\n" in out


def test_given_no_pod_range_left_when_rendered_then_pods_are_none() -> None:
    out = render(Plan((plan_subnet(NET, worker_bound=a("10.0.4.254")),)))
    assert "\n  pods          none  (0 addresses)\n" in out


def test_given_both_families_without_room_for_pods_when_rendered_then_the_message_names_both_subnets() -> None:
    held = Eni(
        eni_id="eni-09",
        subnet_id="subnet-0123456789abcdef0",
        status="in-use",
        private_ipv4s=tuple(a(f"10.0.4.{n}") for n in (64, 65, 66, 67)),
        ipv6s=tuple(IPv6Address(f"2600:1f18:1:4:1::{n}") for n in range(4)),
    )
    plan = plan_networks(
        [NET, NET6], pod_ranges=[IPv4Network("10.0.4.64/30"), IPv6Network("2600:1f18:1:4:1::/126")], enis=[held]
    )
    assert render(plan).endswith(f"No whereabouts block: no address is left for pods in {NET}, {NET6}.\n")


def test_given_a_plan_without_conflicts_when_rendered_then_the_ranges_and_a_pasteable_block_follow() -> None:
    out = render(Plan((plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.64/26")]),)))
    assert out == (
        "Subnet 10.0.4.0/24 (mode cidr-reservation)\n"
        "  AWS-reserved  10.0.4.0, 10.0.4.1, 10.0.4.2, 10.0.4.3, 10.0.4.255  (5 addresses)\n"
        "  workers       10.0.4.4 - 10.0.4.63, 10.0.4.128 - 10.0.4.254  (187 addresses)\n"
        "  pods          10.0.4.64 - 10.0.4.127  (64 addresses)\n"
        "Conflicts: none\n"
        'whereabouts IPAM for the NetworkAttachmentDefinition (its "ipam" object):\n'
        "{\n"
        '  "type": "whereabouts",\n'
        '  "range": "10.0.4.0/24",\n'
        '  "range_start": "10.0.4.64",\n'
        '  "range_end": "10.0.4.127",\n'
        '  "exclude": []\n'
        "}\n"
    )
