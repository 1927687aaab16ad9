"""Strict request validation (``localaws.validation``): what AWS refuses on the server and botocore lets through.

Every test names the AWS behaviour it reproduces. No AWS emulation is started: ``check_request`` is a pure
function of the botocore model and the parameters.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import botocore.session
import pytest
from botocore.model import OperationNotFoundError, StructureShape

from localaws.validation import (
    FILTER_VALUE_LIMIT,
    Rejection,
    check_request,
    documented_limits,
    uncompilable_patterns,
)

TOKEN = "c6f3a1e0-5b7d-4a39-9e2f-0d4b8c7a1f23"  # a lifecycle action token: 36 characters, as AWS issues them
INSTANCE_ID = "i-0123456789abcdef0"
ENI_ID = "eni-0123456789abcdef0"
SUBNET_ID = "subnet-0123456789abcdef0"


def _filters(*sizes: int) -> list[dict[str, object]]:
    return [{"Name": f"tag:k{n}", "Values": [f"v{i}" for i in range(size)]} for n, size in enumerate(sizes)]


# --- limits stated only in documentation text ----------------------------------------------------------------


def test_given_describe_warm_pool_when_max_records_is_51_then_validation_error_less_than_or_equal_to_50() -> None:
    """AWS: DescribeWarmPool refuses MaxRecords above 50 ("The maximum value is 50."; not a model constraint)."""
    rejection = check_request("autoscaling", "DescribeWarmPool", {"AutoScalingGroupName": "nodes", "MaxRecords": 51})

    assert rejection == Rejection(
        "ValidationError",
        "1 validation error detected: Value '51' at 'maxRecords' failed to satisfy constraint: "
        "Member must have value less than or equal to 50",
        400,
    )


def test_given_describe_warm_pool_when_max_records_is_50_then_accepted() -> None:
    """AWS: DescribeWarmPool accepts MaxRecords up to and including 50."""
    assert check_request("autoscaling", "DescribeWarmPool", {"AutoScalingGroupName": "nodes", "MaxRecords": 50}) is None


@pytest.mark.parametrize(
    ("operation", "params", "limit"),
    [
        ("DescribeAutoScalingGroups", {"AutoScalingGroupNames": ["nodes"]}, 100),
        ("DescribeAutoScalingInstances", {"InstanceIds": [INSTANCE_ID]}, 50),
    ],
)
def test_given_a_describe_when_max_records_is_one_above_the_documented_maximum_then_validation_error(
    operation: str, params: dict[str, object], limit: int
) -> None:
    """AWS: DescribeAutoScalingGroups refuses MaxRecords above 100, DescribeAutoScalingInstances above 50 ("The
    default value is 50 and the maximum value is 100/50."); the maximum itself is accepted."""
    assert check_request("autoscaling", operation, {**params, "MaxRecords": limit}) is None

    rejection = check_request("autoscaling", operation, {**params, "MaxRecords": limit + 1})

    assert rejection is not None
    assert rejection.code == "ValidationError"
    assert rejection.message.endswith(f"Member must have value less than or equal to {limit}")


def test_given_the_installed_models_when_documentation_limits_are_derived_then_auto_scaling_gets_exactly_these() -> (
    None
):
    """AWS: the Auto Scaling API reference states these ranges only in prose; each is a limit AWS enforces.
    A botocore upgrade that changes the list fails here, to be reviewed."""
    assert documented_limits("autoscaling") == {
        "AutoScalingGroupNamesType.MaxRecords": (None, 100),  # DescribeAutoScalingGroups
        "DescribeAccountSettingsType.MaxRecords": (None, 100),
        "DescribeAutoScalingInstancesType.MaxRecords": (None, 50),
        "DescribeInstanceRefreshesType.MaxRecords": (None, 100),
        "DescribeLoadBalancerTargetGroupsRequest.MaxRecords": (None, 100),
        "DescribeLoadBalancersRequest.MaxRecords": (None, 100),
        "DescribeNotificationConfigurationsType.MaxRecords": (None, 100),
        "DescribePoliciesType.MaxRecords": (None, 100),
        "DescribeScalingActivitiesType.MaxRecords": (None, 100),
        "DescribeScheduledActionsType.MaxRecords": (None, 100),
        "DescribeTagsType.MaxRecords": (None, 100),
        "DescribeTrafficSourcesRequest.MaxRecords": (None, 50),
        "DescribeWarmPoolType.MaxRecords": (None, 50),
        "InstancesDistribution.SpotInstancePools": (1, 20),
        "LaunchConfigurationNamesType.MaxRecords": (None, 100),  # DescribeLaunchConfigurations
        "LifecycleHookSpecification.HeartbeatTimeout": (30, 7200),
        "PutLifecycleHookType.HeartbeatTimeout": (30, 7200),
    }


def test_given_the_installed_models_when_documentation_limits_are_derived_then_ec2_gets_exactly_these() -> None:
    """AWS: the EC2 API reference states these ranges only in prose. Left out on purpose: two-range sentences
    (AmazonSideAsn), per-volume-type ranges (Iops), "between 60 and half of Phase2LifetimeSeconds", "Recommended:
    less than ...", and maxima that truncate instead of refusing ("only 1,000 results are returned")."""
    assert documented_limits("ec2") == {
        "ConnectionTrackingSpecificationRequest.TcpEstablishedTimeout": (60, 432000),
        "ConnectionTrackingSpecificationRequest.UdpStreamTimeout": (60, 180),
        "ConnectionTrackingSpecificationRequest.UdpTimeout": (30, 60),
        "CopyVolumesRequest.Throughput": (125, 2000),
        "CreateApplicationStatusCheckRequest.DeviceIndex": (0, None),
        "CreateApplicationStatusCheckRequest.FailureThreshold": (1, None),
        "CreateApplicationStatusCheckRequest.SuccessThreshold": (1, None),
        "CreateCapacityReservationRequest.InstanceCount": (1, 1000),
        "CreateNetworkAclEntryRequest.RuleNumber": (1, 32766),
        "CreateReplaceRootVolumeTaskRequest.VolumeInitializationRate": (100, 300),
        "CreateRouteServerRequest.PersistRoutesDuration": (1, 5),
        "CreateTrafficMirrorSessionRequest.PacketLength": (None, 8500),
        "CreateVolumeRequest.Throughput": (125, 2000),
        "CreateVolumeRequest.VolumeInitializationRate": (100, 300),
        "DescribeHostReservationsRequest.MaxResults": (5, 500),
        "DescribeHostsRequest.MaxResults": (5, 500),
        "DescribeLaunchTemplateVersionsRequest.MaxResults": (1, 200),
        "DescribeReservedInstancesOfferingsRequest.MaxResults": (None, 100),
        "DescribeScheduledInstancesRequest.MaxResults": (5, 300),
        "DescribeTagsRequest.MaxResults": (5, 1000),
        "DescribeVolumesModificationsRequest.MaxResults": (None, 500),
        "DescribeVpcEndpointConnectionsRequest.MaxResults": (5, None),
        "DescribeVpcEndpointServiceConfigurationsRequest.MaxResults": (5, None),
        "DescribeVpcEndpointServicePermissionsRequest.MaxResults": (5, None),
        "EbsBlockDevice.Throughput": (125, 2000),
        "EbsBlockDevice.VolumeInitializationRate": (100, 300),
        "EnableFastLaunchRequest.MaxParallelLaunches": (6, None),
        "FleetEbsBlockDeviceRequest.Throughput": (125, 2000),
        "FleetSpotCapacityRebalanceRequest.TerminationDelay": (120, 7200),
        "GetCapacityManagerMetricDataRequest.MaxResults": (1, 100000),
        "GetCapacityManagerMetricDimensionsRequest.MaxResults": (1, 1000),
        "ImageWatermarkFilterRequest.MaximumDaysSinceSourceImageCreated": (0, 2147483647),
        "ImageWatermarkFilterRequest.MaximumDaysSinceWatermarkCreated": (0, 2147483647),
        "LaunchTemplateEbsBlockDeviceRequest.Throughput": (125, 2000),
        "LaunchTemplateEbsBlockDeviceRequest.VolumeInitializationRate": (100, 300),
        "ListVolumesInRecycleBinRequest.MaxResults": (5, 500),
        "ModifyApplicationStatusCheckRequest.DeviceIndex": (0, None),
        "ModifyApplicationStatusCheckRequest.FailureThreshold": (1, None),
        "ModifyApplicationStatusCheckRequest.SuccessThreshold": (1, None),
        "ModifyRouteServerRequest.PersistRoutesDuration": (1, 5),
        "ModifyTrafficMirrorSessionRequest.PacketLength": (None, 8500),
        "ModifyVolumeRequest.Throughput": (125, 2000),
        "ModifyVpnTunnelOptionsSpecification.DPDTimeoutSeconds": (30, None),
        "ModifyVpnTunnelOptionsSpecification.Phase1LifetimeSeconds": (900, 28800),
        "ModifyVpnTunnelOptionsSpecification.Phase2LifetimeSeconds": (900, 3600),
        "ModifyVpnTunnelOptionsSpecification.RekeyFuzzPercentage": (0, 100),
        "ModifyVpnTunnelOptionsSpecification.ReplayWindowSize": (64, 2048),
        "OnDemandOptionsRequest.MinTargetCapacity": (None, 1000),
        "SpotCapacityRebalance.TerminationDelay": (120, 7200),
        "SpotOptionsRequest.MinTargetCapacity": (None, 1000),
        "VpnTunnelOptionsSpecification.DPDTimeoutSeconds": (30, None),
        "VpnTunnelOptionsSpecification.Phase1LifetimeSeconds": (900, 28800),
        "VpnTunnelOptionsSpecification.Phase2LifetimeSeconds": (900, 3600),
        "VpnTunnelOptionsSpecification.RekeyFuzzPercentage": (0, 100),
        "VpnTunnelOptionsSpecification.ReplayWindowSize": (64, 2048),
    }


def test_given_the_documentation_phrasings_when_their_examples_are_read_then_each_phrasing_matches_its_own() -> None:
    """AWS: the limits above come from these sentences of the models, word for word."""
    from localaws.validation import _DOC_PHRASES, _sentences  # noqa: PLC0415 - the table under test is private

    for phrase in _DOC_PHRASES:
        for example in phrase.examples:
            (sentence,) = _sentences(example)
            assert phrase.pattern.fullmatch(sentence), example


@pytest.mark.parametrize("max_results", [1001, 4])
def test_given_describe_network_interfaces_when_max_results_is_outside_5_to_1000_then_invalid_parameter_value(
    max_results: int,
) -> None:
    """AWS: EC2 refuses MaxResults outside 5..1000 on DescribeNetworkInterfaces with InvalidParameterValue. The
    range is a shape constraint of the model (min 5, max 1000), so nothing is taken from documentation here."""
    assert "DescribeNetworkInterfacesRequest.MaxResults" not in documented_limits("ec2")

    rejection = check_request("ec2", "DescribeNetworkInterfaces", {"MaxResults": max_results})

    assert rejection == Rejection(
        "InvalidParameterValue",
        f"Value ( {max_results} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.",
        400,
    )


def test_given_describe_network_interfaces_when_max_results_is_5_or_1000_then_accepted() -> None:
    """AWS: the bounds 5 and 1000 are themselves valid page sizes."""
    assert check_request("ec2", "DescribeNetworkInterfaces", {"MaxResults": 5}) is None
    assert check_request("ec2", "DescribeNetworkInterfaces", {"MaxResults": 1000}) is None


def test_given_describe_instances_when_max_results_is_outside_5_to_1000_then_accepted_as_the_model_has_no_range() -> (
    None
):
    """AWS: EC2 is reported to refuse DescribeInstances MaxResults=1 ("Expecting a value greater than 5",
    aws/aws-sdk-ruby#2575), but the installed model states no range for it: no min/max on the shape and none in
    its documentation text. Nothing is invented: this is a known gap, pinned so a model that adds it shows up."""
    model = botocore.session.get_session().get_service_model("ec2")
    input_shape = model.operation_model("DescribeInstances").input_shape
    assert isinstance(input_shape, StructureShape)
    assert not {"min", "max"} & set(input_shape.members["MaxResults"].metadata)
    assert "DescribeInstancesRequest.MaxResults" not in documented_limits("ec2")

    assert check_request("ec2", "DescribeInstances", {"MaxResults": 1001}) is None
    assert check_request("ec2", "DescribeInstances", {"MaxResults": 4}) is None


def test_given_a_documented_maximum_that_truncates_when_exceeded_then_only_the_minimum_is_enforced() -> None:
    """AWS: DescribeVpcEndpointConnections "can be between 5 and 1,000; if MaxResults is given a value larger than
    1,000, only 1,000 results are returned": a larger value is served, a smaller one refused."""
    assert check_request("ec2", "DescribeVpcEndpointConnections", {"MaxResults": 5000}) is None

    rejection = check_request("ec2", "DescribeVpcEndpointConnections", {"MaxResults": 4})

    assert rejection is not None
    assert rejection.message == (
        "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than or equal to 5."
    )


def test_given_a_model_bound_and_a_stricter_documented_one_when_checked_then_the_model_bound_wins() -> None:
    """AWS: InstanceMaintenancePolicy.MinHealthyPercentage is documented as "0 to 100", yet -1 is accepted (it
    clears the setting) and the model says min -1: where the model states a bound, the prose does not override it."""
    policy = {"InstanceMaintenancePolicy": {"MinHealthyPercentage": -1, "MaxHealthyPercentage": -1}}

    assert check_request("autoscaling", "UpdateAutoScalingGroup", {"AutoScalingGroupName": "nodes", **policy}) is None


def test_given_put_lifecycle_hook_when_heartbeat_timeout_is_above_7200_then_validation_error() -> None:
    """AWS: PutLifecycleHook HeartbeatTimeout "The range is from 30 to 7200 seconds."."""
    hook = {"LifecycleHookName": "launch", "AutoScalingGroupName": "nodes"}

    assert check_request("autoscaling", "PutLifecycleHook", {**hook, "HeartbeatTimeout": 7200}) is None
    rejection = check_request("autoscaling", "PutLifecycleHook", {**hook, "HeartbeatTimeout": 7201})

    assert rejection is not None
    assert rejection.message == (
        "1 validation error detected: Value '7201' at 'heartbeatTimeout' failed to satisfy constraint: "
        "Member must have value less than or equal to 7200"
    )


# --- model constraints botocore leaves to the service --------------------------------------------------------


def test_given_a_lifecycle_hook_name_with_a_space_when_completed_then_validation_error_naming_the_pattern() -> None:
    """AWS: Auto Scaling checks LifecycleHookName against its pattern [A-Za-z0-9\\-_\\/]+ (botocore does not)."""
    rejection = check_request(
        "autoscaling",
        "CompleteLifecycleAction",
        {
            "LifecycleHookName": "launch hook",
            "AutoScalingGroupName": "nodes",
            "LifecycleActionToken": TOKEN,
            "LifecycleActionResult": "CONTINUE",
            "InstanceId": INSTANCE_ID,
        },
    )

    assert rejection == Rejection(
        "ValidationError",
        "1 validation error detected: Value 'launch hook' at 'lifecycleHookName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [A-Za-z0-9\\-_\\/]+",
        400,
    )


def test_given_a_group_name_with_a_control_character_when_described_then_validation_error() -> None:
    """AWS: Auto Scaling's XML strings exclude control characters other than tab, CR and LF."""
    rejection = check_request("autoscaling", "DescribeWarmPool", {"AutoScalingGroupName": "nodes\x07"})

    assert rejection is not None
    assert "Member must satisfy regular expression pattern" in rejection.message


def test_given_a_group_name_with_a_supplementary_character_when_described_then_accepted() -> None:
    """AWS: Auto Scaling's XML strings allow every supplementary character (the Java pattern's surrogate pairs
    \\uD800\\uDC00-\\uDBFF\\uDFFF, read here as U+10000..U+10FFFF)."""
    assert check_request("autoscaling", "DescribeWarmPool", {"AutoScalingGroupName": "nodes-\U0001f680"}) is None


def test_given_an_ec2_account_id_that_is_not_12_digits_when_checked_then_invalid_parameter_value_for_the_pattern() -> (
    None
):
    """AWS: EC2 checks AccountID against [0-9]{12}."""
    rejection = check_request(
        "ec2",
        "AssociateCapacityReservationBillingOwner",
        {"CapacityReservationId": "cr-0123456789abcdef0", "UnusedReservationBillingOwnerId": "12345678901a"},
    )

    assert rejection == Rejection(
        "InvalidParameterValue",
        "Value ( 12345678901a ) for parameter unusedReservationBillingOwnerId is invalid. "
        "Expecting a value matching the pattern [0-9]{12}.",
        400,
    )


def test_given_an_unknown_interface_type_when_an_eni_is_created_then_invalid_parameter_value_listing_the_values() -> (
    None
):
    """AWS: EC2 accepts only the InterfaceType values of its enum (efa, efa-only, branch, trunk)."""
    rejection = check_request("ec2", "CreateNetworkInterface", {"SubnetId": SUBNET_ID, "InterfaceType": "ena"})

    assert rejection == Rejection(
        "InvalidParameterValue",
        "Value ( ena ) for parameter interfaceType is invalid. Expecting one of: efa, efa-only, branch, trunk.",
        400,
    )


def test_given_a_20_character_instance_id_when_a_lifecycle_action_is_completed_then_validation_error_on_length() -> (
    None
):
    """AWS: Auto Scaling InstanceId is XmlStringMaxLen19 (at most 19 characters)."""
    rejection = check_request(
        "autoscaling",
        "CompleteLifecycleAction",
        {
            "LifecycleHookName": "launch",
            "AutoScalingGroupName": "nodes",
            "LifecycleActionResult": "CONTINUE",
            "InstanceId": "i-0123456789abcdef01",
        },
    )

    assert rejection is not None
    assert rejection.message == (
        "1 validation error detected: Value 'i-0123456789abcdef01' at 'instanceId' failed to satisfy constraint: "
        "Member must have length less than or equal to 19"
    )


def test_given_a_129_character_image_name_when_an_image_is_created_then_invalid_parameter_value_on_length() -> None:
    """AWS: EC2 image names are 3 to 128 characters."""
    name = "n" * 129

    rejection = check_request("ec2", "CreateImage", {"InstanceId": INSTANCE_ID, "Name": name})

    assert rejection is not None
    assert rejection.code == "InvalidParameterValue"
    assert rejection.message == (
        f"Value ( {name} ) for parameter name is invalid. Expecting a length of between 3 and 128 characters."
    )


def test_given_101_instance_types_when_described_then_invalid_parameter_value_on_the_list_size() -> None:
    """AWS: DescribeInstanceTypes takes at most 100 instance types."""
    rejection = check_request("ec2", "DescribeInstanceTypes", {"InstanceTypes": ["m5.large"] * 101})

    assert rejection is not None
    assert rejection.message.endswith("for parameter instanceType is invalid. Expecting between 0 and 100 values.")


# --- nested members ------------------------------------------------------------------------------------------


def test_given_an_unknown_resource_type_in_tag_specifications_when_an_eni_is_created_then_the_path_is_named() -> None:
    """AWS: EC2 validates members inside list items (TagSpecification.N.ResourceType) and names the item."""
    rejection = check_request(
        "ec2",
        "CreateNetworkInterface",
        {
            "SubnetId": SUBNET_ID,
            "TagSpecifications": [
                {"ResourceType": "network-interface", "Tags": [{"Key": "a", "Value": "b"}]},
                {"ResourceType": "eni", "Tags": []},
            ],
        },
    )

    assert rejection is not None
    assert rejection.message.startswith("Value ( eni ) for parameter tagSpecification.2.resourceType is invalid.")


def test_given_a_udp_timeout_of_61_in_a_nested_structure_when_an_eni_is_created_then_the_documented_range_applies() -> (
    None
):
    """AWS: ConnectionTrackingSpecification.UdpTimeout is 30..60 seconds ("Min: 30 seconds. Max: 60 seconds.")."""
    rejection = check_request(
        "ec2", "CreateNetworkInterface", {"SubnetId": SUBNET_ID, "ConnectionTrackingSpecification": {"UdpTimeout": 61}}
    )

    assert rejection is not None
    assert rejection.message == (
        "Value ( 61 ) for parameter connectionTrackingSpecification.udpTimeout is invalid. "
        "Expecting a value between 30 and 60."
    )


def test_given_an_auto_scaling_filter_name_with_a_control_character_when_described_then_the_coral_path_is_named() -> (
    None
):
    """AWS: Auto Scaling names a list item's member as 'filters.N.member.name'."""
    rejection = check_request(
        "autoscaling", "DescribeAutoScalingGroups", {"Filters": [{"Name": "tag:a", "Values": ["b"]}, {"Name": "x\x00"}]}
    )

    assert rejection is not None
    assert "at 'filters.2.member.name' failed to satisfy constraint" in rejection.message


def test_given_two_violations_when_checked_then_only_the_first_in_model_member_order_is_reported() -> None:
    """AWS: the first violation (model member order: LifecycleHookName before InstanceId) is reported, whatever
    the order the caller passed the parameters in."""
    params = {"InstanceId": "i-0123456789abcdef01", "AutoScalingGroupName": "nodes", "LifecycleHookName": "a b"}

    rejection = check_request("autoscaling", "RecordLifecycleActionHeartbeat", params)

    assert rejection is not None
    assert rejection.message.startswith("1 validation error detected: Value 'a b' at 'lifecycleHookName'")


# --- FilterLimitExceeded ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["DescribeInstances", "DescribeNetworkInterfaces", "DescribeSubnets"])
def test_given_201_filter_values_across_filters_when_described_then_filter_limit_exceeded(operation: str) -> None:
    """AWS: EC2 refuses a call with more than 200 filter values in total: FilterLimitExceeded, "The maximum number
    of filter values specified on a single call is 200" (EC2 API reference, error codes)."""
    rejection = check_request("ec2", operation, {"Filters": _filters(100, 101)})

    assert rejection == Rejection(
        "FilterLimitExceeded", "The maximum number of filter values specified on a single call is 200", 400
    )


@pytest.mark.parametrize("operation", ["DescribeInstances", "DescribeNetworkInterfaces", "DescribeSubnets"])
def test_given_200_filter_values_across_filters_when_described_then_accepted(operation: str) -> None:
    """AWS: 200 filter values in one call is the limit itself, accepted."""
    assert FILTER_VALUE_LIMIT == 200
    assert check_request("ec2", operation, {"Filters": _filters(100, 100)}) is None


def test_given_201_filter_values_on_auto_scaling_when_described_then_no_ec2_filter_limit_applies() -> None:
    """AWS: FilterLimitExceeded is EC2's; Auto Scaling's Filters are not subject to it."""
    assert check_request("autoscaling", "DescribeAutoScalingGroups", {"Filters": _filters(100, 101)}) is None


# --- patterns Python cannot read -----------------------------------------------------------------------------


def test_given_ec2_and_auto_scaling_when_patterns_are_compiled_then_none_is_skipped() -> None:
    """AWS: every pattern of EC2 and Auto Scaling is checked; Auto Scaling's XML-string pattern (UTF-16
    surrogate pairs) is translated rather than skipped."""
    assert uncompilable_patterns("ec2") == []
    assert uncompilable_patterns("autoscaling") == []


def test_given_iam_when_patterns_are_compiled_then_the_unicode_property_classes_are_skipped() -> None:
    """AWS: IAM's tag patterns use Java's \\p{L} classes, which Python's re cannot compile: skipped, listed."""
    assert uncompilable_patterns("iam") == [
        "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+",
        "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@{}]+",
        "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@{}]*",
        "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*",
    ]


def test_given_a_skipped_pattern_when_its_value_breaks_a_length_limit_then_the_length_is_still_checked() -> None:
    """AWS: IAM tag keys are at most 128 characters; skipping the pattern does not skip the length."""
    rejection = check_request("iam", "TagRole", {"RoleName": "r", "Tags": [{"Key": "k" * 129, "Value": "v"}]})

    assert rejection is not None
    assert "at 'tags.1.member.key'" in rejection.message
    assert rejection.message.endswith("Member must have length less than or equal to 128")


# --- other services, errors of use, threads ------------------------------------------------------------------


def test_given_a_json_protocol_service_when_a_model_maximum_is_exceeded_then_validation_error() -> None:
    """AWS: SSM DescribeInstanceInformation refuses MaxResults above 50 ("Member must have value less than or
    equal to 50"); services other than EC2 answer in the validation-error wording."""
    rejection = check_request("ssm", "DescribeInstanceInformation", {"MaxResults": 51})

    assert rejection is not None
    assert rejection.code == "ValidationError"
    assert rejection.message.endswith(
        "at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50"
    )


def test_given_an_operation_the_model_lacks_when_checked_then_botocore_says_so() -> None:
    """botocore: an operation the model does not define is an error of the caller, not a request to judge."""
    with pytest.raises(OperationNotFoundError):
        check_request("ec2", "DescribeEverything", {})


def test_given_many_threads_when_they_check_at_once_then_each_gets_the_same_answer() -> None:
    """The dispatch layer calls check_request from many threads at once: the first calls load and compile the
    model (CloudWatch Logs, used by no other test here) concurrently and every thread gets AWS's answer."""
    barrier = threading.Barrier(32)

    def check(_: int) -> Rejection | None:
        barrier.wait()
        return check_request("logs", "DescribeLogGroups", {"limit": 51})

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(check, range(32)))

    expected = Rejection(
        "ValidationError",
        "1 validation error detected: Value '51' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 50",
        400,
    )
    assert answers == [expected] * 32


