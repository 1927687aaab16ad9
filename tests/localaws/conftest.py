"""Fixtures for the local AWS's own tests.

Every behaviour test names the AWS error it reproduces. Run with ``LOCALAWS_PLAIN_MOTO=1`` to see which of
them plain moto gets wrong (they fail there).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_autoscaling import AutoScalingClient
from mypy_boto3_ec2 import EC2Client

from localaws import LocalAWS, Realism

START = datetime(2025, 1, 6, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def aws() -> Iterator[LocalAWS]:
    # The rules of the local AWS, checked one by one: strict parameters, but instant and consistent (the
    # timing behaviours each have their own tests in test_realism.py).
    with LocalAWS(region="us-east-1", start_time=START, realism=Realism.strict()) as local:
        yield local


@pytest.fixture
def ec2(aws: LocalAWS) -> EC2Client:
    client: EC2Client = aws.client("ec2")
    return client


@pytest.fixture
def autoscaling(aws: LocalAWS) -> AutoScalingClient:
    client: AutoScalingClient = aws.client("autoscaling")
    return client


@dataclass(frozen=True)
class Net:
    vpc_id: str
    subnet_id: str
    other_az_subnet_id: str


@pytest.fixture
def net(ec2: EC2Client) -> Net:
    """A VPC with a small subnet (10.0.1.0/28: 11 usable addresses) in us-east-1a and one in us-east-1b."""
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/28", AvailabilityZone="us-east-1a")
    other = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.2.0/24", AvailabilityZone="us-east-1b")
    return Net(vpc_id, subnet["Subnet"]["SubnetId"], other["Subnet"]["SubnetId"])


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def error_message(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Message"])


def image_id(ec2: EC2Client) -> str:
    return ec2.register_image(Name="eks-node")["ImageId"]


def run_instance(ec2: EC2Client, subnet_id: str, instance_type: str = "m5.large") -> str:
    reservation = ec2.run_instances(
        ImageId=image_id(ec2),
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet_id,
        InstanceType=instance_type,  # type: ignore[arg-type]
    )
    return reservation["Instances"][0]["InstanceId"]
