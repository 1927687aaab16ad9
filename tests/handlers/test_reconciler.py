"""The scheduled reconciler recovers lifecycle actions whose event was lost, and only those.

AWS behaviour relied on: Auto Scaling keeps an instance in Pending:Wait / Terminating:Wait until the action is
completed or the hook's HeartbeatTimeout passes (then its DefaultResult: ABANDON terminates a launching instance);
CompleteLifecycleAction accepts the instance id in place of the token; SQS counts a queue's messages as visible,
not visible (received, in flight) and delayed (GetQueueAttributes); Lambda's event source mapping hands the
queue's messages to the function (``localaws.intake``). Auto Scaling delivers lifecycle events best-effort: here
an event is "lost" by never putting it on the intake queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from localaws import InvocationResult, LocalAWS, SimulatedCrash
from multus_ipam.errors import ConfigurationError, RetryLater
from multus_ipam.reconciler import RECONCILER_SOURCE, Reconciler, ReconcileReport
from multus_ipam.runtime import build_reconciler
from multus_ipam.settings import OWNER_TAG
from tests.eventfiles import load_event
from tests.handlers.reconcile import reconcile, reconciler_for
from tests.handlers.records import function_env, intake_mapping, intake_queue, queue_depth
from tests.handlers.timing import engine_clock, settle
from tests.handlers.world import GROUP, LAUNCH_HOOK, TERMINATE_HOOK, FakeClock, FakeContext, World, deliver

GRACE_SECONDS = 120
#: template.yaml: the reconciler's schedule and timeout.
EVERY_SECONDS = 60
RECONCILER_TIMEOUT_MS = 60_000
#: The world's hooks' HeartbeatTimeout (build_world's default).
HOOK_TIMEOUT = timedelta(seconds=300)
MAX_RECEIVE_COUNT = 5


@dataclass
class Schedule:
    """The reconciler as its schedule runs it (reserved concurrency 1: one execution environment, reused), each
    run's report kept with the local AWS time it started at."""

    reconciler: Reconciler
    clock: FakeClock
    reports: list[tuple[datetime, ReconcileReport]] = field(default_factory=list)

    def __call__(self) -> None:
        context = FakeContext(remaining_ms=RECONCILER_TIMEOUT_MS, clock=self.clock)
        started = self.clock.now()
        self.reports.append((started, self.reconciler.run(context.get_remaining_time_in_millis)))

    @property
    def requeued(self) -> list[tuple[str, ...]]:
        return [report.requeued for _, report in self.reports]

    def last(self) -> ReconcileReport:
        return self.reports[-1][1]


def schedule(world: World, queue_url: str, **env: str) -> Schedule:
    clock = engine_clock(world)
    return Schedule(reconciler_for(world, queue_url, clock, LOST_EVENT_GRACE_SECONDS=str(GRACE_SECONDS), **env), clock)


def waiting(world: World, instance_id: str, hook: str = LAUNCH_HOOK) -> bool:
    return any(a.instance_id == instance_id and a.hook == hook for a in world.aws.lifecycle.active())


def requeued_events(aws: LocalAWS) -> list[dict[str, Any]]:
    """The events the reconciler put on the queue (its SendMessageBatch calls, as sent)."""
    return [
        json.loads(entry["MessageBody"])
        for call in aws.calls_to("sqs", "SendMessageBatch")
        for entry in json.loads(call.params["Entries"])
    ]


def completions_of(aws: LocalAWS, instance_id: str) -> list[dict[str, str]]:
    """The CompleteLifecycleAction requests AWS accepted for the instance, as sent."""
    return [
        dict(c.params)
        for c in aws.calls_to("autoscaling", "CompleteLifecycleAction")
        if c.ok and c.params.get("InstanceId") == instance_id
    ]


def multus_enis(world: World, instance_id: str) -> list[Any]:
    return [e for e in world.enis_of(instance_id) if any(t["Key"] == OWNER_TAG for t in e.get("TagSet", []))]


