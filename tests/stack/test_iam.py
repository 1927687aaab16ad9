"""The functions' IAM policy grants exactly what the adapters declare, scoped as tightly as EC2 allows."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from multus_ipam.runtime import LIFECYCLE_IAM_ACTIONS, RECONCILER_IAM_ACTIONS
from tests.stack.template import Statement, as_list, function_role_statements, resource, role_statements, template

AWS_SERVICES = ("ec2:", "autoscaling:")
#: What the functions need besides the AWS calls of the adapters: their own logs and the on-failure queue;
#: the lifecycle functions' role also reads the intake queue for the event source mapping.
RUNTIME_ACTIONS = frozenset({"logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage"})
MAPPING_ACTIONS = frozenset({"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"})
OWNER_CONDITION = {"StringEquals": {"aws:ResourceTag/multus-ipam:owner": {"Ref": "AWS::StackName"}}}
ENI_ACTIONS = (
    "ec2:AttachNetworkInterface",
    "ec2:ModifyNetworkInterfaceAttribute",
    "ec2:DetachNetworkInterface",
    "ec2:DeleteNetworkInterface",
)


def _actions(statement: Statement) -> set[str]:
    return set(as_list(statement["Action"]))


def _is_read_only(action: str) -> bool:
    verb = action.split(":", 1)[1]
    return verb.startswith(("Describe", "Get", "List"))


def _statements_granting(action: str) -> list[Statement]:
    return [s for s in function_role_statements() if action in _actions(s)]


def _resource_text(statement: Statement) -> str:
    """The statement's resource as text: an ARN, or the template of an !Sub."""
    value: Any = statement["Resource"]
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return str(sub[0] if isinstance(sub, list) else sub)
    return str(value)


def test_given_the_adapters_when_reading_the_function_policy_then_it_grants_exactly_their_actions() -> None:
    declared = LIFECYCLE_IAM_ACTIONS
    granted = {a for s in function_role_statements() for a in _actions(s) if a.startswith(AWS_SERVICES)}
    assert granted == declared, f"missing: {sorted(declared - granted)}, extra: {sorted(granted - declared)}"


def test_given_the_function_policy_when_reading_other_actions_then_only_logs_the_queues() -> None:
    other = {a for s in function_role_statements() for a in _actions(s) if not a.startswith(AWS_SERVICES)}
    assert other == RUNTIME_ACTIONS | MAPPING_ACTIONS
    (reading,) = [s for s in function_role_statements() if "sqs:ReceiveMessage" in _actions(s)]
    assert reading["Resource"] == {"Fn::GetAtt": ["IntakeQueue", "Arn"]}


def test_given_the_reconciler_when_reading_its_policy_then_it_grants_exactly_its_actions_scoped() -> None:
    statements = role_statements("ReconcilerRole")
    granted = {a for s in statements for a in _actions(s) if a.startswith((*AWS_SERVICES, "sqs:Get"))}
    granted |= {a for s in statements for a in _actions(s) if a == "sqs:SendMessage" and "Intake" in str(s)}
    assert granted == RECONCILER_IAM_ACTIONS, sorted(granted ^ RECONCILER_IAM_ACTIONS)
    (deleting,) = [s for s in statements if "ec2:DeleteNetworkInterface" in _actions(s)]
    assert deleting["Condition"]["StringEquals"] == OWNER_CONDITION["StringEquals"]
    assert _subnet_patterns(deleting, ["subnet-0aaa"]) == ["arn:*:ec2:*:*:subnet/subnet-0aaa"]
    for statement in statements:
        mutating = {a for a in _actions(statement) if not _is_read_only(a)}
        if mutating:
            assert "*" not in as_list(statement["Resource"]), f"{sorted(mutating)} on Resource '*'"
    assert resource("ReconcilerFunction")["Properties"]["Role"] == {"Fn::GetAtt": ["ReconcilerRole", "Arn"]}


def test_given_the_function_policy_when_reading_statements_then_all_allow_and_none_uses_wildcard_actions() -> None:
    for statement in function_role_statements():
        assert statement["Effect"] == "Allow"
        assert not any("*" in action for action in _actions(statement)), statement


def test_given_a_mutating_action_when_reading_its_statements_then_none_has_a_wildcard_resource() -> None:
    for statement in function_role_statements():
        mutating = {a for a in _actions(statement) if not _is_read_only(a)}
        if mutating:
            assert "*" not in as_list(statement["Resource"]), f"{sorted(mutating)} on Resource '*'"


