"""The dispatch layer: fault injection, crash-after, the call log, the switch to plain moto."""

from __future__ import annotations

import contextlib
import threading

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from mypy_boto3_autoscaling import AutoScalingClient
from mypy_boto3_ec2 import EC2Client

from localaws import LocalAWS, SimulatedCrash

from .conftest import Net, error_code


def test_given_two_injected_throttles_when_a_standard_retry_client_calls_then_it_recovers_on_the_third_attempt(
    aws: LocalAWS, net: Net
) -> None:
    # AWS: RequestLimitExceeded (HTTP 503) is a throttling error botocore's standard mode retries.
    aws.faults.fail("ec2", "CreateNetworkInterface", code="RequestLimitExceeded", status=503, times=2)
    ec2: EC2Client = aws.client("ec2", config=Config(retries={"mode": "standard", "max_attempts": 5}))

    eni = ec2.create_network_interface(SubnetId=net.subnet_id)

    assert eni["ResponseMetadata"]["RetryAttempts"] == 2
    assert [c.outcome for c in aws.calls_to("ec2", "CreateNetworkInterface")] == [
        "RequestLimitExceeded",
        "RequestLimitExceeded",
        "ok",
    ]
    assert len(aws.skipped_retry_delays) == 2


def test_given_an_injected_error_when_called_without_retries_then_a_client_error_carries_code_and_status(
    aws: LocalAWS, net: Net
) -> None:
    # AWS: UnauthorizedOperation, HTTP 403, and nothing is created.
    aws.faults.fail("ec2", "CreateNetworkInterface", code="UnauthorizedOperation", status=403, times=1)
    ec2: EC2Client = aws.client("ec2", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))

    with pytest.raises(ClientError) as excinfo:
        ec2.create_network_interface(SubnetId=net.subnet_id)

    assert error_code(excinfo) == "UnauthorizedOperation"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert ec2.describe_network_interfaces()["NetworkInterfaces"] == []


def test_given_an_auto_scaling_throttle_when_called_then_the_query_protocol_error_parses(
    aws: LocalAWS, autoscaling: AutoScalingClient
) -> None:
    # AWS: Auto Scaling throttles with Throttling (HTTP 400), in the query protocol's error shape.
    aws.faults.fail("autoscaling", "DescribeAutoScalingGroups", code="Throttling", status=400, times=1)
    client: AutoScalingClient = aws.client(
        "autoscaling", config=Config(retries={"mode": "standard", "total_max_attempts": 1})
    )

    with pytest.raises(ClientError) as excinfo:
        client.describe_auto_scaling_groups()

    assert error_code(excinfo) == "Throttling"


def test_given_a_seeded_fault_rate_when_called_repeatedly_then_the_same_calls_fail_each_run() -> None:
    def outcomes() -> list[str]:
        with LocalAWS() as local:
            ec2: EC2Client = local.client("ec2", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
            vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            local.faults.fail("ec2", "DescribeVpcs", code="InternalError", status=500, rate=0.5, seed=7)
            for _ in range(12):
                with contextlib.suppress(ClientError):
                    ec2.describe_vpcs(VpcIds=[vpc_id])
            return [c.outcome for c in local.calls_to("ec2", "DescribeVpcs")]

    first = outcomes()

    assert first == outcomes()
    assert {"ok", "InternalError"} <= set(first)


def test_given_crash_after_when_called_then_aws_applied_it_and_except_exception_does_not_catch_it(
    aws: LocalAWS, ec2: EC2Client, net: Net
) -> None:
    # The Lambda process dies right after EC2 created the ENI: the ENI exists, the caller saw nothing.
    aws.faults.crash_after("ec2", "CreateNetworkInterface", times=1)

    def handler() -> None:
        try:
            ec2.create_network_interface(SubnetId=net.subnet_id)
        except Exception:  # noqa: BLE001 - the point: a crash is not an Exception
            pytest.fail("a crash must not be catchable as Exception")

    with pytest.raises(SimulatedCrash):
        handler()

    assert len(ec2.describe_network_interfaces()["NetworkInterfaces"]) == 1
    assert aws.calls_to("ec2", "CreateNetworkInterface")[0].outcome == "crash"
    ec2.create_network_interface(SubnetId=net.subnet_id)  # the crash fired once


def test_given_cleared_faults_when_called_then_calls_succeed(aws: LocalAWS, ec2: EC2Client, net: Net) -> None:
    aws.faults.fail("ec2", "CreateNetworkInterface", code="InternalError", status=500)
    aws.faults.clear()

    ec2.create_network_interface(SubnetId=net.subnet_id)

    assert aws.calls_to("ec2", "CreateNetworkInterface")[-1].ok


def test_given_calls_from_many_threads_when_logged_then_each_attempt_appears_once_with_its_params(
    aws: LocalAWS, ec2: EC2Client, net: Net
) -> None:
    vpc_id = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.9.0.0/24", AvailabilityZone="us-east-1a")["Subnet"][
        "SubnetId"
    ]
    threads = [threading.Thread(target=ec2.create_network_interface, kwargs={"SubnetId": subnet_id}) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    creates = aws.calls_to("ec2", "CreateNetworkInterface")
    assert len(creates) == 20
    assert all(c.ok and c.params["SubnetId"] == subnet_id for c in creates)
    assert len({c.seq for c in aws.calls}) == len(aws.calls)


def test_given_extensions_off_when_a_taken_address_is_requested_then_plain_moto_accepts_it() -> None:
    # The switch the behaviour tests are checked with: plain moto really is that permissive.
    with LocalAWS(extensions=False) as local:
        ec2: EC2Client = local.client("ec2")
        vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        for _ in range(2):
            ec2.create_network_interface(SubnetId=subnet_id, PrivateIpAddress="10.0.1.10")

        assert len(ec2.describe_network_interfaces()["NetworkInterfaces"]) == 2
