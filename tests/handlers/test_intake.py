"""The lifecycle function behind the intake, as the stack deploys it: EventBridge -> SQS queue (VisibilityTimeout
210 s, redrive to a dead-letter queue) -> Lambda's event source mapping (BatchSize 1, small MaximumConcurrency,
ReportBatchItemFailures) -> the function; and the same function handed one EventBridge event directly.

AWS behaviour relied on (``localaws.intake``, ``localaws.sqs``): a message the function reports in
``batchItemFailures`` (or whose invocation fails) is not deleted and is received again once its visibility timeout
ends, with ApproximateReceiveCount one higher; after maxReceiveCount receives SQS moves it to the dead-letter
queue instead; the others of the batch are deleted. Auto Scaling abandons a launch whose hook times out, and
RecordLifecycleActionHeartbeat restarts that timeout. EC2 throttles with RequestLimitExceeded (503).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from localaws import EventSourceMapping, InvocationResult, LocalAWS, QueuePair
from multus_ipam.errors import RetryLater
from multus_ipam.settings import INSTANCE_TAG
from tests.eventfiles import load_event
from tests.handlers.records import (
    VISIBILITY_TIMEOUT_SECONDS,
    function_env,
    intake_mapping,
    intake_queue,
    queue_depth,
)
from tests.handlers.test_faults_and_redelivery import DENIED, THROTTLE
from tests.handlers.timing import settle
from tests.handlers.world import GROUP, LAUNCH_HOOK, World, build_world, deliver

MAX_RECEIVES = 3
THROTTLED = THROTTLE["ec2"]


def launch_results(world: World, instance_id: str) -> list[tuple[str, str]]:
    """(result, by) of the instance's launch action: "api" (CompleteLifecycleAction) or "timeout"."""
    return [(r.result, r.by) for r in world.aws.lifecycle.results if r.instance_id == instance_id]


def waiting(world: World, instance_ids: set[str]) -> bool:
    return any(a.instance_id in instance_ids for a in world.aws.lifecycle.active())


def enis_tagged_for(world: World, instance_id: str) -> list[Any]:
    return [e for e in world.our_enis() if {"Key": INSTANCE_TAG, "Value": instance_id} in e.get("TagSet", [])]


def all_deleted(mapping: EventSourceMapping, count: int) -> bool:
    """Whether Lambda has deleted ``count`` messages (read from the mapping's records: no SQS call)."""
    return sum(len(i.deleted) for i in mapping.invocations) == count


def after_first_invocation(mapping: EventSourceMapping, world: World, action: Callable[[], None]) -> Callable[[], None]:
    """A task for ``run(extra_tasks=...)``: ``action()`` once the mapping's first invocation has ended (a fault
    that lasts longer than one invocation, then clears)."""

    def task() -> None:
        while not mapping.invocations and not mapping.stopping:
            world.aws.clock.sleep(1)
        action()

    return task


def throttle_attach_for_one_invocation(world: World, mapping: EventSourceMapping) -> Callable[[], None]:
    code, status = THROTTLED
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code=code, status=status)
    return after_first_invocation(mapping, world, world.aws.faults.clear)


# --- the happy path ---------------------------------------------------------------------------------------------


def test_given_a_burst_of_eight_launches_through_the_intake_then_all_continue_with_the_eight_lowest_addresses(
    world: World,
) -> None:
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVES)
    mapping = intake_mapping(world, queue, function_env(max_receive_count=MAX_RECEIVES), maximum_concurrency=3)
    events = world.scale_out(8)
    burst = {e["detail"]["EC2InstanceId"] for e in events}
    mapping.put_events(events)

    ran = mapping.run(lambda: not waiting(world, burst), max_seconds=900)

    assert ran.reached
    assert sorted(r.instance_id for r in world.aws.lifecycle.results) == sorted(burst)
    assert {(r.result, r.by) for r in world.aws.lifecycle.results} == {("CONTINUE", "api")}
    for position, subnet in enumerate(world.multus_subnets[:2]):
        addresses = sorted(
            int(e["PrivateIpAddress"].split(".")[3]) for e in world.our_enis() if e["SubnetId"] == subnet
        )
        assert addresses == list(range(4, 12)), f"the 8 lowest free addresses of 10.0.{4 + position}.0/24"
    for instance_id in burst:
        enis = enis_tagged_for(world, instance_id)
        assert sorted(e["SubnetId"] for e in enis) == sorted(world.multus_subnets[:2])
        assert all(e["Attachment"]["InstanceId"] == instance_id for e in enis)
    assert mapping.max_concurrent_invocations <= 3
    assert queue_depth(world.aws, queue.url) == 0
    assert queue_depth(world.aws, queue.dlq_url) == 0