# --- lost events are recovered, late ones are left alone ---------------------------------------------------


def test_given_a_launch_whose_event_was_never_delivered_when_the_reconciler_runs_every_minute_then_the_action_is_completed_by_instance_id(  # noqa: E501
    world: World,
) -> None:
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVE_COUNT)
    mapping = intake_mapping(world, queue, function_env(max_receive_count=MAX_RECEIVE_COUNT))
    (lost,) = world.scale_out(1)  # its event never reaches the queue
    instance_id = lost["detail"]["EC2InstanceId"]
    launched = world.aws.clock.now()
    runs = schedule(world, queue.url)

    ran = mapping.run(
        lambda: not waiting(world, instance_id), extra_tasks=[mapping.every(EVERY_SECONDS, runs)], max_seconds=600
    )

    assert ran.reached
    (result,) = [r for r in world.aws.lifecycle.results if r.instance_id == instance_id]
    assert (result.hook, result.result, result.by) == (LAUNCH_HOOK, "CONTINUE", "api")
    # Requeued by the first run that finds it waiting GRACE_SECONDS since the run that first saw it (the run
    # exactly GRACE_SECONDS later may fall short by the calls' latency: then the next one), handled in seconds:
    # a minute before the hook's timeout would have abandoned it.
    assert result.at - launched < timedelta(seconds=GRACE_SECONDS + 2 * EVERY_SECONDS)
    assert result.at - launched < HOOK_TIMEOUT - timedelta(seconds=EVERY_SECONDS)
    assert world.lifecycle_state(instance_id) == "InService"
    assert [r for r in runs.requeued if r] == [(instance_id,)]
    (event,) = requeued_events(world.aws)
    assert event["source"] == RECONCILER_SOURCE
    assert event["detail"]["LifecycleHookName"] == LAUNCH_HOOK
    assert "LifecycleActionToken" not in event["detail"]
    (completion,) = completions_of(world.aws, instance_id)
    assert "LifecycleActionToken" not in completion, "completed by instance id: the reconciler has no token"
    assert completion["LifecycleActionResult"] == "CONTINUE"
    settle(world)
    ours = multus_enis(world, instance_id)
    assert sorted(e["SubnetId"] for e in ours) == sorted(world.multus_subnets[:2])
    assert all(e["Attachment"]["DeleteOnTermination"] for e in ours)
    # The node's VPC CNI starts 40-90 s after launch and takes device index 1 (localaws.vpc_cni) before the grace
    # period ends: a launch recovered this late gets the next free indexes.
    cni_eni = world.aws.vpc_cni.enis()[instance_id]
    (cni,) = [e for e in world.enis_of(instance_id) if e["NetworkInterfaceId"] == cni_eni]
    assert cni["Attachment"]["DeviceIndex"] == 1
    assert [e["Attachment"]["DeviceIndex"] for e in ours] == [2, 3]
    assert queue_depth(world.aws, queue.url) == 0
    assert queue_depth(world.aws, queue.dlq_url) == 0


def test_given_a_launch_event_that_is_merely_late_when_the_reconciler_runs_then_it_queues_nothing(
    world: World,
) -> None:
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVE_COUNT)
    mapping = intake_mapping(world, queue, function_env(max_receive_count=MAX_RECEIVE_COUNT))
    (late,) = world.scale_out(1)
    instance_id = late["detail"]["EC2InstanceId"]
    launched = world.aws.clock.now()
    runs = schedule(world, queue.url)

    def arrives_late() -> None:  # within the grace period
        world.aws.clock.sleep(75)
        mapping.put_events([late])

    ran = mapping.run(
        lambda: world.aws.clock.now() - launched > timedelta(seconds=GRACE_SECONDS + 2 * EVERY_SECONDS),
        extra_tasks=[mapping.every(EVERY_SECONDS, runs), arrives_late],
        max_seconds=600,
    )

    assert ran.reached
    assert len(runs.reports) >= 4, "the reconciler ran past the grace period"
    assert runs.reports[1][1].waiting == 1, "it saw the instance waiting before the event arrived"
    assert all(requeued == () for requeued in runs.requeued)
    assert world.aws.calls_to("sqs", "SendMessageBatch") == []
    results = [(r.hook, r.result, r.by) for r in world.aws.lifecycle.results if r.instance_id == instance_id]
    assert results == [(LAUNCH_HOOK, "CONTINUE", "api")]
    (completion,) = completions_of(world.aws, instance_id)
    assert completion["LifecycleActionToken"] == late["detail"]["LifecycleActionToken"]
    assert list(mapping.deliveries.values()) == [1]


