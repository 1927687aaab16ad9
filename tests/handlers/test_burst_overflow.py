"""A burst larger than the free addresses: the launches that fit take the lowest free addresses, and each
launch whose rank is beyond them fails at once by name (InsufficientAddresses, or WorkerRangeExhausted under
WORKER_IP_UPPER_BOUNDS) with the subnet and the numbers, instead of piling onto the lowest address until its
attempts run out (AddressConflictsExhausted).

A /28 leaves 11 addresses to workers (16, minus the 5 AWS reserves).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from ipaddress import IPv4Address
from typing import Any

from localaws import LocalAWS
from tests.handlers.timing import engine_clock
from tests.handlers.world import World, build_world, deliver

FREE_IN_A_28 = 11


def highest_instance_first(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: str(e["detail"]["EC2InstanceId"]), reverse=True)


def creates_by(world: World, instance_id: str) -> int:
    return sum(1 for c in world.aws.calls_to("ec2", "CreateNetworkInterface") if instance_id in c.params.values())


def test_given_a_burst_bigger_than_the_subnet_then_the_overflow_fails_by_name_and_the_rest_continue(
    aws: LocalAWS,
) -> None:
    world = build_world(aws, multus_prefix=28)
    events = world.scale_out(FREE_IN_A_28 + 2)
    runtime = world.runtime(clock=engine_clock(world), FAILURE_RESULT="CONTINUE")  # no replacements join in

    deliveries: list[Callable[[], dict[str, Any]]] = [partial(deliver, runtime, e) for e in events]
    outcomes = [o.get() for o in aws.run_concurrently(deliveries)]

    failed = [(e, o) for e, o in zip(events, outcomes, strict=True) if o["reason"]]
    assert len(failed) == 2
    subnet = world.multus_subnets[0]
    shape = re.compile(
        rf"InsufficientAddresses: (no free IPv4 address left for workers in {subnet} \(10\.0\.4\.0/28\)"
        rf"|\d+ free IPv4 address\(es\) for workers in {subnet} \(10\.0\.4\.0/28\), all taken by the \d+ waiting "
        r"launch\(es\) ahead of this one \(it is #\d+\))"
    )
    for event, outcome in failed:
        assert shape.match(outcome["reason"]), outcome["reason"]
        assert creates_by(world, event["detail"]["EC2InstanceId"]) == 0, "an overflow launch claims nothing"
    assert {e["detail"]["EC2InstanceId"] for e, _ in failed} == {
        e["detail"]["EC2InstanceId"] for e in highest_instance_first(events)[:2]
    }
    for position, subnet_id in enumerate(world.multus_subnets[:2]):
        addresses = sorted(IPv4Address(e["PrivateIpAddress"]) for e in world.our_enis() if e["SubnetId"] == subnet_id)
        assert [str(a) for a in addresses] == [f"10.0.{4 + position}.{host}" for host in range(4, 15)]


def test_given_a_launch_ranked_beyond_the_free_addresses_then_it_is_abandoned_with_the_numbers(aws: LocalAWS) -> None:
    world = build_world(aws, multus_prefix=28)
    last, *_ = highest_instance_first(world.scale_out(FREE_IN_A_28 + 1))

    outcome = deliver(world.runtime(clock=engine_clock(world)), last)

    subnet = world.multus_subnets[0]
    assert outcome["result"] == "ABANDON"
    assert outcome["reason"] == (
        f"InsufficientAddresses: 11 free IPv4 address(es) for workers in {subnet} (10.0.4.0/28), all taken by the "
        "11 waiting launch(es) ahead of this one (it is #12); use a bigger subnet or fewer workers"
    )
    assert world.aws.calls_to("ec2", "CreateNetworkInterface") == []


def test_given_a_worker_bound_and_a_launch_ranked_beyond_it_then_the_worker_range_is_exhausted_by_name(
    world: World,
) -> None:
    subnet = world.multus_subnets[0]
    last, *_ = highest_instance_first(world.scale_out(5))

    outcome = deliver(world.runtime(clock=engine_clock(world), WORKER_IP_UPPER_BOUNDS=f"{subnet}=10.0.4.7"), last)

    assert outcome["result"] == "ABANDON"
    assert outcome["reason"] == (
        f"WorkerRangeExhausted: 4 free IPv4 address(es) for workers in {subnet} (10.0.4.0/24) at or below 10.0.4.7 "
        "(WORKER_IP_UPPER_BOUNDS), all taken by the 4 waiting launch(es) ahead of this one (it is #5); "
        "raise the bound or free addresses"
    )
    assert world.aws.calls_to("ec2", "CreateNetworkInterface") == []
