"""`python -m multus_ipam plan --subnet-id` against the local AWS: it reads the subnet, its ENIs and its
reservations through the same Ec2Adapter the functions use."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv6Network
from typing import Any

import pytest

from localaws import LocalAWS
from multus_ipam.__main__ import EXIT_CONFLICTS, EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE, main
from multus_ipam.settings import NO_MANAGE_TAG, OWNER_TAG

REGION = "us-east-1"


@dataclass(frozen=True)
class Subnet:
    aws: LocalAWS
    ec2: Any
    subnet_id: str

    def eni(self, address: str, *secondary: str, owner: str | None = None) -> str:
        tags = [{"Key": OWNER_TAG, "Value": owner}, {"Key": NO_MANAGE_TAG[0], "Value": NO_MANAGE_TAG[1]}]
        response = self.ec2.create_network_interface(
            SubnetId=self.subnet_id,
            PrivateIpAddresses=[
                {"PrivateIpAddress": address, "Primary": True},
                *({"PrivateIpAddress": x, "Primary": False} for x in secondary),
            ],
            TagSpecifications=[{"ResourceType": "network-interface", "Tags": tags if owner else []}],
        )
        eni_id: str = response["NetworkInterface"]["NetworkInterfaceId"]
        return eni_id

    def reserve(self, cidr: str) -> None:
        self.ec2.create_subnet_cidr_reservation(SubnetId=self.subnet_id, Cidr=cidr, ReservationType="explicit")


@pytest.fixture
def dual_stack() -> Iterator[tuple[Subnet, IPv6Network]]:
    """A dual-stack subnet 10.0.4.0/24 + an Amazon-provided /64."""
    with LocalAWS(region=REGION) as aws:
        ec2 = aws.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]["VpcId"]
        block = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
        ipv6 = IPv6Network(block.replace("/56", "/64"))
        subnet_id = ec2.create_subnet(
            VpcId=vpc, CidrBlock="10.0.4.0/24", Ipv6CidrBlock=str(ipv6), AvailabilityZone=f"{REGION}a"
        )["Subnet"]["SubnetId"]
        yield Subnet(aws, ec2, subnet_id), ipv6


@pytest.fixture
def subnet() -> Iterator[Subnet]:
    with LocalAWS(region=REGION) as aws:
        ec2 = aws.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet_id = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.4.0/24", AvailabilityZone=f"{REGION}a")["Subnet"][
            "SubnetId"
        ]
        yield Subnet(aws, ec2, subnet_id)


def plan(subnet: Subnet | None, *argv: str) -> tuple[int, str, str]:
    """Run the plan command on the subnet as an operator would: a while after its ENIs were made (EC2's
    describes list a new ENI only after a short lag)."""
    if subnet is not None:
        subnet.aws.clock.advance(60)
    out, err = io.StringIO(), io.StringIO()
    code = main(["plan", *argv, "--region", REGION], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_given_workers_below_the_bound_when_planning_the_live_subnet_then_no_conflict_and_usage_shown(
    subnet: Subnet,
) -> None:
    subnet.eni("10.0.4.4", "10.0.4.64", owner="stack-a")  # a worker carrying one pod address
    subnet.eni("10.0.4.5", owner="stack-a")

    code, out, err = plan(subnet, "--subnet-id", subnet.subnet_id, "--worker-bound", "10.0.4.63", "--owner", "stack-a")

    assert (code, err) == (EXIT_OK, "")
    assert f"Subnet 10.0.4.0/24 ({subnet.subnet_id}, {REGION}a, mode static" in out
    assert "(60 addresses (2 in use))" in out
    assert "Conflicts: none" in out


def test_given_a_worker_and_a_foreign_eni_in_the_pod_range_when_planning_live_then_both_flagged_and_excluded(
    subnet: Subnet,
) -> None:
    worker = subnet.eni("10.0.4.70", owner="stack-a")
    foreign = subnet.eni("10.0.4.80")

    code, out, _ = plan(subnet, "--subnet-id", subnet.subnet_id, "--worker-bound", "10.0.4.63", "--owner", "stack-a")

    assert code == EXIT_CONFLICTS
    assert f"worker-in-pod-range: {worker}" in out
    assert f"address-in-use-in-pod-range: {foreign}" in out
    block = json.loads(out[out.index("{") :])
    assert block["exclude"] == ["10.0.4.70/32", "10.0.4.80/32"]


def test_given_explicit_reservations_when_planning_live_without_ranges_then_they_are_the_pod_range(
    subnet: Subnet,
) -> None:
    subnet.reserve("10.0.4.128/26")

    code, out, _ = plan(subnet, "--subnet-id", subnet.subnet_id)

    assert code == EXIT_OK
    assert "mode cidr-reservation" in out
    assert "pods          10.0.4.128 - 10.0.4.191  (64 addresses)" in out


def test_given_a_pod_range_that_is_not_reserved_when_planning_live_then_missing_reservation(subnet: Subnet) -> None:
    subnet.reserve("10.0.4.128/26")

    code, out, _ = plan(subnet, "--subnet-id", subnet.subnet_id, "--pod-range", "10.0.4.192/26")

    assert code == EXIT_CONFLICTS
    assert "missing-reservation: 10.0.4.192/26" in out


def test_given_a_subnet_that_does_not_exist_when_planning_live_then_one_line_and_exit_3(subnet: Subnet) -> None:
    code, out, err = plan(None, "--subnet-id", "subnet-0000000000000000f", "--worker-bound", "10.0.4.63")

    assert (code, out) == (EXIT_UNREADABLE, "")
    assert err == (
        "plan: could not read subnet-0000000000000000f: no such subnet in this account and region "
        "(InvalidSubnetID.NotFound)\n"
    )


def test_given_no_permission_to_read_the_enis_when_planning_live_then_the_actions_are_named_and_exit_3(
    subnet: Subnet,
) -> None:
    subnet.aws.faults.fail("ec2", "DescribeNetworkInterfaces", code="UnauthorizedOperation", status=403)

    code, out, err = plan(subnet, "--subnet-id", subnet.subnet_id, "--worker-bound", "10.0.4.63")

    assert (code, out) == (EXIT_UNREADABLE, "")
    assert err.startswith(
        f"plan: could not read {subnet.subnet_id}: DescribeNetworkInterfaces failed: UnauthorizedOperation"
    )
    assert err.endswith(
        "(the plan needs ec2:DescribeSubnets, ec2:DescribeNetworkInterfaces, ec2:GetSubnetCidrReservations)\n"
    )
    assert err.count("\n") == 1


def test_given_the_recommended_split_reserved_when_planning_live_then_one_range_and_the_last_address_a_note(
    subnet: Subnet,
) -> None:
    subnet.reserve("10.0.4.64/26")
    subnet.reserve("10.0.4.128/25")
    subnet.eni("10.0.4.4", "10.0.4.64", owner="stack-a")

    code, out, _ = plan(subnet, "--subnet-id", subnet.subnet_id, "--owner", "stack-a")

    assert code == EXIT_OK
    assert "note: 10.0.4.255 (AWS-reserved) is inside the pod range 10.0.4.128 - 10.0.4.255" in out
    assert json.loads(out[out.index("{") :]) == {
        "type": "whereabouts",
        "range": "10.0.4.0/24",
        "range_start": "10.0.4.64",
        "range_end": "10.0.4.254",
        "exclude": [],
    }


def test_given_a_dual_stack_subnet_with_reservations_of_both_families_when_planning_live_then_one_entry_each(
    dual_stack: tuple[Subnet, IPv6Network],
) -> None:
    subnet, ipv6 = dual_stack
    ipv6_pods = IPv6Network((int(ipv6.network_address) + 2**48, 80))  # the /64's second /80
    subnet.reserve("10.0.4.64/26")
    subnet.reserve("10.0.4.128/25")
    subnet.reserve(str(ipv6_pods))

    code, out, _ = plan(subnet, "--subnet-id", subnet.subnet_id)

    assert code == EXIT_OK
    assert f"Subnet {ipv6} ({subnet.subnet_id}, {REGION}a, mode cidr-reservation)" in out
    block = json.loads(out[out.index("{") :])
    assert block == {
        "type": "whereabouts",
        "ipRanges": [
            {"range": "10.0.4.0/24", "range_start": "10.0.4.64", "range_end": "10.0.4.254", "exclude": []},
            {
                "range": str(ipv6),
                "range_start": str(ipv6_pods.network_address),
                "range_end": str(ipv6_pods.broadcast_address),
                "exclude": [],
            },
        ],
    }


def test_given_a_dual_stack_subnet_and_an_ipv4_bound_when_planning_live_then_ipv4_only_with_a_note(
    dual_stack: tuple[Subnet, IPv6Network],
) -> None:
    subnet, ipv6 = dual_stack

    code, out, _ = plan(subnet, "--subnet-id", subnet.subnet_id, "--worker-bound", "10.0.4.63")

    assert code == EXIT_OK
    assert f"Note: no IPv6 pod range in {ipv6}: pods get no IPv6 address" in out
    assert json.loads(out[out.index("{") :])["range"] == "10.0.4.0/24"


def test_given_a_bound_of_a_family_the_live_subnet_lacks_when_planning_then_exit_2(subnet: Subnet) -> None:
    code, out, err = plan(subnet, "--subnet-id", subnet.subnet_id, "--pod-range", "2600:1f18::/80")

    assert (code, out) == (EXIT_USAGE, "")
    assert err == "plan: 2600:1f18::/80 is IPv6, and the subnet has no IPv6 CIDR block\n"
