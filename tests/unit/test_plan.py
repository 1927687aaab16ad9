"""The subnet plan (pure): ranges, capacities, conflicts and the whereabouts block; the CLI offline."""

from __future__ import annotations

import io
import json
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multus_ipam.__main__ import EXIT_CONFLICTS, EXIT_OK, EXIT_USAGE, main
from multus_ipam.addressing import aws_reserved
from multus_ipam.plan import AddressRange, ConflictKind, PlanError, PlanMode, SubnetPlan, plan_subnet
from multus_ipam.ports import Attachment, Eni, Reservation
from multus_ipam.settings import OWNER_TAG

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


def kinds(plan: SubnetPlan) -> list[ConflictKind]:
    return [c.kind for c in plan.conflicts]


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
    assert plan.whereabouts()["range_start"] == "10.0.4.64"
    assert plan.whereabouts()["range_end"] == "10.0.4.127"


def test_given_a_pod_range_at_the_top_when_planning_then_the_broadcast_address_is_a_conflict_and_excluded() -> None:
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.192/26")])
    assert kinds(plan) == [ConflictKind.POD_RANGE_OVERLAPS_AWS_RESERVED]
    assert plan.whereabouts()["exclude"] == ["10.0.4.255/32"]
    assert plan.pod_capacity == 63


def test_given_a_pod_range_at_the_bottom_when_planning_then_the_four_first_addresses_are_conflicts() -> None:
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.0/27")])
    assert kinds(plan) == [ConflictKind.POD_RANGE_OVERLAPS_AWS_RESERVED] * 4
    assert plan.whereabouts()["exclude"] == ["10.0.4.0/30"]


def test_given_overlapping_pod_ranges_when_planning_then_it_is_a_conflict() -> None:
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.64/26"), IPv4Network("10.0.4.96/27")])
    assert ConflictKind.POD_RANGES_OVERLAP in kinds(plan)


def test_given_two_pod_ranges_when_rendering_whereabouts_then_ip_ranges_with_their_own_exclusions() -> None:
    plan = plan_subnet(NET, pod_ranges=[IPv4Network("10.0.4.64/27"), IPv4Network("10.0.4.224/27")])
    assert plan.whereabouts() == {
        "type": "whereabouts",
        "ipRanges": [
            {"range": "10.0.4.0/24", "range_start": "10.0.4.64", "range_end": "10.0.4.95", "exclude": []},
            {
                "range": "10.0.4.0/24",
                "range_start": "10.0.4.224",
                "range_end": "10.0.4.255",
                "exclude": ["10.0.4.255/32"],
            },
        ],
    }


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
    assert plan.whereabouts()["exclude"] == ["10.0.4.70/32"]
    assert plan.pod_capacity == 190


def test_given_pod_addresses_on_our_worker_eni_when_planning_then_they_are_not_conflicts() -> None:
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), enis=[eni("eni-01", "10.0.4.4", "10.0.4.64", tags=OURS)])
    assert plan.conflicts == ()
    assert plan.workers_in_use == 1


def test_given_a_foreign_eni_in_the_pod_range_when_planning_then_address_in_use_conflict() -> None:
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), enis=[eni("eni-02", "10.0.4.4", "10.0.4.100")])
    assert kinds(plan) == [ConflictKind.ADDRESS_IN_USE_IN_POD_RANGE]
    assert plan.whereabouts()["exclude"] == ["10.0.4.100/32"]


def test_given_another_stacks_eni_when_planning_with_an_owner_then_it_counts_as_foreign() -> None:
    other = eni("eni-03", "10.0.4.10", "10.0.4.90", tags={OWNER_TAG: "stack-b"})
    assert kinds(plan_subnet(NET, worker_bound=a("10.0.4.63"), enis=[other], owner="stack-a")) == [
        ConflictKind.ADDRESS_IN_USE_IN_POD_RANGE
    ]
    assert plan_subnet(NET, worker_bound=a("10.0.4.63"), enis=[other]).conflicts == ()


def test_given_an_eni_prefix_in_the_pod_range_when_planning_then_conflict_and_prefix_excluded() -> None:
    plan = plan_subnet(NET, worker_bound=a("10.0.4.63"), enis=[eni("eni-04", "10.0.4.5", prefixes=("10.0.4.96/28",))])
    assert kinds(plan) == [ConflictKind.ADDRESS_IN_USE_IN_POD_RANGE]
    assert plan.whereabouts()["exclude"] == ["10.0.4.96/28"]


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


def test_given_a_conflicting_pod_range_when_running_plan_then_conflicts_listed_exit_1() -> None:
    code, out, _ = run("plan", "--cidr", "10.0.4.0/24", "--pod-range", "10.0.4.192/26")
    assert code == EXIT_CONFLICTS
    assert "pod-range-overlaps-aws-reserved" in out


@pytest.mark.parametrize(
    "argv",
    [
        ("plan", "--cidr", "10.0.4.0/24"),
        ("plan", "--cidr", "10.0.4.0/24", "--pod-range", "10.0.9.0/26"),
    ],
)
def test_given_arguments_that_describe_no_plan_when_running_then_message_and_exit_2(argv: tuple[str, ...]) -> None:
    code, out, err = run(*argv)
    assert code == EXIT_USAGE
    assert out == ""
    assert err.startswith("plan: ")


def test_given_a_malformed_cidr_when_running_then_argparse_refuses_it() -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("plan", "--cidr", "10.0.4.0/33")
    assert exit_info.value.code == EXIT_USAGE
