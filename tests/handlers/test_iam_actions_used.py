"""The IAM actions each adapter declares (and the template grants, tests/stack) are the ones it really calls."""

from __future__ import annotations

from typing import Any

import pytest

from localaws import LocalAWS
from multus_ipam.aws.autoscaling import AutoScalingAdapter
from multus_ipam.aws.ec2 import Ec2Adapter
from multus_ipam.runtime import Mode
from tests.handlers.world import GROUP, World, build_world, deliver

#: Tag-on-create is authorised as ec2:CreateTags although no CreateTags call is ever made.
AUTHORISED_NOT_CALLED = {"ec2:CreateTags"}


def _actions(world: World) -> set[str]:
    return {f"{call.service}:{call.operation}" for call in world.aws.calls}


@pytest.mark.parametrize("mode", [Mode.STATIC, Mode.CIDR_RESERVATION])
def test_given_every_path_when_handled_then_only_declared_actions_are_called_and_all_of_them_are(
    aws: LocalAWS, mode: Mode
) -> None:
    world = build_world(aws, mode=mode, reservations={0: ["10.0.4.192/26"], 1: ["10.0.5.192/26"]})
    used: set[str] = set()

    def handle(event: dict[str, Any], *, source_dest_check_off: bool = False) -> dict[str, Any]:
        world.aws.clear_calls()
        runtime = world.runtime(DISABLE_SOURCE_DEST_CHECK="true") if source_dest_check_off else world.runtime()
        outcome = deliver(runtime, event)
        used.update(_actions(world))
        return outcome

    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    assert handle(launch)["result"] == "CONTINUE"
    assert handle(launch)["status"] == "already-completed"  # redelivery: reads the lifecycle state
    eni = world.our_enis()[0]
    world.drop_delete_on_termination(eni)
    assert handle(world.scale_in_instance(instance_id))["result"] == "CONTINUE"  # detach + delete
    world.aws.faults.fail("ec2", "ModifyNetworkInterfaceAttribute", code="UnauthorizedOperation", status=403)
    (failing,) = world.scale_out(1)
    assert handle(failing, source_dest_check_off=True)["result"] == "ABANDON"  # rollback path
    world.aws.faults.clear()
    # A group with a warm pool (even an empty one): its waiting instances are read too.
    world.autoscaling.put_warm_pool(AutoScalingGroupName=GROUP, MinSize=0, MaxGroupPreparedCapacity=0)
    (with_pool,) = world.scale_out(1)
    assert handle(with_pool)["result"] == "CONTINUE"

    declared = Ec2Adapter.IAM_ACTIONS | AutoScalingAdapter.IAM_ACTIONS
    assert used <= declared, f"called but not declared: {sorted(used - declared)}"
    expected_unused = AUTHORISED_NOT_CALLED | (
        {"autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeWarmPool"}
        if mode is Mode.CIDR_RESERVATION
        else set()
    )
    assert declared - used == expected_unused, f"declared but never called: {sorted(declared - used - expected_unused)}"