def test_given_create_network_interface_when_reading_its_statements_then_subnets_groups_and_tags_are_pinned() -> None:
    statements = {_resource_text(s).rsplit(":", 1)[1]: s for s in _statements_granting("ec2:CreateNetworkInterface")}
    assert set(statements) == {"subnet/*", "security-group/*", "network-interface/*"}
    assert statements["subnet/*"]["Condition"] == {"StringEquals": {"ec2:SubnetID": {"Ref": "MultusSubnetIds"}}}
    assert statements["security-group/*"]["Condition"] == {
        "StringEquals": {"ec2:SecurityGroupID": {"Ref": "MultusSecurityGroupIds"}}
    }
    request_tags = statements["network-interface/*"]["Condition"]["StringEquals"]
    assert request_tags["aws:RequestTag/multus-ipam:owner"] == {"Ref": "AWS::StackName"}
    assert request_tags["aws:RequestTag/node.k8s.amazonaws.com/no_manage"] == "true"


def test_given_create_tags_when_reading_its_statement_then_only_while_creating_a_network_interface() -> None:
    (statement,) = _statements_granting("ec2:CreateTags")
    assert _resource_text(statement).endswith(":network-interface/*")
    assert statement["Condition"] == {"StringEquals": {"ec2:CreateAction": "CreateNetworkInterface"}}


def test_given_eni_changes_when_reading_their_statements_then_eni_side_requires_our_owner_tag_and_subnet() -> None:
    # Service Authorization Reference (EC2): the network-interface resource of Attach/Detach/Modify/Delete carries
    # aws:ResourceTag/* and ec2:Subnet (an ARN). CreateNetworkInterface is pinned on its subnet resource instead
    # (ec2:SubnetID), where the key is certain to be set.
    for action in ENI_ACTIONS:
        eni_statements = [s for s in _statements_granting(action) if "network-interface" in _resource_text(s)]
        assert eni_statements, action
        for statement in eni_statements:
            assert statement["Condition"]["StringEquals"] == OWNER_CONDITION["StringEquals"], action
            assert set(statement["Condition"]) == {"StringEquals", "ArnLike"}, action
            assert _subnet_patterns(statement, ["subnet-0aaa", "subnet-0bbb"]) == [
                "arn:*:ec2:*:*:subnet/subnet-0aaa",
                "arn:*:ec2:*:*:subnet/subnet-0bbb",
            ], action


@pytest.mark.parametrize(
    ("subnet_arn", "allowed"),
    [
        ("arn:aws:ec2:us-east-1:123456789012:subnet/subnet-0aaa", True),
        ("arn:aws:ec2:us-east-1:210987654321:subnet/subnet-0bbb", True),  # shared with us through AWS RAM
        ("arn:aws-cn:ec2:cn-north-1:123456789012:subnet/subnet-0aaa", True),
        ("arn:aws:ec2:us-east-1:123456789012:subnet/subnet-0ccc", False),
        ("arn:aws:ec2:us-east-1:123456789012:subnet/subnet-0aaab", False),
        ("arn:aws:ec2:us-east-1:123456789012:subnet/subnet-0aa", False),
    ],
)
def test_given_the_subnet_condition_when_evaluated_like_iam_then_only_multus_subnets_match(
    subnet_arn: str, allowed: bool
) -> None:
    # ArnLike: each of the six colon-separated parts matched on its own, "*" any run of characters (IAM policy
    # elements reference, "ARN condition operators").
    (statement,) = [
        s for s in _statements_granting("ec2:DeleteNetworkInterface") if "network-interface" in _resource_text(s)
    ]
    patterns = _subnet_patterns(statement, ["subnet-0aaa", "subnet-0bbb"])
    assert any(_arn_like(subnet_arn, pattern) for pattern in patterns) is allowed


