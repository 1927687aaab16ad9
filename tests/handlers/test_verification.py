"""Verify before acting: an event changes nothing unless Auto Scaling reports its instance in our group, waiting for
that very transition (multus_ipam.verification).

Each forged event below is one anybody who may invoke the function (or send to its queue) could make; AWS would
carry out whatever the function then asks for, within its role. The local AWS answers DescribeAutoScalingInstances
as Auto Scaling does: an instance's group, AZ and LifecycleState, warm pool instances included, nothing for an
instance in no group.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from multus_ipam.aws.autoscaling import AutoScalingAdapter
from multus_ipam.errors import AwsCallFailed
from multus_ipam.ports import Membership
from multus_ipam.runtime import Mode, handle_event
from tests.eventfiles import load_event
from tests.handlers.timing import settle
from tests.handlers.world import GROUP, LAUNCH_HOOK, FakeContext, World, build_world, deliver

#: Calls that change something in AWS: none may follow a refused event.
WRITES = (
    "CreateNetworkInterface",
    "AttachNetworkInterface",
    "ModifyNetworkInterfaceAttribute",
    "DetachNetworkInterface",
    "DeleteNetworkInterface",
    "CreateTags",
    "CompleteLifecycleAction",
    "RecordLifecycleActionHeartbeat",
)


def writes(world: World) -> list[str]:
    return [c.operation for c in world.aws.calls if c.operation in WRITES]


def emitted_metrics(out: str) -> list[str]:
    """The metric names of the EMF lines Powertools printed."""
    names: list[str] = []
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
            names.extend(m["Name"] for m in directive["Metrics"])
    return names


def node_subnet(world: World) -> str:
    (group,) = world.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return group["VPCZoneIdentifier"]


def other_group_instance(world: World) -> str:
    """An instance of another group of the account, waiting in Pending:Wait on that group's own hook."""
    world.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="someone-elses-group",
        LaunchTemplate={"LaunchTemplateName": "multus-workers", "Version": "$Latest"},
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=0,
        VPCZoneIdentifier=node_subnet(world),
        LifecycleHookSpecificationList=[
            {
                "LifecycleHookName": LAUNCH_HOOK,
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                "HeartbeatTimeout": 300,
                "DefaultResult": "ABANDON",
            }
        ],
    )
    world.autoscaling.set_desired_capacity(AutoScalingGroupName="someone-elses-group", DesiredCapacity=1)
    (action,) = [a for a in world.aws.lifecycle.active() if a.group == "someone-elses-group"]
    return action.instance_id


def test_given_a_launch_event_for_another_groups_instance_then_it_is_rejected_and_nothing_changes(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = other_group_instance(world)
    forged = load_event("launch.json", EC2InstanceId=victim)  # our group's name, their instance
    capsys.readouterr()

    outcome = deliver(world.runtime(), forged)

    assert outcome["status"] == "rejected"
    assert outcome["reason"] == f"instance {victim} is in group 'someone-elses-group', not '{GROUP}'"
    assert writes(world) == []
    assert world.our_enis() == []
    assert "EventsRejected" in emitted_metrics(capsys.readouterr().out)


def test_given_a_launch_event_naming_the_other_group_then_it_is_rejected_without_asking_aws(world: World) -> None:
    victim = other_group_instance(world)
    forged = load_event("launch.json", EC2InstanceId=victim, AutoScalingGroupName="someone-elses-group")
    since = len(world.aws.calls)

    outcome = deliver(world.runtime(), forged)

    assert outcome["status"] == "rejected"
    assert "the event is for group 'someone-elses-group'" in outcome["reason"]
    assert "AUTOSCALING_GROUP_NAME" in outcome["reason"]
    assert world.aws.calls[since:] == [], "no call at all"


def test_given_a_launch_event_for_an_instance_in_no_group_then_it_is_refused_and_nothing_changes(
    world: World,
) -> None:
    launched = world.ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=node_subnet(world))
    loner = launched["Instances"][0]["InstanceId"]
    forged = load_event("launch.json", EC2InstanceId=loner)

    outcome = deliver(world.runtime(), forged)

    # Not "rejected": a redelivery finds its instance so once it is terminated (next test), and that is no alarm.
    assert outcome["status"] == "not-waiting"
    assert outcome["reason"] == f"instance {loner} is in no Auto Scaling group: terminated, or never one of ours"
    assert writes(world) == []
    assert world.our_enis() == []