def hold_in_queue(world: World, url: str, event: dict[str, Any], how: str) -> Callable[[], None]:
    """Put ``event`` in the queue so that it counts as ``how`` (visible, in flight or delayed); returns what
    takes it out again (a receive and delete, as once the function has handled it; a purge for the delayed one)."""
    sqs = world.aws.client("sqs")
    body = json.dumps(event)
    if how == "delayed":
        sqs.send_message(QueueUrl=url, MessageBody=body, DelaySeconds=900)
        return lambda: sqs.purge_queue(QueueUrl=url)
    sqs.send_message(QueueUrl=url, MessageBody=body)
    if how == "in flight":
        (message,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=900)["Messages"]
        return lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def handled() -> None:
        (received,) = sqs.receive_message(QueueUrl=url)["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=received["ReceiptHandle"])

    return handled


@pytest.mark.parametrize("how", ["visible", "in flight", "delayed"])
def test_given_the_intake_queue_is_busy_past_the_grace_period_then_nothing_is_requeued_until_it_is_idle(
    world: World, how: str
) -> None:
    # SQS GetQueueAttributes: ApproximateNumberOfMessages (visible), ...NotVisible (received, not deleted),
    # ...Delayed (DelaySeconds not over yet): while any is non-zero the lost event may be among them.
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVE_COUNT)
    lost, busy = world.scale_out(2)
    lost_id, busy_id = lost["detail"]["EC2InstanceId"], busy["detail"]["EC2InstanceId"]
    handled = hold_in_queue(world, queue.url, busy, how)
    runs = schedule(world, queue.url)
    runs()
    world.aws.clock.advance(GRACE_SECONDS + 10)

    runs()  # both overdue, but the queue holds a message

    assert runs.last().requeued == ()
    assert runs.last().backlog == 1
    assert world.aws.calls_to("sqs", "SendMessageBatch") == []

    assert deliver(world.runtime(), busy)["result"] == "CONTINUE"  # the busy one's event is handled ...
    handled()  # ... and leaves the queue
    runs()

    assert runs.last().requeued == (lost_id,)
    assert [e["detail"]["EC2InstanceId"] for e in requeued_events(world.aws)] == [lost_id]
    mapping = intake_mapping(world, queue, function_env(max_receive_count=MAX_RECEIVE_COUNT))
    assert mapping.run(lambda: not waiting(world, lost_id), max_seconds=120).reached
    outcomes = {(r.instance_id, r.result, r.by) for r in world.aws.lifecycle.results}
    assert outcomes == {(lost_id, "CONTINUE", "api"), (busy_id, "CONTINUE", "api")}