def test_given_the_instance_side_of_eni_changes_then_only_instances_auto_scaling_tagged_with_our_group() -> None:
    # Service Authorization Reference (EC2): the instance resource of Attach/Detach/ModifyNetworkInterfaceAttribute
    # carries aws:ResourceTag/*; Auto Scaling tags every instance it launches aws:autoscaling:groupName.
    group = template()["Globals"]["Function"]["Environment"]["Variables"]["AUTOSCALING_GROUP_NAME"]
    for action in ("ec2:AttachNetworkInterface", "ec2:ModifyNetworkInterfaceAttribute", "ec2:DetachNetworkInterface"):
        (statement,) = [s for s in _statements_granting(action) if _resource_text(s).endswith(":instance/*")]
        assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/aws:autoscaling:groupName": group}}


def _subnet_patterns(statement: Statement, subnet_ids: list[str]) -> list[str]:
    """The statement's ec2:Subnet patterns once CloudFormation resolves them with MultusSubnetIds = ``subnet_ids``."""
    patterns = _resolve(statement["Condition"]["ArnLike"]["ec2:Subnet"], {"MultusSubnetIds": subnet_ids})
    assert isinstance(patterns, list)
    return [str(pattern) for pattern in patterns]


def _resolve(value: Any, parameters: dict[str, Any]) -> Any:
    """Fn::Split, Fn::Join and Ref as CloudFormation evaluates them (the only functions these conditions use)."""
    if isinstance(value, dict):
        ((function, argument),) = value.items()
        if function == "Ref":
            return parameters[argument]
        if function == "Fn::Join":
            delimiter, items = argument
            assert isinstance(delimiter, str), "Fn::Join's delimiter cannot be a function"
            # Its list: a list of values that are each a string, or a function giving the whole list (a Ref to a
            # List parameter). CloudFormation refuses a list nested in the list.
            values = (
                _resolve(items, parameters) if isinstance(items, dict) else [_resolve(i, parameters) for i in items]
            )
            assert isinstance(values, list), values
            assert all(isinstance(v, str) for v in values), f"Fn::Join of non-strings: {values}"
            return delimiter.join(values)
        if function == "Fn::Split":
            delimiter, text = argument
            return str(_resolve(text, parameters)).split(delimiter)
        raise AssertionError(f"unexpected function {function}")
    return value


def _arn_like(arn: str, pattern: str) -> bool:
    arn_parts, pattern_parts = arn.split(":", 5), pattern.split(":", 5)
    return len(arn_parts) == len(pattern_parts) == 6 and all(
        fnmatch.fnmatchcase(part, wanted) for part, wanted in zip(arn_parts, pattern_parts, strict=True)
    )


def test_given_delete_network_interface_when_reading_its_statements_then_only_network_interfaces() -> None:
    for statement in _statements_granting("ec2:DeleteNetworkInterface"):
        assert _resource_text(statement).endswith(":network-interface/*")


def test_given_attach_and_detach_when_reading_statements_then_the_instance_side_is_granted() -> None:
    for action in ("ec2:AttachNetworkInterface", "ec2:DetachNetworkInterface"):
        resources = {_resource_text(s).rsplit(":", 1)[1] for s in _statements_granting(action)}
        assert resources == {"network-interface/*", "instance/*"}, action


@pytest.mark.parametrize(
    "action", ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
)
def test_given_lifecycle_action_calls_when_reading_their_statement_then_only_this_group(action: str) -> None:
    (statement,) = _statements_granting(action)
    assert _resource_text(statement).endswith(":autoScalingGroup:*:autoScalingGroupName/${Group}")
    group = statement["Resource"]["Fn::Sub"][1]["Group"]
    assert group == template()["Globals"]["Function"]["Environment"]["Variables"]["AUTOSCALING_GROUP_NAME"]


def test_given_the_functions_when_reading_their_roles_then_both_use_the_tested_role_and_no_sam_policies() -> None:
    for name in ("StaticIpFunction", "CidrReservationFunction"):
        properties = resource(name)["Properties"]
        assert properties["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
        assert "Policies" not in properties  # SAM would add statements this test cannot see


def test_given_the_intake_queue_policy_when_reading_it_then_only_the_rule_may_send() -> None:
    (statement,) = as_list(resource("IntakeQueuePolicy")["Properties"]["PolicyDocument"]["Statement"])
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["LifecycleEventRule", "Arn"]}}}


def test_given_the_dead_letter_queue_policy_when_reading_it_then_only_the_rule_may_send() -> None:
    (statement,) = as_list(resource("UndeliveredEventQueuePolicy")["Properties"]["PolicyDocument"]["Statement"])
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["LifecycleEventRule", "Arn"]}}}
