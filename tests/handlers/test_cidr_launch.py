"""CIDR-reservation function: EC2 assigns worker addresses, never inside the pods' explicit reservations.

The lifecycle engine is shared with the static function; the fault matrix, redelivery, warm-pool and
concurrency tests run for both modes in test_faults_and_redelivery.py. Here: what only this mode does.
"""

from __future__ import annotations

import shlex
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

from localaws import LocalAWS
from multus_ipam.runtime import Mode
from multus_ipam.settings import NO_MANAGE_TAG
from tests.handlers.world import World, build_world, deliver

POD_RANGES = {0: ["10.0.4.128/25"], 1: ["10.0.5.128/25"], 2: ["10.0.6.128/25"]}


def cidr_world(
    aws: LocalAWS, reservations: dict[int, list[str]], *, multus_prefix: int = 24, dual_stack: bool = False
) -> World:
    return build_world(
        aws, mode=Mode.CIDR_RESERVATION, reservations=reservations, multus_prefix=multus_prefix, dual_stack=dual_stack
    )


def test_given_reservations_when_launching_then_ec2_assigns_addresses_outside_them(aws: LocalAWS) -> None:
    world = cidr_world(aws, reservations=POD_RANGES)
    events = world.scale_out(5)
    runtime = world.runtime()

    outcomes = [deliver(runtime, event) for event in events]

    assert [o["result"] for o in outcomes] == ["CONTINUE"] * 5
    ours = world.our_enis()
    assert len(ours) == 10
    for eni in ours:
        (pod_range,) = POD_RANGES[world.multus_subnets.index(eni["SubnetId"])]
        assert IPv4Address(eni["PrivateIpAddress"]) not in IPv4Network(pod_range)
        assert eni["Attachment"]["DeleteOnTermination"] is True
        assert {t["Key"]: t["Value"] for t in eni["TagSet"]}[NO_MANAGE_TAG[0]] == "true"
    creates = world.aws.calls_to("ec2", "CreateNetworkInterface")
    assert all("PrivateIpAddress" not in c.params for c in creates), "the address is EC2's choice in this mode"


def test_given_a_subnet_without_a_reservation_when_launching_then_it_fails_clearly_and_creates_nothing(
    aws: LocalAWS,
) -> None:
    world = cidr_world(aws, reservations={0: ["10.0.4.128/25"]})  # the second subnet of the AZ has none
    (event,) = world.scale_out(1)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "ABANDON"
    assert "MissingReservation" in outcome["reason"]
    assert world.multus_subnets[1] in outcome["reason"]
    assert world.aws.calls_to("ec2", "CreateNetworkInterface") == []
    assert world.our_enis() == []


def test_given_the_expected_reservation_differs_when_launching_then_the_missing_cidr_is_named(aws: LocalAWS) -> None:
    world = cidr_world(aws, reservations=POD_RANGES)
    (event,) = world.scale_out(1)
    first = world.multus_subnets[0]

    outcome = deliver(world.runtime(POD_CIDR_RESERVATIONS=f"{first}=10.0.4.192/26"), event)

    assert outcome["result"] == "ABANDON"
    assert "10.0.4.192/26" in outcome["reason"]
    assert world.our_enis() == []


def test_given_the_expected_reservations_exist_when_launching_then_it_continues(aws: LocalAWS) -> None:
    world = cidr_world(aws, reservations=POD_RANGES)
    (event,) = world.scale_out(1)
    first, second = world.multus_subnets[:2]
    runtime = world.runtime(POD_CIDR_RESERVATIONS=f"{first}=10.0.4.128/25,{second}=10.0.5.128/25")

    assert deliver(runtime, event)["result"] == "CONTINUE"


def fill_worker_range(world: World, subnet_index: int, hosts: range) -> None:
    subnet = world.multus_subnets[subnet_index]
    third = 4 + subnet_index
    for host in hosts:
        world.ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress=f"10.0.{third}.{host}")