def test_given_a_launch_token_for_an_instance_waiting_to_terminate_then_it_is_refused_and_nothing_changes(
    world: World,
) -> None:
    # A token for another action of our own instance: a launch event while the instance waits in Terminating:Wait.
    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    deliver(world.runtime(), launch)
    terminate = world.scale_in_instance(instance_id)
    before = writes(world)
    replayed = load_event(
        "launch.json", EC2InstanceId=instance_id, LifecycleActionToken=terminate["detail"]["LifecycleActionToken"]
    )

    outcome = deliver(world.runtime(), replayed)

    assert outcome["status"] == "not-waiting"
    assert (
        outcome["reason"] == f"instance {instance_id} is Terminating:Wait, not waiting for this launch (Pending:Wait)"
    )
    assert writes(world) == before
    assert world.lifecycle_state(instance_id) == "Terminating:Wait", "the terminate action is still waiting"


def test_given_a_launch_into_the_warm_pool_for_an_instance_launching_into_the_group_then_it_is_refused(
    world: World,
) -> None:
    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    into_pool = load_event("launch-into-warm-pool.json", EC2InstanceId=instance_id)

    outcome = deliver(world.runtime(), into_pool)

    assert outcome["status"] == "not-waiting"
    assert "not waiting for this launch into the warm pool (Warmed:Pending:Wait)" in outcome["reason"]
    assert writes(world) == []
    assert world.our_enis() == []


