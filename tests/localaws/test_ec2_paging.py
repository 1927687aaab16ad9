"""MaxResults / NextToken paging, so pagination code is really exercised (DOMAIN.md §4, §5)."""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from mypy_boto3_ec2 import EC2Client

from localaws import LocalAWS

from .conftest import error_code


@pytest.fixture
def subnet_id(ec2: EC2Client) -> str:
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    return ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.0.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]


def test_given_12_enis_when_described_5_at_a_time_then_pages_of_5_5_2_chain_by_next_token(
    ec2: EC2Client, subnet_id: str
) -> None:
    # AWS: DescribeNetworkInterfaces honours MaxResults and returns NextToken until the last page.
    created = {
        ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"] for _ in range(12)
    }

    sizes, seen, token = [], [], ""
    while True:
        page = ec2.describe_network_interfaces(MaxResults=5, NextToken=token)
        sizes.append(len(page["NetworkInterfaces"]))
        seen += [eni["NetworkInterfaceId"] for eni in page["NetworkInterfaces"]]
        token = page.get("NextToken", "")
        if not token:
            break

    assert sizes == [5, 5, 2]
    assert sorted(seen) == sorted(created)


def test_given_12_enis_when_the_boto3_paginator_walks_them_then_each_comes_once(ec2: EC2Client, subnet_id: str) -> None:
    # AWS: the botocore paginator over DescribeNetworkInterfaces (MaxResults/NextToken).
    for _ in range(12):
        ec2.create_network_interface(SubnetId=subnet_id)

    pages = list(ec2.get_paginator("describe_network_interfaces").paginate(PaginationConfig={"PageSize": 5}))

    assert [len(p["NetworkInterfaces"]) for p in pages] == [5, 5, 2]


def test_given_max_results_with_interface_ids_when_described_then_invalid_parameter_combination(
    ec2: EC2Client, subnet_id: str
) -> None:
    # AWS: InvalidParameterCombination — MaxResults cannot be used with NetworkInterfaceIds.
    eni_id = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]

    with pytest.raises(ClientError) as excinfo:
        ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id], MaxResults=5)

    assert error_code(excinfo) == "InvalidParameterCombination"


def test_given_max_results_below_5_when_sent_past_client_validation_then_invalid_parameter_value(
    aws: LocalAWS, subnet_id: str
) -> None:
    # AWS: InvalidParameterValue — MaxResults is 5..1000 (botocore checks too; AWS checks regardless).
    unchecked: EC2Client = aws.client("ec2", config=Config(parameter_validation=False))

    with pytest.raises(ClientError) as excinfo:
        unchecked.describe_network_interfaces(MaxResults=4)

    assert error_code(excinfo) == "InvalidParameterValue"


def test_given_7_reservations_when_listed_5_at_a_time_then_next_token_brings_the_rest(
    ec2: EC2Client, subnet_id: str
) -> None:
    # AWS: GetSubnetCidrReservations pages with MaxResults/NextToken (it has no botocore paginator).
    for i in range(7):
        ec2.create_subnet_cidr_reservation(
            SubnetId=subnet_id, Cidr=f"10.0.0.{16 * (i + 1)}/28", ReservationType="explicit"
        )

    first = ec2.get_subnet_cidr_reservations(SubnetId=subnet_id, MaxResults=5)
    rest = ec2.get_subnet_cidr_reservations(SubnetId=subnet_id, MaxResults=5, NextToken=first["NextToken"])

    assert len(first["SubnetIpv4CidrReservations"]) == 5
    assert len(rest["SubnetIpv4CidrReservations"]) == 2
    assert "NextToken" not in rest
