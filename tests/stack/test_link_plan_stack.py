"""The link plan custom resource in template.yaml: its function, its own least-privilege role, its log group,
the plan handed to the nodes and to teams with their own node group."""

from __future__ import annotations

from typing import Any

from multus_ipam.aws.ec2 import Ec2Adapter
from multus_ipam.link_plan import LINK_PLAN_IAM_ACTIONS, WATCHDOG_MARGIN_SECONDS
from tests.stack.template import as_list, resource, role_statements, template

LOG_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}


def _properties(name: str) -> dict[str, Any]:
    found: dict[str, Any] = resource(name)["Properties"]
    return found


def test_given_the_link_plan_function_when_reading_it_then_python_3_13_on_arm64_with_the_layer_and_its_role() -> None:
    function = resource("LinkPlanFunction")
    properties = function["Properties"]
    # A plain Lambda function: the Globals (the lifecycle functions' environment and on-failure destination)
    # are not for it.
    assert function["Type"] == "AWS::Lambda::Function"
    assert properties["Runtime"] == template()["Globals"]["Function"]["Runtime"] == "python3.13"
    assert properties["Architectures"] == ["arm64"]
    assert properties["Handler"] == "app.lambda_handler"
    assert properties["Code"] == "functions/link_plan/"
    assert properties["Layers"] == [{"Ref": "MultusIpamLayer"}]
    assert properties["Role"] == {"Fn::GetAtt": ["LinkPlanRole", "Arn"]}
    assert "Policies" not in properties
    assert "Condition" not in function  # a group of your own needs the plan too (the LinkPlan output)


def test_given_the_link_plan_function_when_reading_its_logs_then_a_stack_owned_group_with_the_retention() -> None:
    assert _properties("LinkPlanFunction")["LoggingConfig"] == {"LogGroup": {"Ref": "LinkPlanLogGroup"}}
    group = resource("LinkPlanLogGroup")
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}


def test_given_the_custom_resource_when_reading_it_then_the_multus_subnets_and_names_go_to_the_function() -> None:
    plan = resource("LinkPlan")
    assert plan["Type"] == "Custom::MultusLinkPlan"
    assert "Condition" not in plan
    properties = plan["Properties"]
    assert properties["ServiceToken"] == {"Fn::GetAtt": ["LinkPlanFunction", "Arn"]}
    assert properties["SubnetIds"] == {"Ref": "MultusSubnetIds"}
    assert properties["InterfaceNames"] == {"Ref": "MultusInterfaceNames"}


def test_given_the_timeouts_when_compared_then_the_watchdog_answers_before_lambda_and_cloudformation_give_up() -> None:
    timeout = _properties("LinkPlanFunction")["Timeout"]
    assert timeout > WATCHDOG_MARGIN_SECONDS + 60  # DescribeSubnets' attempts fit before the watchdog
    service_timeout = _properties("LinkPlan")["ServiceTimeout"]
    # CloudFormation waits longer than one invocation and Lambda's first asynchronous retry, less than its hour.
    assert 2 * timeout + 60 < service_timeout <= 3600


def test_given_the_link_plan_role_when_reading_it_then_exactly_describe_subnets_and_its_own_logs() -> None:
    statements = role_statements("LinkPlanRole")
    actions = {action for statement in statements for action in as_list(statement["Action"])}
    assert actions == LINK_PLAN_IAM_ACTIONS | LOG_ACTIONS
    for statement in statements:
        assert statement["Effect"] == "Allow"
        if set(as_list(statement["Action"])) & LOG_ACTIONS:
            assert statement["Resource"] == {"Fn::Sub": "${LinkPlanLogGroup.Arn}"}
        else:
            assert statement["Resource"] == "*"  # DescribeSubnets has no resource-level permissions


def test_given_the_link_plan_actions_when_compared_with_the_adapter_then_it_declares_them() -> None:
    # The one call is the EC2 adapter's DescribeSubnets (multus_ipam.link_plan.Ec2SubnetZones).
    assert frozenset({"ec2:DescribeSubnets"}) == LINK_PLAN_IAM_ACTIONS
    assert LINK_PLAN_IAM_ACTIONS <= Ec2Adapter.IAM_ACTIONS


def test_given_the_link_plan_role_when_reading_its_trust_then_only_lambda_of_this_account() -> None:
    (trust,) = _properties("LinkPlanRole")["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert len(_properties("LinkPlanRole")["Policies"]) == 1


def test_given_the_outputs_when_reading_them_then_the_plan_is_given_for_any_kind_of_group() -> None:
    output = template()["Outputs"]["LinkPlan"]
    assert output["Value"] == {"Fn::GetAtt": ["LinkPlan", "Plan"]}
    assert "Condition" not in output


def test_given_the_interface_names_parameter_when_reading_it_then_optional_and_shown_with_the_multus_ones() -> None:
    parameter = template()["Parameters"]["MultusInterfaceNames"]
    assert parameter["Type"] == "String"
    assert parameter["Default"] == ""
    groups = template()["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    (multus,) = [group for group in groups if "MultusSubnetIds" in group["Parameters"]]
    assert "MultusInterfaceNames" in multus["Parameters"]