# --- redelivery ------------------------------------------------------------------------------------------------


def test_given_attach_throttled_for_longer_than_an_invocation_then_the_launch_is_deferred_and_completed_on_redelivery(
    world: World,
) -> None:
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVES)
    mapping = intake_mapping(world, queue, function_env(max_receive_count=MAX_RECEIVES))
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    clears = throttle_attach_for_one_invocation(world, mapping)
    (message_id,) = mapping.put_events([event])

    ran = mapping.run(lambda: not waiting(world, {instance_id}), extra_tasks=[clears], max_seconds=900)

    assert ran.reached
    first, second = mapping.invocations
    assert (first.result, first.kept) == (InvocationResult.PARTIAL, (message_id,)), "deferred: reported failed"
    assert second.result is InvocationResult.SUCCEEDED
    # The visibility timeout counts from the ReceiveMessage answer, which comes a request's latency (at most
    # 0.25 s on the local AWS) before the invocation starts.
    assert second.started - first.started >= timedelta(seconds=VISIBILITY_TIMEOUT_SECONDS - 0.25)
    assert any(c.outcome == THROTTLED[0] for c in world.aws.calls_to("ec2", "AttachNetworkInterface"))
    creates = world.aws.calls_to("ec2", "CreateNetworkInterface")
    assert len(creates) == 2
    assert all(c.ok and c.at < second.started for c in creates), "the second attempt adopts the first one's ENIs"
    assert world.aws.calls_to("ec2", "DeleteNetworkInterface") == [], "nothing rolled back meanwhile"
    assert world.aws.calls_to("ec2", "DetachNetworkInterface") == []
    assert launch_results(world, instance_id) == [("CONTINUE", "api")]
    enis = enis_tagged_for(world, instance_id)
    assert sorted(e["SubnetId"] for e in enis) == sorted(world.multus_subnets[:2])
    assert all(e["Attachment"]["InstanceId"] == instance_id for e in enis)
    assert queue_depth(world.aws, queue.url) == 0


def test_given_a_batch_of_two_when_one_record_is_deferred_then_only_that_one_comes_back(world: World) -> None:
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVES)
    mapping = intake_mapping(world, queue, function_env(max_receive_count=MAX_RECEIVES), batch_size=2)
    (first_launch,) = world.scale_out(1)
    leaving = first_launch["detail"]["EC2InstanceId"]
    assert deliver(world.runtime(), first_launch)["result"] == "CONTINUE"
    terminate = world.scale_in_instance(leaving)  # completes without an attach
    (launch,) = world.scale_out(1)  # its attach is throttled through the first invocation
    launching = launch["detail"]["EC2InstanceId"]
    clears = throttle_attach_for_one_invocation(world, mapping)
    terminate_id, launch_id = mapping.put_events([terminate, launch])

    ran = mapping.run(lambda: not waiting(world, {leaving, launching}), extra_tasks=[clears], max_seconds=900)

    assert ran.reached
    first, second = mapping.invocations
    assert set(first.message_ids) == {terminate_id, launch_id}, "one batch of both"
    assert (first.result, first.kept, first.deleted) == (InvocationResult.PARTIAL, (launch_id,), (terminate_id,))
    assert second.message_ids == (launch_id,)
    assert second.result is InvocationResult.SUCCEEDED
    assert mapping.deliveries == {terminate_id: 1, launch_id: 2}
    assert [(r.instance_id, r.result) for r in world.aws.lifecycle.results[1:]] == [
        (leaving, "CONTINUE"),
        (launching, "CONTINUE"),
    ]