@pytest.mark.parametrize("event_file", ["terminate.json", "terminate-into-warm-pool.json"])
def test_given_a_terminate_event_for_a_node_in_service_then_its_enis_stay_attached(
    world: World, event_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The worst case the forged terminate could do: ENIs without DeleteOnTermination would be detached and deleted.
    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    deliver(world.runtime(), launch)
    for eni in world.our_enis():
        world.drop_delete_on_termination(eni)
    before = writes(world)
    capsys.readouterr()

    outcome = deliver(world.runtime(), load_event(event_file, EC2InstanceId=instance_id))

    assert outcome["status"] == "not-waiting"
    assert outcome["reason"] == (
        f"instance {instance_id} is InService, not waiting for this termination (Terminating:Wait)"
    )
    assert writes(world) == before
    assert sorted(e["Attachment"]["InstanceId"] for e in world.our_enis()) == [instance_id, instance_id]
    assert "EventsNotWaiting" in emitted_metrics(capsys.readouterr().out)


def test_given_a_terminate_redelivered_after_its_instance_is_gone_then_it_is_consumed_without_a_change(
    world: World,
) -> None:
    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    deliver(world.runtime(), launch)
    terminate = world.scale_in_instance(instance_id)
    deliver(world.runtime(), terminate)
    settle(world)  # the termination goes through; the instance leaves the group
    before = writes(world)

    reported = deliver_record(world, terminate, receive_count=1)

    assert reported == [], "consumed: no dead-letter queue, no alarm for an at-least-once duplicate"
    assert writes(world) == before


def test_given_an_event_ahead_of_its_wait_then_it_comes_back_with_nothing_done(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Auto Scaling's reads may lag its events: the instance still Pending when the launch event arrives.
    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    lagging = Membership(instance_id, GROUP, "us-east-1a", "Pending")
    monkeypatch.setattr(AutoScalingAdapter, "membership", lambda _self, _instance_id: lagging)
    monkeypatch.setattr(AutoScalingAdapter, "group_instances", lambda _self, _group: [])

    reported = deliver_record(world, launch, receive_count=1)

    assert reported == ["m-1"]
    assert writes(world) == []


def test_given_a_tokenless_event_that_cannot_be_verified_then_nothing_is_completed(world: World) -> None:
    # Completing by instance id would take whichever of our hooks the event names, so only a token is trusted.
    (launch,) = world.scale_out(1)
    tokenless = copy.deepcopy(launch)
    del tokenless["detail"]["LifecycleActionToken"]
    tokenless["source"] = "multus-ipam.reconciler"
    fail_verification(world, "AccessDenied", 403)

    with pytest.raises(AwsCallFailed, match="AccessDenied"):
        deliver(world.runtime(), tokenless)

    assert writes(world) == []
    world.aws.faults.clear()
    assert world.lifecycle_state(launch["detail"]["EC2InstanceId"]) == "Pending:Wait"


def test_given_a_terminate_event_for_another_groups_instance_then_it_is_rejected(world: World) -> None:
    victim = other_group_instance(world)

    outcome = deliver(world.runtime(), load_event("terminate.json", EC2InstanceId=victim))

    assert outcome["status"] == "rejected"
    assert writes(world) == []


#: The verification's read: a static launch reads the group's listing (which its rank needs anyway), a cidr-reservation
#: launch and every termination DescribeAutoScalingInstances.
VERIFICATION_READS = ("DescribeAutoScalingGroups", "DescribeAutoScalingInstances")


def fail_verification(world: World, code: str, status: int, times: int | None = None) -> None:
    for operation in VERIFICATION_READS:
        world.aws.faults.fail("autoscaling", operation, code=code, status=status, times=times)


def test_given_auto_scaling_throttles_the_verification_then_the_event_is_deferred_with_nothing_done(
    world: World,
) -> None:
    (launch,) = world.scale_out(1)
    fail_verification(world, "Throttling", 400)

    outcome = deliver_record(world, launch, receive_count=1)

    assert outcome == ["m-1"], "reported failed: the record comes back"
    assert writes(world) == []
    world.aws.faults.clear()
    assert world.lifecycle_state(launch["detail"]["EC2InstanceId"]) == "Pending:Wait"


def test_given_the_verification_throttled_on_the_last_receive_then_abandoned_with_nothing_made(world: World) -> None:
    (launch,) = world.scale_out(1)
    fail_verification(world, "Throttling", 400)

    outcome = deliver_record(world, launch, receive_count=5)  # MAX_RECEIVE_COUNT defaults to 5

    assert outcome == []
    assert writes(world) == ["CompleteLifecycleAction"]
    world.aws.faults.clear()
    assert [r.result for r in world.aws.lifecycle.results] == ["ABANDON"]
    assert world.our_enis() == []


def test_given_the_verification_is_denied_then_abandoned_with_nothing_made(world: World) -> None:
    # Completing an unverified action is safe: Auto Scaling accepts it only for an instance waiting on our hook, and
    # the role may complete only our group's actions.
    (launch,) = world.scale_out(1)
    fail_verification(world, "AccessDenied", 403)

    outcome = deliver(world.runtime(), launch)

    assert outcome["result"] == "ABANDON"
    assert "verifying the instance: AwsCallFailed" in outcome["reason"]
    assert "AccessDenied" in outcome["reason"]
    assert writes(world) == ["CompleteLifecycleAction"]
    assert world.our_enis() == []


def test_given_a_real_launch_then_it_is_verified_by_one_read_before_the_first_change(world: World) -> None:
    (launch,) = world.scale_out(1)
    since = len(world.aws.calls)

    outcome = deliver(world.runtime(), launch)

    assert outcome["status"] == "completed"
    calls = world.aws.calls[since:]
    operations = [c.operation for c in calls if c.service == "autoscaling" or c.operation in WRITES]
    first_write = next(i for i, op in enumerate(operations) if op in WRITES)
    assert [op for op in operations[:first_write] if op in VERIFICATION_READS] == ["DescribeAutoScalingGroups"]
    assert operations.count("DescribeAutoScalingGroups") == 1, "the rank reuses the verification's read"
    assert "DescribeAutoScalingInstances" not in operations


def test_given_a_cidr_reservation_launch_then_it_is_verified_by_describe_auto_scaling_instances(aws: Any) -> None:
    world = build_world(aws, mode=Mode.CIDR_RESERVATION, reservations={0: ["10.0.4.128/25"], 1: ["10.0.5.128/25"]})
    (launch,) = world.scale_out(1)
    since = len(world.aws.calls)

    outcome = deliver(world.runtime(), launch)

    assert outcome["status"] == "completed"
    reads = [c.operation for c in world.aws.calls[since:] if c.service == "autoscaling" and "Describe" in c.operation]
    assert reads == ["DescribeAutoScalingInstances"]


def deliver_record(world: World, event: dict[str, Any], receive_count: int) -> list[str]:
    """``event`` as one SQS record of the intake queue, at its ``receive_count``-th receive: the ids reported
    failed."""
    record = {
        "messageId": "m-1",
        "eventSource": "aws:sqs",
        "body": json.dumps(event),
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
    }
    response = handle_event(world.runtime(), {"Records": [record]}, FakeContext())
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]