def test_given_a_terminating_instance_whose_event_was_lost_then_the_requeued_event_completes_it_and_releases_its_enis(
    world: World,
) -> None:
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVE_COUNT)
    mapping = intake_mapping(world, queue, function_env(max_receive_count=MAX_RECEIVE_COUNT))
    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    assert deliver(world.runtime(), launch)["result"] == "CONTINUE"
    settle(world)
    world.drop_delete_on_termination(world.our_enis()[0])  # this one the function must release itself
    world.scale_in_instance(instance_id)  # its terminate event never reaches the queue
    runs = schedule(world, queue.url)

    ran = mapping.run(
        lambda: not waiting(world, instance_id, TERMINATE_HOOK),
        extra_tasks=[mapping.every(EVERY_SECONDS, runs)],
        max_seconds=600,
    )

    assert ran.reached
    terminate = [r for r in world.aws.lifecycle.results if r.hook == TERMINATE_HOOK]
    assert [(r.instance_id, r.result, r.by) for r in terminate] == [(instance_id, "CONTINUE", "api")]
    (event,) = requeued_events(world.aws)
    assert event["detail-type"] == "EC2 Instance-terminate Lifecycle Action"
    assert event["detail"]["LifecycleHookName"] == TERMINATE_HOOK
    assert len(world.aws.calls_to("ec2", "DetachNetworkInterface")) == 1
    settle(world)
    assert world.our_enis() == [], "one released by the function, the other deleted with the instance"


# --- configuration ------------------------------------------------------------------------------------------

VALID_ENV = {
    "AUTOSCALING_GROUP_NAME": GROUP,
    "MULTUS_SUBNET_IDS": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
    "MULTUS_SECURITY_GROUP_IDS": "sg-0123456789abcdef0",
    "LIFECYCLE_HOOK_NAMES": f"{LAUNCH_HOOK},{TERMINATE_HOOK}",
    "INTAKE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/multus-intake",
}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LIFECYCLE_HOOK_NAMES", None),
        ("LIFECYCLE_HOOK_NAMES", " , "),
        ("INTAKE_QUEUE_URL", None),
        ("INTAKE_QUEUE_URL", "multus-intake"),
        ("INTAKE_QUEUE_URL", "arn:aws:sqs:us-east-1:123456789012:multus-intake"),
    ],
)
def test_given_a_missing_or_malformed_reconciler_variable_when_built_then_the_error_names_it(
    variable: str, value: str | None
) -> None:
    env = {name: v for name, v in VALID_ENV.items() if name != variable}
    if value is not None:
        env[variable] = value

    with pytest.raises(ConfigurationError) as raised:
        build_reconciler(env)

    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}: ")


# --- only our hooks, and failures -------------------------------------------------------------------------

OTHER_HOOK = "node-readiness-check"


def add_other_launch_hook(world: World, timeout: int = 300) -> None:
    """Another tool's launch hook on the same group: its action is not ours to complete."""
    world.autoscaling.put_lifecycle_hook(
        LifecycleHookName=OTHER_HOOK,
        AutoScalingGroupName=GROUP,
        LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout=timeout,
        DefaultResult="ABANDON",
    )


def test_given_another_tools_hook_on_the_group_when_an_event_is_lost_then_only_our_hooks_events_are_requeued(
    world: World,
) -> None:
    add_other_launch_hook(world)
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVE_COUNT)
    events = world.scale_out(1)  # one action per hook: neither event reaches the queue
    assert sorted(e["detail"]["LifecycleHookName"] for e in events) == sorted([LAUNCH_HOOK, OTHER_HOOK])
    (instance_id,) = {e["detail"]["EC2InstanceId"] for e in events}
    runs = schedule(world, queue.url)
    runs()
    world.aws.clock.advance(GRACE_SECONDS + 10)

    runs()

    assert runs.last().requeued == (instance_id,)
    assert [e["detail"]["LifecycleHookName"] for e in requeued_events(world.aws)] == [LAUNCH_HOOK]
    mapping = intake_mapping(world, queue, function_env(max_receive_count=MAX_RECEIVE_COUNT))
    assert mapping.run(lambda: not waiting(world, instance_id), max_seconds=120).reached
    assert [(r.hook, r.result) for r in world.aws.lifecycle.results] == [(LAUNCH_HOOK, "CONTINUE")]
    assert waiting(world, instance_id, OTHER_HOOK), "the other tool's action is left to it"
    assert world.lifecycle_state(instance_id) == "Pending:Wait"