# --- the dead-letter queue and the last receive -------------------------------------------------------------


def test_given_a_record_whose_body_is_not_json_then_it_goes_to_the_dead_letter_queue_after_max_receive_count(
    world: World,
) -> None:
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVES)
    mapping = intake_mapping(world, queue, function_env(max_receive_count=MAX_RECEIVES))
    sqs = world.aws.client("sqs")
    poison = sqs.send_message(QueueUrl=queue.url, MessageBody="{not json")["MessageId"]

    def moved_on() -> bool:  # the receive after the last one's visibility timeout moves it (SQS redrive)
        invocations = mapping.invocations
        due = timedelta(seconds=VISIBILITY_TIMEOUT_SECONDS + 5)
        return len(invocations) == MAX_RECEIVES and world.aws.clock.now() > invocations[-1].started + due

    ran = mapping.run(moved_on, max_seconds=1200)

    assert ran.reached
    assert queue_depth(world.aws, queue.url) == 0
    assert mapping.deliveries == {poison: MAX_RECEIVES}
    assert {i.result for i in mapping.invocations} == {InvocationResult.PARTIAL}
    (dead,) = sqs.receive_message(QueueUrl=queue.dlq_url)["Messages"]
    assert dead["Body"] == "{not json"
    assert world.aws.calls_to("autoscaling", "CompleteLifecycleAction") == []
    assert world.aws.lifecycle.results == []


def test_given_attach_throttled_on_every_attempt_then_the_last_receive_rolls_back_and_abandons_and_deletes_it(
    world: World,
) -> None:
    # What the product does with a launch that no attempt can finish: the receive with ApproximateReceiveCount ==
    # MAX_RECEIVE_COUNT rolls back and completes with FAILURE_RESULT, and its message is deleted: nothing for the
    # dead-letter queue (only records the function could not handle at all end there).
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVES)
    mapping = intake_mapping(world, queue, function_env(max_receive_count=MAX_RECEIVES))
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    code, status = THROTTLED
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code=code, status=status)
    (message_id,) = mapping.put_events([event])

    ran = mapping.run(lambda: not waiting(world, {instance_id}) and all_deleted(mapping, 1), max_seconds=1200)

    assert ran.reached
    assert [i.result for i in mapping.invocations] == [
        InvocationResult.PARTIAL,
        InvocationResult.PARTIAL,
        InvocationResult.SUCCEEDED,
    ]
    assert mapping.deliveries == {message_id: MAX_RECEIVES}
    assert launch_results(world, instance_id) == [("ABANDON", "api")]
    last = mapping.invocations[-1]
    assert all(c.at >= last.started for c in world.aws.calls_to("ec2", "DeleteNetworkInterface"))
    assert len(world.aws.calls_to("autoscaling", "RecordLifecycleActionHeartbeat")) == MAX_RECEIVES - 1
    settle(world)
    assert enis_tagged_for(world, instance_id) == []
    assert queue_depth(world.aws, queue.dlq_url) == 0


# --- heartbeats -------------------------------------------------------------------------------------------------


def test_given_a_hook_that_would_time_out_before_the_next_attempt_when_deferred_then_a_heartbeat_keeps_it_waiting(
    aws: LocalAWS,
) -> None:
    # The hook's HeartbeatTimeout (205 s) ends before the message comes back (210 s): without a heartbeat Auto
    # Scaling would abandon the launch before its second attempt starts.
    world = build_world(aws, heartbeat_timeout=205)
    queue = intake_queue(aws, max_receive_count=MAX_RECEIVES)
    mapping = intake_mapping(world, queue, function_env(max_receive_count=MAX_RECEIVES, hook_timeout=205))
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    launched = aws.clock.now()
    clears = throttle_attach_for_one_invocation(world, mapping)
    mapping.put_events([event])

    ran = mapping.run(lambda: not waiting(world, {instance_id}), extra_tasks=[clears], max_seconds=900)

    assert ran.reached
    first, second = mapping.invocations
    (heartbeat,) = aws.calls_to("autoscaling", "RecordLifecycleActionHeartbeat")
    assert heartbeat.ok
    assert first.started <= heartbeat.at <= first.ended
    assert heartbeat.params["InstanceId"] == instance_id
    assert heartbeat.params["LifecycleActionToken"] == event["detail"]["LifecycleActionToken"]
    (result,) = [r for r in aws.lifecycle.results if r.instance_id == instance_id]
    assert (result.result, result.by) == ("CONTINUE", "api")
    assert result.at - launched > timedelta(seconds=205), "completed after the hook's first deadline"
    assert second.result is InvocationResult.SUCCEEDED


