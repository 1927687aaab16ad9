"""`python -m multus_ipam plan --subnet-id` against the local AWS: it reads the subnet, its ENIs and its
reservations through the same Ec2Adapter the functions use."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from localaws import LocalAWS
from multus_ipam.__main__ import EXIT_CONFLICTS, EXIT_OK, EXIT_USAGE, main
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


def test_given_a_subnet_that_does_not_exist_when_planning_live_then_message_and_exit_2(subnet: Subnet) -> None:
    code, out, err = plan(None, "--subnet-id", "subnet-0000000000000000f", "--worker-bound", "10.0.4.63")

    assert (code, out) == (EXIT_USAGE, "")
    assert "subnet-0000000000000000f" in err