# --- what this project sends ---------------------------------------------------------------------------------

PROJECT_CALLS: list[tuple[str, str, Mapping[str, object]]] = [
    ("ec2", "DescribeInstances", {"InstanceIds": [INSTANCE_ID]}),
    ("ec2", "DescribeSubnets", {"SubnetIds": [SUBNET_ID, "subnet-0fedcba9876543210"]}),
    (
        "ec2",
        "DescribeNetworkInterfaces",
        {
            "Filters": [
                {"Name": "subnet-id", "Values": [SUBNET_ID]},
                {"Name": "tag:multus-ipam/owner", "Values": ["nodes"]},
                {"Name": "addresses.private-ip-address", "Values": ["10.0.1.5", "10.0.1.6"]},
            ],
            "MaxResults": 1000,
        },
    ),
    ("ec2", "DescribeNetworkInterfaces", {"NetworkInterfaceIds": [ENI_ID]}),
    ("ec2", "GetSubnetCidrReservations", {"SubnetId": SUBNET_ID, "MaxResults": 1000, "NextToken": "token"}),
    (
        "ec2",
        "CreateNetworkInterface",
        {
            "SubnetId": SUBNET_ID,
            "Groups": ["sg-0123456789abcdef0"],
            "Description": "multus-ipam nodes i-0123456789abcdef0 net1",
            "ClientToken": "c" * 64,
            "TagSpecifications": [
                {
                    "ResourceType": "network-interface",
                    "Tags": [{"Key": "multus-ipam/owner", "Value": "nodes"}, {"Key": "Name", "Value": "net1"}],
                }
            ],
            "PrivateIpAddress": "10.0.1.5",
            "Ipv6Addresses": [{"Ipv6Address": "2600:1f18:1234:5601::5"}],
        },
    ),
    ("ec2", "CreateNetworkInterface", {"SubnetId": SUBNET_ID, "Ipv6AddressCount": 1}),
    (
        "ec2",
        "AttachNetworkInterface",
        {"NetworkInterfaceId": ENI_ID, "InstanceId": INSTANCE_ID, "DeviceIndex": 1, "NetworkCardIndex": 0},
    ),
    (
        "ec2",
        "ModifyNetworkInterfaceAttribute",
        {
            "NetworkInterfaceId": ENI_ID,
            "Attachment": {"AttachmentId": "eni-attach-0123456789abcdef0", "DeleteOnTermination": True},
        },
    ),
    ("ec2", "ModifyNetworkInterfaceAttribute", {"NetworkInterfaceId": ENI_ID, "SourceDestCheck": {"Value": False}}),
    ("ec2", "DetachNetworkInterface", {"AttachmentId": "eni-attach-0123456789abcdef0"}),
    ("ec2", "DeleteNetworkInterface", {"NetworkInterfaceId": ENI_ID}),
    (
        "ec2",
        "AssignPrivateIpAddresses",
        {"NetworkInterfaceId": ENI_ID, "PrivateIpAddresses": ["10.0.1.7"], "AllowReassignment": True},
    ),
    ("ec2", "UnassignPrivateIpAddresses", {"NetworkInterfaceId": ENI_ID, "PrivateIpAddresses": ["10.0.1.7"]}),
    ("ec2", "AssignIpv6Addresses", {"NetworkInterfaceId": ENI_ID, "Ipv6Addresses": ["2600:1f18:1234:5601::7"]}),
    ("ec2", "UnassignIpv6Addresses", {"NetworkInterfaceId": ENI_ID, "Ipv6Addresses": ["2600:1f18:1234:5601::7"]}),
    (
        "autoscaling",
        "CompleteLifecycleAction",
        {
            "LifecycleHookName": "multus-launch",
            "AutoScalingGroupName": "eks-nodes-multus",
            "LifecycleActionToken": TOKEN,
            "LifecycleActionResult": "CONTINUE",
            "InstanceId": INSTANCE_ID,
        },
    ),
    (
        "autoscaling",
        "RecordLifecycleActionHeartbeat",
        {
            "LifecycleHookName": "multus-launch",
            "AutoScalingGroupName": "eks-nodes-multus",
            "LifecycleActionToken": TOKEN,
            "InstanceId": INSTANCE_ID,
        },
    ),
    ("autoscaling", "DescribeAutoScalingGroups", {"AutoScalingGroupNames": ["eks-nodes-multus"]}),
    ("autoscaling", "DescribeAutoScalingInstances", {"InstanceIds": [INSTANCE_ID]}),
    (
        "autoscaling",
        "DescribeWarmPool",
        {"AutoScalingGroupName": "eks-nodes-multus", "MaxRecords": 50, "NextToken": "token"},
    ),
]


@pytest.mark.parametrize(
    ("service", "operation", "params"), PROJECT_CALLS, ids=[f"{s}-{o}" for s, o, _ in PROJECT_CALLS]
)
def test_given_a_typical_request_of_this_project_when_checked_then_accepted(
    service: str, operation: str, params: Mapping[str, object]
) -> None:
    """AWS: these requests, as the functions and the pod IP manager send them, are valid."""
    assert check_request(service, operation, params) is None