def test_given_a_hook_that_outlives_the_next_attempt_when_deferred_then_no_heartbeat_is_recorded(
    aws: LocalAWS,
) -> None:
    world = build_world(aws, heartbeat_timeout=1800)
    queue = intake_queue(aws, max_receive_count=MAX_RECEIVES)
    mapping = intake_mapping(world, queue, function_env(max_receive_count=MAX_RECEIVES, hook_timeout=1800))
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    clears = throttle_attach_for_one_invocation(world, mapping)
    mapping.put_events([event])

    ran = mapping.run(lambda: not waiting(world, {instance_id}), extra_tasks=[clears], max_seconds=900)

    assert ran.reached
    assert [i.result for i in mapping.invocations] == [InvocationResult.PARTIAL, InvocationResult.SUCCEEDED]
    assert aws.calls_to("autoscaling", "RecordLifecycleActionHeartbeat") == []
    assert launch_results(world, instance_id) == [("CONTINUE", "api")]


# --- faults through the intake ----------------------------------------------------------------------------------


def throttle(service: str, operation: str, **how: Any) -> Callable[[World], None]:
    code, status = THROTTLE[service]
    return lambda world: world.aws.faults.fail(service, operation, code=code, status=status, **how)


def deny(service: str, operation: str) -> Callable[[World], None]:
    code, status = DENIED[service]
    return lambda world: world.aws.faults.fail(service, operation, code=code, status=status)


def internal_error(service: str, operation: str, times: int) -> Callable[[World], None]:
    return lambda world: world.aws.faults.fail(service, operation, code="InternalError", status=500, times=times)


def crash_after(service: str, operation: str) -> Callable[[World], None]:
    return lambda world: world.aws.faults.crash_after(service, operation)


def fault(inject: Callable[[World], None], ends: str, *, comes_back: bool, name: str) -> Any:
    """A fault of the matrix: how every launch ends, and whether some message must come back (a deferral, a
    crashed invocation) or may be handled at the first receive."""
    return pytest.param(inject, ends, comes_back, id=name)


#: Representative faults from tests/handlers/test_faults_and_redelivery.py's matrix, one per way a launch ends.
FAULTS = [
    fault(throttle("ec2", "CreateNetworkInterface", times=3), "CONTINUE", comes_back=False, name="throttled-create"),
    fault(
        throttle("ec2", "AttachNetworkInterface", rate=0.5, seed=7),
        "CONTINUE",
        comes_back=False,
        name="throttled-attach",
    ),
    fault(
        throttle("autoscaling", "CompleteLifecycleAction", times=3),
        "CONTINUE",
        comes_back=False,
        name="throttled-complete",
    ),
    fault(internal_error("ec2", "CreateNetworkInterface", times=25), "CONTINUE", comes_back=True, name="5xx-on-create"),
    fault(deny("ec2", "ModifyNetworkInterfaceAttribute"), "ABANDON", comes_back=False, name="denied-modify"),
    fault(crash_after("ec2", "AttachNetworkInterface"), "CONTINUE", comes_back=True, name="crash-after-attach"),
    fault(
        crash_after("autoscaling", "CompleteLifecycleAction"), "CONTINUE", comes_back=True, name="crash-after-complete"
    ),
]


