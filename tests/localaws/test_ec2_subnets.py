"""DescribeSubnets as AWS answers it (where moto's answer misleads a correct reader)."""

from __future__ import annotations

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

    assert association["Ipv6CidrBlock"] == subnet_block
    assert association["Ipv6CidrBlockState"]["State"] == "associated"