def test_given_a_nearly_full_subnet_when_launching_then_no_worker_lands_in_the_reservation(aws: LocalAWS) -> None:
    # /28: .4-.14 usable; the reservation .8/29 leaves .4-.7 for workers, and three are taken.
    world = cidr_world(aws, multus_prefix=28, reservations={0: ["10.0.4.8/29"], 1: ["10.0.5.8/29"]})
    fill_worker_range(world, 0, range(4, 7))
    first, second = world.scale_out(2)
    runtime = world.runtime()

    assert deliver(runtime, first)["result"] == "CONTINUE"
    outcome = deliver(runtime, second)

    first_subnet = [e for e in world.our_enis() if e["SubnetId"] == world.multus_subnets[0]]
    assert [e["PrivateIpAddress"] for e in first_subnet] == ["10.0.4.7"]
    assert outcome["result"] == "ABANDON"
    assert "InsufficientAddresses" in outcome["reason"]
    assert world.multus_subnets[0] in outcome["reason"]
    assert len(world.our_enis()) == 2, "the second launch's ENIs were rolled back; the first's stay"


def test_given_a_full_worker_range_and_failure_result_continue_then_it_rolls_back_and_continues(
    aws: LocalAWS,
) -> None:
    world = cidr_world(aws, multus_prefix=28, reservations={0: ["10.0.4.8/29"], 1: ["10.0.5.8/29"]})
    fill_worker_range(world, 1, range(4, 8))
    (event,) = world.scale_out(1)

    outcome = deliver(world.runtime(FAILURE_RESULT="CONTINUE"), event)

    assert outcome["result"] == "CONTINUE"
    assert "InsufficientAddresses" in outcome["reason"]
    assert world.our_enis() == []


def test_given_a_dual_stack_subnet_when_launching_then_ec2_assigns_an_ipv6_outside_its_reservation(
    aws: LocalAWS,
) -> None:
    world = cidr_world(aws, dual_stack=True, reservations=POD_RANGES)
    v6_pods = {subnet: world.reserve_ipv6_pod_half(subnet) for subnet in world.multus_subnets[:2]}
    (event,) = world.scale_out(1)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "CONTINUE"
    for record in outcome["enis"]:
        pods = v6_pods[record["subnetId"]]
        assert record["ipv6"] is not None
        assert IPv6Address(record["ipv6"]) in IPv6Network(f"{pods.network_address}/64")
        assert IPv6Address(record["ipv6"]) not in pods


def test_given_a_dual_stack_subnet_without_an_ipv6_reservation_then_it_fails_naming_ipv6(aws: LocalAWS) -> None:
    world = cidr_world(aws, dual_stack=True, reservations=POD_RANGES)  # IPv4 pod ranges only
    (event,) = world.scale_out(1)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "ABANDON"
    assert "no explicit IPv6 CIDR reservation" in outcome["reason"]
    assert world.aws.calls_to("ec2", "CreateNetworkInterface") == []


def test_given_the_recommended_split_reserved_with_the_docs_commands_when_launching_then_workers_get_4_to_63(
    aws: LocalAWS,
) -> None:
    """docs/deploy.md, "More reservations than the stack's three": the two `aws ec2 create-subnet-cidr-reservation`
    lines, run for each Multus subnet of the AZ (with that subnet's CIDR), and POD_CIDR_RESERVATIONS naming all
    of them; EC2 then assigns the workers' addresses in .4-.63 only."""
    world = cidr_world(aws, reservations={})
    doc = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    lines = [line for line in doc.splitlines() if line.startswith("aws ec2 create-subnet-cidr-reservation ")]
    assert len(lines) == 2
    pairs: list[str] = []
    for subnet in world.multus_subnets[:2]:
        third = IPv4Network(world.cidrs[subnet]).network_address.packed[2]
        for line in lines:
            argv = shlex.split(line.replace("$SUBNET", subnet).replace("10.0.4.", f"10.0.{third}."))
            options = dict(zip(argv[3::2], argv[4::2], strict=True))
            world.ec2.create_subnet_cidr_reservation(
                SubnetId=options["--subnet-id"],
                Cidr=options["--cidr"],
                ReservationType=options["--reservation-type"],  # type: ignore[arg-type]
                Description=options["--description"],
            )
            pairs.append(f"{subnet}={options['--cidr']}")
    events = world.scale_out(3)
    runtime = world.runtime(POD_CIDR_RESERVATIONS=",".join(pairs))

    outcomes = [deliver(runtime, event) for event in events]

    assert [o["result"] for o in outcomes] == ["CONTINUE"] * 3
    for eni in world.our_enis():
        address = IPv4Address(eni["PrivateIpAddress"])
        assert 4 <= address.packed[3] <= 63, f"{address}: outside the workers' .4-.63"