def assert_consistent(world: World, queue: QueuePair, launched: set[str]) -> None:
    """Every launch ended once, by the API: CONTINUE with one attached ENI per Multus subnet of its AZ, or ABANDON
    with no ENI of ours left for it; no ENI of ours for anything else; nothing waiting, nothing queued."""
    settle(world)
    results = [r for r in world.aws.lifecycle.results if r.instance_id in launched and r.hook == LAUNCH_HOOK]
    assert sorted(r.instance_id for r in results) == sorted(launched), "one result per launch"
    assert {r.by for r in results} == {"api"}, "none left to the hook's timeout"
    ours = world.our_enis()
    for result in results:
        enis = enis_tagged_for(world, result.instance_id)
        if result.result == "CONTINUE":
            assert sorted(e["SubnetId"] for e in enis) == sorted(world.multus_subnets[:2])
            assert all(e["Attachment"]["InstanceId"] == result.instance_id for e in enis)
            assert all(e["Attachment"]["DeleteOnTermination"] for e in enis)
        else:
            assert enis == [], f"ABANDON left {[e['NetworkInterfaceId'] for e in enis]}"
    tagged = {t["Value"] for e in ours for t in e.get("TagSet", []) if t["Key"] == INSTANCE_TAG}
    assert tagged <= launched, "no ENI of ours for anything else"
    assert not waiting(world, launched)
    assert queue_depth(world.aws, queue.url) == 0
    assert queue_depth(world.aws, queue.dlq_url) == 0


@pytest.mark.parametrize(("inject", "ends", "comes_back"), FAULTS)
def test_given_a_fault_when_launches_come_through_the_intake_then_every_launch_ends_consistently(
    world: World, inject: Callable[[World], None], ends: str, comes_back: bool
) -> None:
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVES)
    mapping = intake_mapping(world, queue, function_env(max_receive_count=MAX_RECEIVES))
    events = world.scale_out(4)
    launched = {e["detail"]["EC2InstanceId"] for e in events}
    inject(world)
    mapping.put_events(events)

    ran = mapping.run(lambda: not waiting(world, launched) and all_deleted(mapping, len(events)), max_seconds=1500)

    assert ran.reached
    world.aws.faults.clear()
    assert_consistent(world, queue, launched)
    assert any(c.outcome != "ok" for c in world.aws.calls), "the fault fired"
    assert {r.result for r in world.aws.lifecycle.results if r.instance_id in launched} == {ends}
    if comes_back:
        assert max(mapping.deliveries.values()) == 2, "a message came back after its visibility timeout"


# --- one EventBridge event handed over directly ----------------------------------------------------------------


def filled_launch_sample(world: World) -> dict[str, Any]:
    """events/launch.json (what ``sam local invoke -e`` takes) with the ids of the action the world waits on."""
    (action,) = world.aws.lifecycle.active()
    return load_event(
        "launch.json",
        LifecycleActionToken=action.token,
        EC2InstanceId=action.instance_id,
        AutoScalingGroupName=GROUP,
        LifecycleHookName=action.hook,
    )


def test_given_an_eventbridge_event_without_an_sqs_wrapper_then_it_is_handled_directly(world: World) -> None:
    world.scale_out(1)
    event = filled_launch_sample(world)

    outcome = deliver(world.runtime(), event)

    assert outcome["status"] == "completed"
    assert outcome["result"] == "CONTINUE"
    assert launch_results(world, event["detail"]["EC2InstanceId"]) == [("CONTINUE", "api")]
    assert world.aws.calls_to("sqs", "SendMessage") == []


def test_given_a_direct_event_whose_launch_is_deferred_then_the_invocation_fails_so_lambda_retries_it(
    world: World,
) -> None:
    # Lambda's asynchronous invocation (EventBridge's target) retries a failed invocation, about a minute later.
    world.scale_out(1)
    event = filled_launch_sample(world)
    instance_id = event["detail"]["EC2InstanceId"]
    code, status = THROTTLED
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code=code, status=status)
    runtime = world.runtime()

    with pytest.raises(RetryLater, match="AwsCallFailed: AttachNetworkInterface failed: RequestLimitExceeded"):
        deliver(runtime, json.loads(json.dumps(event)))

    assert world.aws.lifecycle.results == []
    assert len(enis_tagged_for(world, instance_id)) == 2, "kept for the retry"
    world.aws.faults.clear()
    world.aws.clock.advance(60)
    retried = deliver(runtime, event)
    assert retried["result"] == "CONTINUE"
    assert all(e["adopted"] for e in retried["enis"])
    assert launch_results(world, instance_id) == [("CONTINUE", "api")]
