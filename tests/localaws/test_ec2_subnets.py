"""DescribeSubnets as AWS answers it (where moto's answer misleads a correct reader)."""

from __future__ import annotations

from ipaddress import IPv6Network

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
