"""Auto Scaling lifecycle hooks, actions, timeouts, warm pools and their events (DOMAIN.md §1, §2)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_autoscaling import AutoScalingClient
from mypy_boto3_ec2 import EC2Client

from localaws import LifecycleAction, LocalAWS, scenario

from .conftest import error_code, error_message

LAUNCH = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATE = "autoscaling:EC2_INSTANCE_TERMINATING"


@pytest.fixture
def group(aws: LocalAWS) -> scenario.Scenario:
    return scenario.build(aws, scenario.Spec(heartbeat_timeout=300, notification_metadata='{"mode":"static"}'))


def _states(autoscaling: AutoScalingClient) -> dict[str, str]:
    return {
        i["InstanceId"]: i["LifecycleState"]
        for i in autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"]
    }


def _scale(autoscaling: AutoScalingClient, group: scenario.Scenario, desired: int) -> None:
    autoscaling.set_desired_capacity(AutoScalingGroupName=group.group_name, DesiredCapacity=desired)


def _complete(autoscaling: AutoScalingClient, action: LifecycleAction, result: str = "CONTINUE") -> None:
    autoscaling.complete_lifecycle_action(
        AutoScalingGroupName=action.group,
        LifecycleHookName=action.hook,
        LifecycleActionToken=action.token,
        InstanceId=action.instance_id,
        LifecycleActionResult=result,
    )


def _only_action(aws: LocalAWS) -> LifecycleAction:
    (action,) = aws.lifecycle.active()
    return action


def test_given_a_launch_hook_declared_at_creation_when_the_group_scales_out_then_instances_wait_in_pending_wait(
    aws: LocalAWS, autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS: hooks in LifecycleHookSpecificationList hold even the first instances in Pending:Wait.
    _scale(autoscaling, group, 2)

    assert sorted(_states(autoscaling).values()) == ["Pending:Wait", "Pending:Wait"]
    assert {a.transition for a in aws.lifecycle.active()} == {LAUNCH}


def test_given_instances_in_two_azs_when_the_group_scales_out_then_launches_are_balanced_over_the_subnets(
    autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS: Auto Scaling balances instances across the group's AZs (moto puts all in the first subnet).
    _scale(autoscaling, group, 4)

    zones = Counter(
        i["AvailabilityZone"] for i in autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"]
    )
    assert zones == {"us-east-1a": 2, "us-east-1b": 2}


def test_given_a_pending_wait_instance_when_continue_is_completed_by_token_then_it_goes_in_service(
    aws: LocalAWS, autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS: CompleteLifecycleAction CONTINUE ends the wait (moto: NotImplementedError).
    _scale(autoscaling, group, 1)
    action = _only_action(aws)

    _complete(autoscaling, action)

    assert _states(autoscaling) == {action.instance_id: "InService"}
    assert [(r.token, r.result, r.by) for r in aws.lifecycle.results] == [(action.token, "CONTINUE", "api")]


def test_given_a_pending_wait_instance_when_completed_by_instance_id_alone_then_it_goes_in_service(
    aws: LocalAWS, autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS: the instance id may stand in for the token.
    _scale(autoscaling, group, 1)
    action = _only_action(aws)

    autoscaling.complete_lifecycle_action(
        AutoScalingGroupName=action.group,
        LifecycleHookName=action.hook,
        InstanceId=action.instance_id,
        LifecycleActionResult="CONTINUE",
    )

    assert _states(autoscaling) == {action.instance_id: "InService"}


def test_given_a_completed_action_when_completed_again_then_validation_error_no_active_lifecycle_action(
    aws: LocalAWS, autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS: ValidationError "No active Lifecycle Action found with token <token>"; the first result stands.
    _scale(autoscaling, group, 1)
    action = _only_action(aws)
    _complete(autoscaling, action)

    with pytest.raises(ClientError) as excinfo:
        _complete(autoscaling, action, "ABANDON")

    assert error_code(excinfo) == "ValidationError"
    assert error_message(excinfo) == f"No active Lifecycle Action found with token {action.token}"
    assert [r.result for r in aws.lifecycle.results] == ["CONTINUE"]
    assert [(r.token, r.result) for r in aws.lifecycle.rejected_completions] == [(action.token, "ABANDON")]


def test_given_20_threads_completing_one_action_when_they_race_then_exactly_one_result_is_accepted(
    aws: LocalAWS, autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS: one action, one result; the others get ValidationError (duplicate EventBridge deliveries).
    _scale(autoscaling, group, 1)
    action = _only_action(aws)
    outcomes: list[str] = []
    start = threading.Barrier(20)

    def complete() -> None:
        start.wait()
        try:
            _complete(autoscaling, action)
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=complete) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Counter(outcomes) == {"ok": 1, "ValidationError": 19}
    assert len(aws.lifecycle.results) == 1


def test_given_abandon_on_launch_when_completed_then_the_instance_terminates_and_a_replacement_waits(
    aws: LocalAWS, autoscaling: AutoScalingClient, ec2: EC2Client, group: scenario.Scenario
) -> None:
    # AWS: ABANDON on a launch action terminates the instance (DeleteOnTermination honoured) and the group
    # launches a replacement, which gets its own launch action.
    _scale(autoscaling, group, 1)
    action = _only_action(aws)

    _complete(autoscaling, action, "ABANDON")

    state = ec2.describe_instances(InstanceIds=[action.instance_id])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "terminated"
    replacement = _only_action(aws)
    assert replacement.instance_id != action.instance_id
    assert _states(autoscaling) == {replacement.instance_id: "Pending:Wait"}
    attached = ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [action.instance_id]}]
    )
    assert attached["NetworkInterfaces"] == []


def test_given_no_answer_when_the_heartbeat_timeout_passes_then_the_default_result_abandon_applies(
    aws: LocalAWS, autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS: a timed-out action takes the hook's DefaultResult (ABANDON here): terminate and replace.
    _scale(autoscaling, group, 1)
    action = _only_action(aws)

    aws.clock.advance(299)
    assert aws.lifecycle.results == []
    aws.clock.advance(1)

    assert [(r.token, r.result, r.by) for r in aws.lifecycle.results] == [(action.token, "ABANDON", "timeout")]
    assert action.instance_id not in _states(autoscaling)


def test_given_a_heartbeat_when_recorded_then_the_deadline_moves_one_heartbeat_timeout_from_now(
    aws: LocalAWS, autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS: RecordLifecycleActionHeartbeat restarts the heartbeat timeout.
    _scale(autoscaling, group, 1)
    action = _only_action(aws)
    aws.clock.advance(200)

    autoscaling.record_lifecycle_action_heartbeat(
        AutoScalingGroupName=action.group, LifecycleHookName=action.hook, LifecycleActionToken=action.token
    )
    aws.clock.advance(299)

    assert aws.lifecycle.results == []
    aws.clock.advance(1)
    assert [r.by for r in aws.lifecycle.results] == ["timeout"]


def test_given_endless_heartbeats_when_the_global_timeout_passes_then_the_default_result_applies(
    aws: LocalAWS, autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS: the global timeout is min(48 h, 100 x heartbeat timeout) = 30000 s for a 300 s heartbeat.
    _scale(autoscaling, group, 1)
    action = _only_action(aws)

    for _ in range(200):
        if aws.lifecycle.results:
            break
        autoscaling.record_lifecycle_action_heartbeat(
            AutoScalingGroupName=action.group, LifecycleHookName=action.hook, LifecycleActionToken=action.token
        )
        aws.clock.advance(299)

    (result,) = [r for r in aws.lifecycle.results if r.token == action.token]
    assert result.by == "timeout"
    assert (result.at - action.started).total_seconds() == 30000


def test_given_a_terminate_hook_when_the_group_scales_in_then_the_instance_waits_and_continue_terminates_it(
    aws: LocalAWS, autoscaling: AutoScalingClient, ec2: EC2Client, group: scenario.Scenario
) -> None:
    # AWS: Terminating:Wait, then termination; an ENI without DeleteOnTermination is left `available`.
    _scale(autoscaling, group, 1)
    launch = _only_action(aws)
    _complete(autoscaling, launch)
    az = ec2.describe_instances(InstanceIds=[launch.instance_id])["Reservations"][0]["Instances"][0]["Placement"][
        "AvailabilityZone"
    ]
    eni_id = ec2.create_network_interface(SubnetId=group.multus_subnets[az][0])["NetworkInterface"][
        "NetworkInterfaceId"
    ]
    ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=launch.instance_id, DeviceIndex=1)

    _scale(autoscaling, group, 0)
    terminate = _only_action(aws)
    assert (terminate.transition, _states(autoscaling)) == (TERMINATE, {launch.instance_id: "Terminating:Wait"})
    _complete(autoscaling, terminate)

    assert _states(autoscaling) == {}
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    assert eni["Status"] == "available"


def test_given_terminate_instance_in_group_without_decrement_when_called_then_it_waits_and_a_replacement_launches(
    aws: LocalAWS, autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS: TerminateInstanceInAutoScalingGroup runs the terminate hook; the group keeps its capacity.
    _scale(autoscaling, group, 1)
    launch = _only_action(aws)
    _complete(autoscaling, launch)

    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=launch.instance_id, ShouldDecrementDesiredCapacity=False
    )

    states = _states(autoscaling)
    assert states.pop(launch.instance_id) == "Terminating:Wait"
    assert list(states.values()) == ["Pending:Wait"]


def test_given_a_launch_action_when_rendered_then_it_is_the_eventbridge_event_aws_sends(
    aws: LocalAWS, autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS event reference, "Scale-out lifecycle action" (NotificationMetadata only when the hook has it).
    _scale(autoscaling, group, 1)
    action = _only_action(aws)

    event = aws.lifecycle.event(action)

    assert event == {
        "version": "0",
        "id": event["id"],
        "detail-type": "EC2 Instance-launch Lifecycle Action",
        "source": "aws.autoscaling",
        "account": "123456789012",
        "time": "2025-01-06T12:00:00Z",
        "region": "us-east-1",
        "resources": [group.group_arn],
        "detail": {
            "LifecycleActionToken": action.token,
            "AutoScalingGroupName": group.group_name,
            "LifecycleHookName": group.launch_hook,
            "EC2InstanceId": action.instance_id,
            "LifecycleTransition": LAUNCH,
            "NotificationMetadata": '{"mode":"static"}',
            "Origin": "EC2",
            "Destination": "AutoScalingGroup",
        },
    }
    assert aws.lifecycle.events() == [event]  # a redelivery is the same event, id included


def test_given_a_scale_in_action_when_rendered_then_it_is_a_terminate_event_from_the_group_to_ec2(
    aws: LocalAWS, autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS event reference, "Scale-in lifecycle action".
    _scale(autoscaling, group, 1)
    _complete(autoscaling, _only_action(aws))
    _scale(autoscaling, group, 0)

    (event,) = aws.lifecycle.events()

    assert event["detail-type"] == "EC2 Instance-terminate Lifecycle Action"
    assert (event["detail"]["Origin"], event["detail"]["Destination"]) == ("AutoScalingGroup", "EC2")


def test_given_a_hook_put_after_creation_when_the_group_scales_out_then_new_instances_wait_for_it(
    aws: LocalAWS, autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS: PutLifecycleHook applies to launches after it (NotificationMetadata is kept for the event).
    autoscaling.put_lifecycle_hook(
        AutoScalingGroupName=group.group_name,
        LifecycleHookName="late",
        LifecycleTransition=LAUNCH,
        HeartbeatTimeout=60,
        NotificationMetadata="late-hook",
    )

    _scale(autoscaling, group, 1)

    late = [e for e in aws.lifecycle.events() if e["detail"]["LifecycleHookName"] == "late"]
    assert [e["detail"]["NotificationMetadata"] for e in late] == ["late-hook"]


def test_given_a_warm_pool_when_put_then_instances_launch_into_it_with_an_ec2_to_warm_pool_action(
    aws: LocalAWS, autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS warm pool events: launch action Origin EC2, Destination WarmPool, state Warmed:Pending:Wait;
    # CONTINUE parks the instance as Warmed:Stopped.
    autoscaling.put_warm_pool(AutoScalingGroupName=group.group_name, MinSize=1, MaxGroupPreparedCapacity=1)
    action = _only_action(aws)
    assert (action.origin, action.destination) == ("EC2", "WarmPool")
    assert _states(autoscaling) == {action.instance_id: "Warmed:Pending:Wait"}

    _complete(autoscaling, action)

    pool = autoscaling.describe_warm_pool(AutoScalingGroupName=group.group_name)
    assert [(i["InstanceId"], i["LifecycleState"]) for i in pool["Instances"]] == [
        (action.instance_id, "Warmed:Stopped")
    ]


def test_given_a_warm_instance_when_it_leaves_the_pool_then_it_gets_a_warm_pool_to_group_action(
    aws: LocalAWS, autoscaling: AutoScalingClient, group: scenario.Scenario
) -> None:
    # AWS: the second launch action of the same instance: Origin WarmPool, Destination AutoScalingGroup.
    autoscaling.put_warm_pool(AutoScalingGroupName=group.group_name, MinSize=1, MaxGroupPreparedCapacity=1)
    warm = _only_action(aws)
    _complete(autoscaling, warm)

    aws.lifecycle.leave_warm_pool(group.group_name, warm.instance_id)

    second = next(a for a in aws.lifecycle.active() if a.instance_id == warm.instance_id)
    assert (second.origin, second.destination, second.transition) == ("WarmPool", "AutoScalingGroup", LAUNCH)
    assert second.token != warm.token
    assert _states(autoscaling)[warm.instance_id] == "Pending:Wait"


def test_given_reuse_on_scale_in_when_the_group_scales_in_then_the_terminate_action_goes_to_the_warm_pool(
    aws: LocalAWS, autoscaling: AutoScalingClient, ec2: EC2Client, group: scenario.Scenario
) -> None:
    # AWS: with ReuseOnScaleIn the terminate event has Destination WarmPool and the instance is stopped and
    # kept, not terminated.
    autoscaling.put_warm_pool(
        AutoScalingGroupName=group.group_name,
        MinSize=0,
        MaxGroupPreparedCapacity=1,
        InstanceReusePolicy={"ReuseOnScaleIn": True},
    )
    _scale(autoscaling, group, 1)
    for action in aws.lifecycle.active():
        _complete(autoscaling, action)
    in_service = next(i for i, s in _states(autoscaling).items() if s == "InService")

    _scale(autoscaling, group, 0)
    terminate = next(a for a in aws.lifecycle.active() if a.transition == TERMINATE)
    assert (terminate.instance_id, terminate.destination) == (in_service, "WarmPool")
    _complete(autoscaling, terminate)

    instance = ec2.describe_instances(InstanceIds=[in_service])["Reservations"][0]["Instances"][0]
    assert instance["State"]["Name"] == "stopped"
    assert in_service in aws.lifecycle.warm_pool(group.group_name)