def test_given_the_group_cannot_be_read_when_the_reconciler_runs_then_it_logs_it_and_still_sweeps(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVE_COUNT)
    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    world.aws.faults.crash_after("ec2", "CreateNetworkInterface")
    with pytest.raises(SimulatedCrash):
        deliver(world.runtime(), launch)  # one ENI left detached ...
    world.ec2.terminate_instances(InstanceIds=[instance_id])  # ... and its instance gone
    settle(world)
    (orphan,) = [e["NetworkInterfaceId"] for e in world.our_enis()]
    world.aws.faults.fail("autoscaling", "DescribeAutoScalingGroups", code="AccessDenied", status=403)
    reconciler = reconciler_for(world, queue.url, engine_clock(world))

    with caplog.at_level(logging.ERROR):
        report = reconcile(reconciler, RECONCILER_TIMEOUT_MS)

    assert report.orphans_deleted == (orphan,)
    assert report.requeued == ()
    assert world.aws.calls_to("sqs", "SendMessageBatch") == []
    (logged,) = [r for r in caplog.records if r.getMessage() == "could not look for lost lifecycle events"]
    assert logged.levelno == logging.ERROR
    assert "DescribeAutoScalingGroups" in str(getattr(logged, "error", ""))
    assert "AccessDenied" in str(getattr(logged, "error", ""))


def test_given_our_action_completed_while_another_tools_hook_still_holds_the_instance_then_no_event_of_it_fails(
    world: World,
) -> None:
    # Auto Scaling: an instance stays in Pending:Wait until every launch hook's action is completed; ours is gone
    # (CompleteLifecycleAction: "No active Lifecycle Action found") while the other tool's still waits.
    add_other_launch_hook(world, timeout=1800)
    queue = intake_queue(world.aws, max_receive_count=3)
    mapping = intake_mapping(world, queue, function_env(max_receive_count=3))
    events = world.scale_out(1)
    (ours,) = [e for e in events if e["detail"]["LifecycleHookName"] == LAUNCH_HOOK]
    instance_id = ours["detail"]["EC2InstanceId"]
    mapping.put_events([ours])  # our event arrives; the other tool takes its time (its event is not ours)
    started = world.aws.clock.now()
    runs = schedule(world, queue.url)

    ran = mapping.run(
        lambda: world.aws.clock.now() - started > timedelta(seconds=600),
        extra_tasks=[mapping.every(EVERY_SECONDS, runs)],
        max_seconds=1200,
    )

    assert ran.reached
    assert [(r.hook, r.result, r.by) for r in world.aws.lifecycle.results] == [(LAUNCH_HOOK, "CONTINUE", "api")]
    assert waiting(world, instance_id, OTHER_HOOK)
    assert [i.result for i in mapping.invocations if i.result is not InvocationResult.SUCCEEDED] == []
    assert queue_depth(world.aws, queue.dlq_url) == 0, "a dead-letter message raises the intake's alarm"


def test_given_a_record_that_keeps_failing_in_the_queue_when_an_event_is_lost_then_it_is_still_recovered_in_time(
    world: World,
) -> None:
    # A message in flight blocks a requeue only until one visibility timeout past the grace period: by then an
    # event of this instance in flight would have been handled or be visible again. With the template's shortest
    # hook (HookHeartbeatTimeout >= 420 s) the recovery still comes in time.
    heartbeat = 420
    world.autoscaling.put_lifecycle_hook(
        AutoScalingGroupName=GROUP,
        LifecycleHookName=LAUNCH_HOOK,
        LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout=heartbeat,
        DefaultResult="ABANDON",
    )
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVE_COUNT)
    mapping = intake_mapping(world, queue, function_env(max_receive_count=MAX_RECEIVE_COUNT))
    mapping.put_events([load_event("other-group.json")])  # rejected (not our group) on every receive
    (lost,) = world.scale_out(1)
    instance_id = lost["detail"]["EC2InstanceId"]
    launched = world.aws.clock.now()
    runs = schedule(world, queue.url)

    ran = mapping.run(
        lambda: not waiting(world, instance_id), extra_tasks=[mapping.every(EVERY_SECONDS, runs)], max_seconds=900
    )

    assert ran.reached
    (result,) = [r for r in world.aws.lifecycle.results if r.instance_id == instance_id]
    assert (result.result, result.by) == ("CONTINUE", "api")
    assert (result.at - launched).total_seconds() < heartbeat


