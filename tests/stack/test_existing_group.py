"""With CreateNodeGroup=false the group is someone else's, an EKS managed node group's for instance (its launch
template, sizes, tags and hooks belong to EKS): the stack adds its two hooks and changes nothing else of the group.
docs/managed-node-groups.md, "What the stack does not do to an EKS-owned group"."""

from __future__ import annotations

from typing import Any

from tests.stack.template import template

#: Resource types that would change an Auto Scaling group, or the nodes it launches, if the stack made them for an
#: existing group.
GROUP_CHANGING_TYPES = {
    "AWS::AutoScaling::AutoScalingGroup",
    "AWS::AutoScaling::WarmPool",
    "AWS::AutoScaling::ScheduledAction",
    "AWS::AutoScaling::ScalingPolicy",
    "AWS::AutoScaling::LaunchConfiguration",
    "AWS::EC2::LaunchTemplate",
}


def _condition(resource: dict[str, Any]) -> str | None:
    found = resource.get("Condition")
    return str(found) if found is not None else None


def test_given_an_existing_group_then_the_stack_creates_nothing_that_changes_it_but_its_two_hooks() -> None:
    resources: dict[str, Any] = template()["Resources"]
    on_existing = {
        name: r["Type"]
        for name, r in resources.items()
        if r["Type"].startswith("AWS::AutoScaling::") and _condition(r) != "IsCreateNodeGroup"
    }
    assert on_existing == {
        "ExistingGroupLaunchHook": "AWS::AutoScaling::LifecycleHook",
        "ExistingGroupTerminateHook": "AWS::AutoScaling::LifecycleHook",
    }
    for name, r in resources.items():
        if r["Type"] in GROUP_CHANGING_TYPES:
            assert _condition(r) == "IsCreateNodeGroup", f"{name} ({r['Type']}) would be made for an existing group"


def test_given_an_existing_group_then_its_hooks_are_named_after_the_stack_never_like_eks_hooks() -> None:
    resources: dict[str, Any] = template()["Resources"]
    for name in ("ExistingGroupLaunchHook", "ExistingGroupTerminateHook"):
        hook_name = resources[name]["Properties"]["LifecycleHookName"]
        assert hook_name["Fn::Sub"].startswith("${AWS::StackName}-multus-"), hook_name
