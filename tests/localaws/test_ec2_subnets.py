"""DescribeSubnets as AWS answers it (where moto's answer misleads a correct reader)."""

from __future__ import annotations

from ipaddress import IPv6Network

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_ec2 import EC2Client


def test_given_a_dual_stack_subnet_when_described_then_its_ipv6_block_reads_as_associated(ec2: EC2Client) -> None:
    # AWS: Ipv6CidrBlockAssociationSet[].Ipv6CidrBlockState.State is "associated". moto nests its own state
    # dict in that field, so code that (rightly) checks the state would find no IPv6 block on plain moto.
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    block = ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
    subnet_block = block.replace("/56", "/64")
    subnet_id = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.4.0/24", Ipv6CidrBlock=subnet_block)["Subnet"][
        "SubnetId"
    ]

    (association,) = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["Ipv6CidrBlockAssociationSet"]

    assert IPv6Network(association["Ipv6CidrBlock"]) == IPv6Network(subnet_block)
    assert association["Ipv6CidrBlockState"]["State"] == "associated"


def _ipv6_only_subnet(ec2: EC2Client) -> str:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    block = ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], Ipv6CidrBlock=block.replace("/56", "/64"), Ipv6Native=True)
    return subnet["Subnet"]["SubnetId"]


def test_given_an_ipv6_only_subnet_when_an_eni_is_created_then_it_has_no_ipv4_address(ec2: EC2Client) -> None:
    # AWS: an IPv6-only subnet has no IPv4 block, so its ENIs have IPv6 addresses only. moto invents a
    # random 10.x primary address, which would hide a function that wrongly expects one.
    subnet_id = _ipv6_only_subnet(ec2)

    eni = ec2.create_network_interface(SubnetId=subnet_id, Ipv6AddressCount=1)["NetworkInterface"]

    described = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni["NetworkInterfaceId"]])["NetworkInterfaces"][0]
    assert not described.get("PrivateIpAddress")
    assert not described.get("PrivateIpAddresses")
    assert len(described["Ipv6Addresses"]) == 1


def test_given_an_unknown_subnet_among_known_ones_when_described_then_not_found_names_the_unknown_one(
    ec2: EC2Client,
) -> None:
    # AWS names the id that does not exist. moto names an arbitrary id of the request (it compares ids with subnet
    # objects), so an error meant to name the wrong subnet would name an existing one.
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    known = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in (4, 5)]
    unknown = "subnet-0123456789abcdef0"

    with pytest.raises(ClientError) as raised:
        ec2.describe_subnets(SubnetIds=[known[0], unknown, known[1]])

    assert raised.value.response["Error"]["Code"] == "InvalidSubnetID.NotFound"
    assert raised.value.response["Error"]["Message"] == f"The subnet ID '{unknown}' does not exist"
    assert len(ec2.describe_subnets(SubnetIds=known)["Subnets"]) == 2