def test_given_a_deferred_launch_whose_message_is_in_flight_when_overdue_then_it_is_not_requeued(
    world: World,
) -> None:
    # SQS: a record reported failed stays in flight (NotVisible) until its visibility timeout ends, then comes
    # back by itself. A launch that made ENIs is such a retry in progress: a second, token-less event would only
    # add a parallel delivery to throttled buckets. One that made nothing is requeued (the previous test).
    world.autoscaling.put_lifecycle_hook(
        AutoScalingGroupName=GROUP,
        LifecycleHookName=LAUNCH_HOOK,
        LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout=900,
        DefaultResult="ABANDON",
    )
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVE_COUNT)
    (deferred,) = world.scale_out(1)
    instance_id = deferred["detail"]["EC2InstanceId"]
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code="RequestLimitExceeded", status=503)
    with pytest.raises(RetryLater):
        deliver(world.runtime(), deferred)
    world.aws.faults.clear()
    assert len(world.our_enis()) == 2, "made, not attached: its retry will adopt them"
    hold_in_queue(world, queue.url, deferred, "in flight")
    runs = schedule(world, queue.url)
    runs()
    world.aws.clock.advance(GRACE_SECONDS + 210 + 10)

    runs()

    assert waiting(world, instance_id)
    assert runs.last().requeued == ()
    assert world.aws.calls_to("sqs", "SendMessageBatch") == []


# --- a backlog must not cost an instance its wait -----------------------------------------------------------


def test_given_events_queued_behind_a_backlog_longer_than_the_hook_timeout_then_their_instances_keep_waiting(
    world: World,
) -> None:
    """Auto Scaling gives a waiting instance the hook's HeartbeatTimeout (300 s here), then its DefaultResult
    (ABANDON: terminated, replaced); RecordLifecycleActionHeartbeat restarts that timeout. Given launches whose
    events wait in the intake queue (a burst's backlog) for longer than the timeout, when the reconciler runs every
    minute, then it records a heartbeat on each one's hook at half the timeout, the instances are still waiting
    when their events' turn comes, and nothing is requeued (their events are queued, not lost)."""
    queue = intake_queue(world.aws, max_receive_count=MAX_RECEIVE_COUNT)
    events = world.scale_out(2)
    instances = [e["detail"]["EC2InstanceId"] for e in events]
    handled = [hold_in_queue(world, queue.url, event, "visible") for event in events]
    runs = schedule(world, queue.url)

    for _ in range(10):  # ten minutes: twice the hook's timeout
        runs()
        world.aws.clock.advance(EVERY_SECONDS)

    assert all(waiting(world, instance) for instance in instances), "the backlog cost an instance its wait"
    beats = [c for c in world.aws.calls_to("autoscaling", "RecordLifecycleActionHeartbeat") if c.ok]
    assert {c.params["InstanceId"] for c in beats} == set(instances)
    assert {c.params["LifecycleHookName"] for c in beats} == {LAUNCH_HOOK}
    per_instance = len(beats) // len(instances)
    assert 3 <= per_instance <= 5, "about once per half timeout, not every run"
    assert all(requeued == () for requeued in runs.requeued)
    for event, take_out in zip(events, handled, strict=True):  # their turn comes
        assert deliver(world.runtime(), event)["result"] == "CONTINUE"
        take_out()
    assert not any(r.by == "timeout" for r in world.aws.lifecycle.results)
