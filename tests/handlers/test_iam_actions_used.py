"""The IAM actions each function's role grants (tests/stack holds the template to the declared sets) are the ones
the function really calls."""

from __future__ import annotations

from typing import Any

import pytest

from localaws import LocalAWS, SimulatedCrash
from multus_ipam.runtime import LIFECYCLE_IAM_ACTIONS, RECONCILER_IAM_ACTIONS, Mode
from tests.handlers.reconcile import make_reconciler, reconcile
from tests.handlers.records import failed_ids, sqs_batch
from tests.handlers.timing import settle
from tests.handlers.world import GROUP, World, build_world, deliver

#: Tag-on-create is authorised as ec2:CreateTags although no CreateTags call is ever made.
AUTHORISED_NOT_CALLED = {"ec2:CreateTags"}
#: Calls authorised by another action's name (SQS API reference: batch actions use the single action's).
AUTHORISED_AS = {"sqs:SendMessageBatch": "sqs:SendMessage"}


def _actions(world: World) -> set[str]:
    names = {f"{call.service}:{call.operation}" for call in world.aws.calls}
    return {AUTHORISED_AS.get(name, name) for name in names}


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
    assert handle(launch)["status"] == "not-waiting"  # redelivery: verified, refused
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
    # A deferred launch that records a heartbeat (its hook could time out before the next attempt ends).
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code="RequestLimitExceeded", status=503)
    (throttled,) = world.scale_out(1)
    world.aws.clear_calls()
    response = deliver(world.runtime(HOOK_HEARTBEAT_TIMEOUT_SECONDS="30"), sqs_batch([throttled]))
    assert failed_ids(response) == ["message-0"]
    used.update(_actions(world))
    world.aws.faults.clear()

    declared = LIFECYCLE_IAM_ACTIONS
    assert used <= declared, f"called but not declared: {sorted(used - declared)}"
    expected_unused = AUTHORISED_NOT_CALLED | (
        {"autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeWarmPool"}
        if mode is Mode.CIDR_RESERVATION
        else set()
    )
    assert declared - used == expected_unused, f"declared but never called: {sorted(declared - used - expected_unused)}"


def test_given_the_reconciler_when_it_sweeps_and_requeues_then_only_its_declared_actions_are_called_and_all(
    aws: LocalAWS,
) -> None:
    world = build_world(aws, warm_pool=True)
    (launch,) = world.scale_out(1)
    world.aws.faults.crash_after("ec2", "CreateNetworkInterface")
    with pytest.raises(SimulatedCrash):
        deliver(world.runtime(), launch)  # an ENI left detached; its instance then terminated
    world.ec2.terminate_instances(InstanceIds=[launch["detail"]["EC2InstanceId"]])
    settle(world)
    reconciler = make_reconciler(world, LOST_EVENT_GRACE_SECONDS="30")
    (into_pool,) = [e for e in world.aws.lifecycle.events() if e["detail"].get("Destination") == "WarmPool"]
    world.aws.clear_calls()

    first = reconcile(reconciler)
    world.aws.clock.advance(60)
    second = reconcile(reconciler)

    assert len(first.orphans_deleted) == 1
    assert into_pool["detail"]["EC2InstanceId"] in second.requeued
    used = _actions(world)
    assert used == RECONCILER_IAM_ACTIONS, (
        f"extra: {sorted(used - RECONCILER_IAM_ACTIONS)}, unused: {sorted(RECONCILER_IAM_ACTIONS - used)}"
    )
