"""The parts of template.yaml that decide whether the stack works and tears down cleanly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from multus_ipam.lifecycle import Metric
from multus_ipam.observability import NAMESPACE, SERVICE, PowertoolsMetrics
from tests.stack.template import as_list, resolve, resource, template

SETTINGS_SOURCE = Path(__file__).resolve().parents[2] / "layers" / "multus_ipam" / "multus_ipam" / "settings.py"
GROUP_NAME = template()["Globals"]["Function"]["Environment"]["Variables"]["AUTOSCALING_GROUP_NAME"]


SERVING_RESOURCES = {
    "LifecycleEventRule",
    "IntakeMapping",
    "IntakeQueuePolicy",
    "ReconcilerFunction",
    "StaticIpFunction",
    "CidrReservationFunction",
    "StaticIpFunctionEventInvokeConfig",
    "CidrReservationFunctionEventInvokeConfig",
    "FunctionRole",
    "UndeliveredEventQueuePolicy",
    "PodReservationsReady",
}


def _globals() -> dict[str, Any]:
    found: dict[str, Any] = template()["Globals"]["Function"]
    return found


def _stack_hook_names(create_node_group: bool) -> list[str]:
    """The names the template gives its launch and terminate hooks, in that order, for either kind of group."""
    if create_node_group:
        hooks = resource("NodeGroup")["Properties"]["LifecycleHookSpecificationList"]
        by_transition = {hook["LifecycleTransition"]: hook["LifecycleHookName"] for hook in hooks}
    else:
        by_transition = {
            resource(name)["Properties"]["LifecycleTransition"]: resource(name)["Properties"]["LifecycleHookName"]
            for name in ("ExistingGroupLaunchHook", "ExistingGroupTerminateHook")
        }
    conditions = {"IsCreateNodeGroup": create_node_group}
    return [
        resolve(by_transition[transition], conditions)
        for transition in ("autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING")
    ]


def test_given_the_node_group_when_reading_its_hooks_then_both_are_declared_with_the_group() -> None:
    hooks = resource("NodeGroup")["Properties"]["LifecycleHookSpecificationList"]
    transitions = {hook["LifecycleTransition"]: hook for hook in hooks}
    assert set(transitions) == {"autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING"}
    for hook in hooks:
        assert hook["HeartbeatTimeout"] == {"Ref": "HookHeartbeatTimeout"}
    assert transitions["autoscaling:EC2_INSTANCE_LAUNCHING"]["DefaultResult"] == {"Ref": "FailureResult"}


def test_given_an_existing_group_when_reading_the_hooks_then_both_transitions_are_added() -> None:
    launch = resource("ExistingGroupLaunchHook")
    terminate = resource("ExistingGroupTerminateHook")
    assert launch["Properties"]["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
    assert terminate["Properties"]["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert launch["Condition"] == terminate["Condition"] == "IsExistingGroup"
    assert resource("NodeGroup")["Condition"] == "IsCreateNodeGroup"


@pytest.mark.parametrize("name", ["NodeGroup", "ExistingGroupLaunchHook", "ExistingGroupTerminateHook"])
def test_given_the_hooks_when_reading_dependencies_then_they_go_before_what_serves_them(name: str) -> None:
    assert set(as_list(resource(name)["DependsOn"])) >= SERVING_RESOURCES


def test_given_the_node_group_when_reading_dependencies_then_it_waits_for_the_access_entry_if_any() -> None:
    # DependsOn cannot name NodeAccessEntry (its condition may be false while the group exists): a handle does.
    assert "NodeAccessReady" in as_list(resource("NodeGroup")["DependsOn"])
    handle = resource("NodeAccessReady")
    assert handle["Type"] == "AWS::CloudFormation::WaitConditionHandle"
    assert handle["Condition"] == resource("NodeGroup")["Condition"]
    assert handle["Metadata"]["AccessEntry"] == {
        "Fn::If": [resource("NodeAccessEntry")["Condition"], {"Ref": "NodeAccessEntry"}, {"Ref": "AWS::NoValue"}]
    }


def test_given_the_node_group_when_reading_its_size_then_desired_capacity_only_when_given() -> None:
    # A DesiredCapacity in the template is applied again by every update of the group (fights cluster-autoscaler).
    properties = resource("NodeGroup")["Properties"]
    assert properties["DesiredCapacity"] == {
        "Fn::If": ["HasDesiredCapacity", {"Ref": "NodeGroupDesiredCapacity"}, {"Ref": "AWS::NoValue"}]
    }
    assert template()["Conditions"]["HasDesiredCapacity"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "NodeGroupDesiredCapacity"}, ""]}]
    }
    assert template()["Parameters"]["NodeGroupDesiredCapacity"]["Default"] == ""


def test_given_the_rolling_update_when_reading_it_then_min_in_service_is_its_own_parameter_defaulting_to_0() -> None:
    # MinInstancesInService must be below MaxSize: NodeGroupMinSize would break a fixed-size group (Min = Max).
    rolling = resource("NodeGroup")["UpdatePolicy"]["AutoScalingRollingUpdate"]
    assert rolling["MinInstancesInService"] == {"Ref": "NodeGroupMinInstancesInService"}
    assert rolling["MaxBatchSize"] == 1
    parameter = template()["Parameters"]["NodeGroupMinInstancesInService"]
    assert parameter["Default"] == 0
    assert parameter["Default"] < template()["Parameters"]["NodeGroupMaxSize"]["MinValue"]


def test_given_the_rule_when_reading_its_pattern_then_source_both_lifecycle_types_and_the_group() -> None:
    pattern = resource("LifecycleEventRule")["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.autoscaling"]
    assert set(pattern["detail-type"]) == {
        "EC2 Instance-launch Lifecycle Action",
        "EC2 Instance-terminate Lifecycle Action",
    }
    assert set(pattern["detail"]) == {"AutoScalingGroupName", "LifecycleHookName"}
    assert pattern["detail"]["AutoScalingGroupName"] == [GROUP_NAME]


@pytest.mark.parametrize("create_node_group", [True, False])
def test_given_the_rule_when_reading_its_hook_filter_then_only_the_stacks_two_hooks_match(
    create_node_group: bool,
) -> None:
    hooks = resource("LifecycleEventRule")["Properties"]["EventPattern"]["detail"]["LifecycleHookName"]
    resolved = resolve(hooks, {"IsCreateNodeGroup": create_node_group})
    assert resolved == _stack_hook_names(create_node_group)
    assert len(set(resolved)) == 2


def test_given_the_rule_when_reading_its_targets_then_the_intake_queue_feeds_the_function_chosen_by_ip_mode() -> None:
    (target,) = resource("LifecycleEventRule")["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["IntakeQueue", "Arn"]}
    mapping = resource("IntakeMapping")["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["IntakeQueue", "Arn"]}
    assert mapping["FunctionName"] == {
        "Fn::If": ["IsStatic", {"Ref": "StaticIpFunction"}, {"Ref": "CidrReservationFunction"}]
    }
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["UndeliveredEventQueue", "Arn"]}}
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == {"Ref": "HookHeartbeatTimeout"}
    assert template()["Parameters"]["IpMode"]["AllowedValues"] == ["static", "cidr-reservation"]


def test_given_async_invocation_when_reading_event_invoke_config_then_retry_once_within_the_hook_timeout() -> None:
    config = _globals()["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] == 1
    assert config["MaximumEventAgeInSeconds"] == {"Ref": "HookHeartbeatTimeout"}
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["FailedInvocationQueue", "Arn"]},
    }


def test_given_the_function_timeout_when_compared_with_the_hook_then_two_runs_and_the_retry_delay_fit() -> None:
    timeout = _globals()["Timeout"]
    margin = int(_globals()["Environment"]["Variables"]["SAFETY_MARGIN_SECONDS"])
    lambda_retry_delay = 60
    assert margin < timeout
    assert template()["Parameters"]["HookHeartbeatTimeout"]["MinValue"] >= 2 * timeout + lambda_retry_delay


def test_given_the_intake_queue_when_compared_with_the_function_and_the_hook_then_a_deferral_fits_in_the_hook() -> None:
    # Lambda refuses a mapping whose queue's visibility timeout is below the function timeout; a deferred event
    # comes back within the visibility timeout and its attempt may take the function timeout: the heartbeat the
    # deferral records (HOOK_HEARTBEAT_TIMEOUT_SECONDS) must outlast both.
    queue = resource("IntakeQueue")["Properties"]
    variables = _globals()["Environment"]["Variables"]
    timeout = _globals()["Timeout"]
    assert queue["VisibilityTimeout"] >= timeout
    assert int(variables["RETRY_DELAY_SECONDS"]) == queue["VisibilityTimeout"]
    assert variables["HOOK_HEARTBEAT_TIMEOUT_SECONDS"] == {"Ref": "HookHeartbeatTimeout"}
    assert template()["Parameters"]["HookHeartbeatTimeout"]["MinValue"] >= queue["VisibilityTimeout"] + timeout
    most = template()["Parameters"]["IntakeMaxReceiveCount"]["MaxValue"]
    assert queue["MessageRetentionPeriod"] > most * queue["VisibilityTimeout"], "never dropped unseen"
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["IntakeDeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "IntakeMaxReceiveCount"},
    }
    assert variables["MAX_RECEIVE_COUNT"] == {"Ref": "IntakeMaxReceiveCount"}


def test_given_the_mapping_when_reading_it_then_bounded_concurrency_one_event_each_and_partial_failures() -> None:
    mapping = resource("IntakeMapping")["Properties"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "IntakeMaximumConcurrency"}}
    parameter = template()["Parameters"]["IntakeMaximumConcurrency"]
    assert (parameter["MinValue"], parameter["MaxValue"]) == (2, 1000)  # AWS's range for MaximumConcurrency
    assert mapping["BatchSize"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_given_the_reconciler_when_reading_it_then_every_minute_with_the_intake_queue() -> None:
    properties = resource("ReconcilerFunction")["Properties"]
    # No reserved concurrency: Lambda refuses one that leaves the account's unreserved concurrency under 100.
    assert "ReservedConcurrentExecutions" not in properties
    (event,) = properties["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == "rate(1 minute)"
    assert properties["Environment"]["Variables"]["INTAKE_QUEUE_URL"] == {"Ref": "IntakeQueue"}
    assert properties["Handler"] == "app.lambda_handler"
    assert properties["CodeUri"] == "functions/reconciler/"


def test_given_the_functions_when_reading_runtime_then_python_3_13_on_arm64() -> None:
    assert _globals()["Runtime"] == "python3.13"
    assert _globals()["Architectures"] == ["arm64"]


def test_given_the_environment_when_compared_with_the_settings_then_every_variable_is_one_they_read() -> None:
    known = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', SETTINGS_SOURCE.read_text())) | {"POWERTOOLS_LOG_LEVEL"}
    names = set(_globals()["Environment"]["Variables"])
    for function in ("StaticIpFunction", "CidrReservationFunction", "ReconcilerFunction"):
        names |= set(resource(function)["Properties"].get("Environment", {}).get("Variables", {}))
    known |= {"INTAKE_QUEUE_URL"}  # read by the reconciler's wiring (multus_ipam.runtime.build_reconciler)
    assert names <= known, sorted(names - known)
    required = {"AUTOSCALING_GROUP_NAME", "MULTUS_SUBNET_IDS", "MULTUS_SECURITY_GROUP_IDS", "OWNER_ID"}
    assert required | {"LIFECYCLE_HOOK_NAMES"} <= names
    assert _globals()["Environment"]["Variables"]["OWNER_ID"] == {"Ref": "AWS::StackName"}


@pytest.mark.parametrize("create_node_group", [True, False])
def test_given_the_environment_when_reading_hook_names_then_both_functions_serve_exactly_the_stacks_hooks(
    create_node_group: bool,
) -> None:
    # Set once in Globals, for both functions; neither may override it.
    for function in ("StaticIpFunction", "CidrReservationFunction"):
        assert "LIFECYCLE_HOOK_NAMES" not in resource(function)["Properties"].get("Environment", {}).get(
            "Variables", {}
        )
    value = resolve(
        _globals()["Environment"]["Variables"]["LIFECYCLE_HOOK_NAMES"], {"IsCreateNodeGroup": create_node_group}
    )
    assert value.split(",") == _stack_hook_names(create_node_group)


def test_given_the_launch_template_metadata_options_then_imdsv2_required_and_the_hop_limit_is_a_parameter() -> None:
    options = resource("NodeLaunchTemplate")["Properties"]["LaunchTemplateData"]["MetadataOptions"]
    assert options["HttpTokens"] == "required"
    assert options["HttpPutResponseHopLimit"] == {"Ref": "ImdsHopLimit"}
    assert options["HttpEndpoint"] == "enabled"


def test_given_the_imds_hop_limit_parameter_then_1_by_default_and_2_only_for_the_pod_side_with_imds() -> None:
    # 1 keeps pods (and so every workload on a Multus node) away from IMDS and the node role's credentials; the
    # pod IP manager's node agent runs on the host network and its init/sidecar modes can use PIM_ENI_LOOKUP=ec2.
    parameter = template()["Parameters"]["ImdsHopLimit"]
    assert (parameter["Type"], parameter["Default"], parameter["AllowedValues"]) == ("Number", 1, [1, 2])
    description = " ".join(parameter["Description"].split())
    assert "2 only if you run the pod IP manager's init/sidecar modes with IMDS" in description
    groups = template()["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    assert any("ImdsHopLimit" in group["Parameters"] for group in groups)


def _block_device_mappings() -> list[dict[str, Any]]:
    mappings: list[dict[str, Any]] = resource("NodeLaunchTemplate")["Properties"]["LaunchTemplateData"][
        "BlockDeviceMappings"
    ]
    return mappings


def _root_volume() -> dict[str, Any]:
    (root,) = [mapping for mapping in _block_device_mappings() if mapping["DeviceName"] == "/dev/xvda"]
    ebs: dict[str, Any] = root["Ebs"]
    return ebs


def test_given_the_launch_template_when_reading_the_root_volume_then_encrypted_gp3_deleted_with_the_node() -> None:
    ebs = _root_volume()
    assert ebs["Encrypted"] is True
    assert ebs["VolumeType"] == "gp3"
    assert ebs["DeleteOnTermination"] is True
    assert ebs["VolumeSize"] == {"Ref": "NodeRootVolumeSize"}
    size = template()["Parameters"]["NodeRootVolumeSize"]
    assert size["Default"] == size["MinValue"] == 20


def test_given_the_launch_template_when_reading_every_volume_then_none_is_left_unencrypted() -> None:
    volumes = [mapping["Ebs"] for mapping in _block_device_mappings() if "Ebs" in mapping]
    assert volumes
    assert all(volume["Encrypted"] is True for volume in volumes)


@pytest.mark.parametrize(("key", "expected"), [("alias/nodes", "alias/nodes"), ("", "<AWS::NoValue>")])
def test_given_a_kms_key_parameter_when_reading_the_root_volume_then_that_key_or_the_accounts_default(
    key: str, expected: str
) -> None:
    parameter = template()["Parameters"]["NodeRootVolumeKmsKeyId"]
    assert parameter["Default"] == ""
    assert re.fullmatch(parameter["AllowedPattern"], key)
    condition = template()["Conditions"]["HasNodeRootVolumeKmsKey"]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "NodeRootVolumeKmsKeyId"}, ""]}]}
    parameters = {"NodeRootVolumeKmsKeyId": key, "AWS::NoValue": "<AWS::NoValue>"}
    assert resolve(_root_volume()["KmsKeyId"], {"HasNodeRootVolumeKmsKey": key != ""}, parameters) == expected


def test_given_the_user_data_when_reading_it_then_nodeadm_joins_and_multus_links_are_named_by_subnet() -> None:
    # The node side in detail: tests/stack/test_node_user_data.py (the embedded files) and tests/node (run).
    user_data = resource("NodeLaunchTemplate")["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    text, variables = user_data["Fn::Sub"]
    assert "Content-Type: application/node.eks.aws" in text
    assert "kind: NodeConfig" in text
    assert "apiServerEndpoint: ${ClusterEndpoint}" in text
    assert 'ENV{SYSTEMD_WANTS}+="multus-link-up@$name.service"' in variables["MultusLinkUpRule"]
    assert "meta-data/network/interfaces/macs/$mac/subnet-id" in variables["MultusLinkUp"]
    assert "ExecStartPre=/usr/local/sbin/multus-links-wait" in variables["KubeletDropIn"]
    assert variables["LinkPlan"] == {"Fn::GetAtt": ["LinkPlan", "Plan"]}
    assert resource("LinkPlan")["Properties"]["SubnetIds"] == {"Ref": "MultusSubnetIds"}


def test_given_the_node_image_when_reading_its_parameter_then_it_comes_from_the_eks_ssm_parameter() -> None:
    parameter = template()["Parameters"]["NodeImageId"]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert parameter["Default"].startswith("/aws/service/eks/optimized-ami/")
    assert "amazon-linux-2023" in parameter["Default"]


def test_given_pod_reservations_when_reading_them_then_explicit_and_awaited_by_the_group() -> None:
    handle = resource("PodReservationsReady")["Metadata"]["Reservations"]
    for n in (1, 2, 3):
        assert resource(f"PodReservation{n}")["Properties"]["ReservationType"] == "explicit"
        assert {"Fn::If": [f"HasPodReservation{n}", {"Ref": f"PodReservation{n}"}, {"Ref": "AWS::NoValue"}]} in handle


def test_given_the_abandon_alarm_when_compared_with_emitted_metrics_then_namespace_and_dimensions_match(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = PowertoolsMetrics("static")
    metrics.count(Metric.LAUNCH_FAILURES)
    metrics.flush()
    emitted = capsys.readouterr().out
    properties = resource("LaunchFailureAlarm")["Properties"]
    dimensions = {d["Name"]: d["Value"] for d in properties["Dimensions"]}
    assert properties["Namespace"] == NAMESPACE
    assert properties["MetricName"] == Metric.LAUNCH_FAILURES.value
    assert dimensions == {"service": SERVICE, "Mode": {"Ref": "IpMode"}}
    assert '"Dimensions":[["Mode","service"]]' in emitted


@pytest.mark.parametrize(
    ("alarm", "queue"),
    [
        ("UndeliveredEventAlarm", "UndeliveredEventQueue"),
        ("FailedInvocationAlarm", "FailedInvocationQueue"),
        ("DeadLetteredEventAlarm", "IntakeDeadLetterQueue"),
    ],
)
def test_given_a_failure_queue_when_reading_its_alarm_then_any_message_alarms(alarm: str, queue: str) -> None:
    properties = resource(alarm)["Properties"]
    assert properties["Namespace"] == "AWS/SQS"
    assert properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert properties["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    assert properties["Threshold"] == 1


def test_given_the_log_groups_when_reading_the_functions_then_each_writes_to_a_stack_owned_group() -> None:
    for function, group in (
        ("StaticIpFunction", "StaticIpLogGroup"),
        ("CidrReservationFunction", "CidrReservationLogGroup"),
        ("ReconcilerFunction", "ReconcilerLogGroup"),
    ):
        assert resource(function)["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": group}}
        assert resource(group)["Type"] == "AWS::Logs::LogGroup"


# CloudFormation evaluates Rules before anything else and accepts there only Ref and the rule functions
# (cfn-lint does not check this: a Fn::Join in an assertion passes it and fails only at deploy time).
RULE_FUNCTIONS = {
    "Ref",
    "Fn::And",
    "Fn::Contains",
    "Fn::EachMemberEquals",
    "Fn::EachMemberIn",
    "Fn::Equals",
    "Fn::Not",
    "Fn::Or",
    "Fn::RefAll",
    "Fn::ValueOf",
    "Fn::ValueOfAll",
}


def _functions_in(node: Any) -> list[tuple[str, Any]]:
    if isinstance(node, list):
        return [found for item in node for found in _functions_in(item)]
    if isinstance(node, dict):
        return [
            *(
                (key, value)
                for key, value in node.items()
                if key == "Ref" or key.startswith("Fn::") or key == "Condition"
            ),
            *(found for value in node.values() for found in _functions_in(value)),
        ]
    return []


def _rule_expressions() -> list[tuple[str, Any]]:
    expressions = []
    for name, rule in template()["Rules"].items():
        if "RuleCondition" in rule:
            expressions.append((f"{name}.RuleCondition", rule["RuleCondition"]))
        assert rule["Assertions"], name
        expressions += [
            (f"{name}.Assertions[{i}]", assertion["Assert"]) for i, assertion in enumerate(rule["Assertions"])
        ]
    return expressions


@pytest.mark.parametrize(
    ("where", "expression"), _rule_expressions(), ids=lambda value: value if isinstance(value, str) else ""
)
def test_given_a_rule_when_walking_its_expressions_then_only_rule_functions_and_refs_to_parameters(
    where: str, expression: Any
) -> None:
    functions = _functions_in(expression)
    assert functions, where
    refused = sorted({name for name, _ in functions} - RULE_FUNCTIONS)
    assert not refused, f"{where} uses {refused}, which CloudFormation does not allow in Rules"
    parameters = set(template()["Parameters"])
    refs = {argument for name, argument in functions if name == "Ref"}
    assert refs <= parameters, f"{where} refers to {sorted(refs - parameters)}, which are not parameters"


@pytest.mark.parametrize("n", [1, 2, 3])
def test_given_a_pod_reservation_when_reading_its_rule_then_its_subnet_must_be_a_multus_subnet(n: int) -> None:
    rule = template()["Rules"][f"PodReservation{n}NeedsASubnet"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": f"PodReservation{n}Cidr"}, ""]}]}
    asserts = [assertion["Assert"] for assertion in rule["Assertions"]]
    assert {"Fn::Contains": [{"Ref": "MultusSubnetIds"}, {"Ref": f"PodReservation{n}SubnetId"}]} in asserts
