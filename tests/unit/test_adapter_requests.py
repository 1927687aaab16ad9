"""What the adapters send (botocore Stubber with expected parameters): page sizes, id list lengths and filter
value counts within AWS's documented limits, and the answers they translate for the engine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from multus_ipam.aws.autoscaling import WARM_POOL_PAGE_SIZE, AutoScalingAdapter
from multus_ipam.aws.clients import retry_config
from multus_ipam.aws.ec2 import MAX_FILTER_VALUES, Ec2Adapter
from multus_ipam.errors import AwsCallFailed, NotYetVisible

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client

GROUP = "multus-workers"
AZ = "us-east-1a"


def _session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")


@pytest.fixture
def autoscaling() -> Iterator[tuple[AutoScalingClient, Stubber]]:
    client: AutoScalingClient = _session().client("autoscaling", config=retry_config(1))
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def ec2() -> Iterator[tuple[EC2Client, Stubber]]:
    client: EC2Client = _session().client("ec2", config=retry_config(1))
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _instance(instance_id: str, state: str = "Pending:Wait") -> dict[str, Any]:
    return {
        "InstanceId": instance_id,
        "AvailabilityZone": AZ,
        "LifecycleState": state,
        "HealthStatus": "Healthy",
        "ProtectedFromScaleIn": False,
    }


def _group(instances: list[dict[str, Any]], *, warm_pool: bool) -> dict[str, Any]:
    group: dict[str, Any] = {
        "AutoScalingGroupName": GROUP,
        "MinSize": 0,
        "MaxSize": 10,
        "DesiredCapacity": len(instances),
        "DefaultCooldown": 300,
        "AvailabilityZones": [AZ],
        "HealthCheckType": "EC2",
        "CreatedTime": datetime(2026, 11, 24, tzinfo=UTC),
        "Instances": instances,
    }
    if warm_pool:
        group["WarmPoolConfiguration"] = {"MinSize": 0, "PoolState": "Stopped"}
    return group


def test_given_a_group_without_a_warm_pool_when_reading_waiting_instances_then_one_call_is_made(
    autoscaling: tuple[AutoScalingClient, Stubber],
) -> None:
    client, stubber = autoscaling
    stubber.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [_group([_instance("i-0b"), _instance("i-0a", "InService")], warm_pool=False)]},
        {"AutoScalingGroupNames": [GROUP]},
    )

    assert [i.instance_id for i in AutoScalingAdapter(client).waiting_instances(GROUP)] == ["i-0b"]


def test_given_a_group_with_a_warm_pool_when_reading_waiting_instances_then_every_page_of_50_is_read(
    autoscaling: tuple[AutoScalingClient, Stubber],
) -> None:
    client, stubber = autoscaling
    stubber.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [_group([_instance("i-0a")], warm_pool=True)]},
        {"AutoScalingGroupNames": [GROUP]},
    )
    stubber.add_response(
        "describe_warm_pool",
        {"Instances": [_instance("i-0p1", "Warmed:Pending:Wait")], "NextToken": "page-2"},
        {"AutoScalingGroupName": GROUP, "MaxRecords": 50},
    )
    stubber.add_response(
        "describe_warm_pool",
        {"Instances": [_instance("i-0p2", "Warmed:Stopped")]},
        {"AutoScalingGroupName": GROUP, "MaxRecords": 50, "NextToken": "page-2"},
    )

    assert [i.instance_id for i in AutoScalingAdapter(client).waiting_instances(GROUP)] == ["i-0a", "i-0p1"]
    assert WARM_POOL_PAGE_SIZE == 50


def test_given_more_instance_ids_than_one_filter_takes_when_reading_states_then_they_are_split_by_200(
    ec2: tuple[EC2Client, Stubber],
) -> None:
    client, stubber = ec2
    ids = [f"i-{n:017x}" for n in range(450)]
    for start in (0, 200, 400):
        chunk = ids[start : start + MAX_FILTER_VALUES]
        stubber.add_response(
            "describe_instances",
            {"Reservations": [{"Instances": [{"InstanceId": chunk[0], "State": {"Name": "running", "Code": 16}}]}]},
            {"Filters": [{"Name": "instance-id", "Values": chunk}], "MaxResults": 1000},
        )

    states = Ec2Adapter(client).instance_states(list(reversed(ids)))

    assert states == {ids[0]: "running", ids[200]: "running", ids[400]: "running"}
    assert MAX_FILTER_VALUES == 200


def test_given_no_instance_ids_when_reading_states_then_no_call_is_made(ec2: tuple[EC2Client, Stubber]) -> None:
    client, _ = ec2
    assert Ec2Adapter(client).instance_states([]) == {}


@pytest.mark.parametrize("page_size", [4, 1001])
def test_given_a_page_size_outside_ec2s_range_when_building_the_adapter_then_it_is_refused(
    ec2: tuple[EC2Client, Stubber], page_size: int
) -> None:
    client, _ = ec2
    with pytest.raises(ValueError, match="MaxResults range 5-1000"):
        Ec2Adapter(client, page_size=page_size)


@pytest.mark.parametrize(
    ("code", "about_instance"),
    [("InvalidNetworkInterfaceID.NotFound", False), ("InvalidInstanceID.NotFound", True)],
)
def test_given_a_not_found_answer_to_an_attach_then_it_is_not_yet_visible(
    ec2: tuple[EC2Client, Stubber], code: str, *, about_instance: bool
) -> None:
    client, stubber = ec2
    stubber.add_client_error("attach_network_interface", service_error_code=code, http_status_code=400)

    with pytest.raises(NotYetVisible) as raised:
        Ec2Adapter(client).attach_eni("eni-0123456789abcdef0", "i-0123456789abcdef0", 1, 0)

    assert raised.value.code == code
    assert raised.value.about_instance is about_instance
    assert raised.value.operation == "AttachNetworkInterface"


def test_given_an_attachment_not_found_right_after_the_attach_then_it_is_not_yet_visible(
    ec2: tuple[EC2Client, Stubber],
) -> None:
    client, stubber = ec2
    stubber.add_client_error(
        "modify_network_interface_attribute", service_error_code="InvalidAttachmentID.NotFound", http_status_code=400
    )

    with pytest.raises(NotYetVisible, match=r"InvalidAttachmentID\.NotFound") as raised:
        Ec2Adapter(client).set_delete_on_termination("eni-0123456789abcdef0", "eni-attach-0123456789abcdef0")

    assert raised.value.resource_id == "eni-attach-0123456789abcdef0"


def test_given_another_error_on_modify_then_it_is_a_failed_call_naming_the_code(
    ec2: tuple[EC2Client, Stubber],
) -> None:
    client, stubber = ec2
    stubber.add_client_error(
        "modify_network_interface_attribute", service_error_code="UnauthorizedOperation", http_status_code=403
    )

    with pytest.raises(AwsCallFailed, match="ModifyNetworkInterfaceAttribute failed: UnauthorizedOperation"):
        Ec2Adapter(client).set_source_dest_check("eni-0123456789abcdef0", enabled=False)


def test_given_a_connection_error_the_sdk_gave_up_on_then_it_is_a_failed_call_naming_the_operation(
    ec2: tuple[EC2Client, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = ec2

    def unreachable(**_: object) -> None:
        raise EndpointConnectionError(endpoint_url="https://ec2.us-east-1.amazonaws.com/")

    monkeypatch.setattr(client, "modify_network_interface_attribute", unreachable)

    with pytest.raises(AwsCallFailed, match="ModifyNetworkInterfaceAttribute failed: EndpointConnectionError"):
        Ec2Adapter(client).set_delete_on_termination("eni-0123456789abcdef0", "eni-attach-0123456789abcdef0")
