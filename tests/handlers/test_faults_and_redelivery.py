"""Fault matrix, redelivery and concurrency: whatever happens, no leaked ENI, no duplicate, one lifecycle result.

For each AWS call the handler makes we inject (a) throttling that clears, (b) a permanent error, (c) a crash
right after the call (AWS applied it, the function died) followed by redelivery of the same event. Every test
here runs for both functions (static and cidr-reservation): they share the engine, not the calls.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from ipaddress import IPv4Address, IPv4Network
from typing import Any, cast

import pytest

from localaws import LocalAWS, SimulatedCrash
from multus_ipam.errors import AwsCallFailed
from multus_ipam.lifecycle import RollbackIncomplete
from multus_ipam.runtime import Mode, Runtime
from tests.handlers.reconcile import make_reconciler, reconcile
from tests.handlers.timing import settle
from tests.handlers.world import GROUP, LAUNCH_HOOK, TERMINATE_HOOK, World, build_world, deliver

THROTTLE = {"ec2": ("RequestLimitExceeded", 503), "autoscaling": ("Throttling", 400)}
DENIED = {"ec2": ("UnauthorizedOperation", 403), "autoscaling": ("AccessDenied", 403)}

MODES = [Mode.STATIC, Mode.CIDR_RESERVATION]
#: Pod ranges as explicit reservations: the cidr-reservation function requires them, the static one avoids them.
POD_RANGES = {0: ["10.0.4.192/26"], 1: ["10.0.5.192/26"], 2: ["10.0.6.192/26"]}

LAUNCH_CALLS = [
    ("ec2", "DescribeInstances"),
    ("ec2", "DescribeSubnets"),
    ("ec2", "DescribeNetworkInterfaces"),
    ("ec2", "GetSubnetCidrReservations"),
    ("autoscaling", "DescribeAutoScalingGroups"),  # DescribeWarmPool: only with a warm pool (test_warm_pool_reads)
    ("ec2", "CreateNetworkInterface"),
    ("ec2", "AttachNetworkInterface"),
    ("ec2", "ModifyNetworkInterfaceAttribute"),
    ("autoscaling", "CompleteLifecycleAction"),
]
TERMINATE_CALLS = [
    ("ec2", "DescribeNetworkInterfaces"),
    ("ec2", "DetachNetworkInterface"),
    ("ec2", "DeleteNetworkInterface"),
    ("autoscaling", "CompleteLifecycleAction"),
]


def launch_calls(mode: Mode) -> list[tuple[str, str]]:
    """The rank of a static launch comes from the group's waiting instances; EC2 picks in cidr mode."""
    if mode is Mode.CIDR_RESERVATION:
        return [c for c in LAUNCH_CALLS if c[1] != "DescribeAutoScalingGroups"]
    return LAUNCH_CALLS


def matrix(calls: Callable[[Mode], list[tuple[str, str]]], skip: tuple[str, ...] = ()) -> list[Any]:
    return [
        pytest.param(mode, service, operation, id=f"{mode.value}-{operation}")
        for mode in MODES
        for service, operation in calls(mode)
        if operation not in skip
    ]


@pytest.fixture(params=MODES, ids=[m.value for m in MODES])
def mode(request: pytest.FixtureRequest) -> Mode:
    return cast("Mode", request.param)


@pytest.fixture
def world(aws: LocalAWS, mode: Mode) -> World:
    return build_world(aws, reservations=POD_RANGES, mode=mode)


def assert_fault_fired(world: World, service: str, operation: str, code: str) -> None:
    assert any(c.outcome == code for c in world.aws.calls_to(service, operation)), f"{operation} was never failed"


def hook_results(world: World, instance_id: str, hook: str) -> list[str]:
    return [r.result for r in world.aws.lifecycle.results if r.instance_id == instance_id and r.hook == hook]


def assert_launched_once(world: World, instance_id: str) -> None:
    """One ENI per Multus subnet of the AZ, attached once with DeleteOnTermination; nothing else of ours."""
    ours = world.our_enis()
    assert sorted(e["SubnetId"] for e in ours) == sorted(world.multus_subnets[:2]), "exactly one ENI per subnet"
    for eni in ours:
        assert eni["Attachment"]["InstanceId"] == instance_id
        assert eni["Attachment"]["DeleteOnTermination"] is True
    assert hook_results(world, instance_id, LAUNCH_HOOK) == ["CONTINUE"]
    assert world.lifecycle_state(instance_id) == "InService"


def assert_abandoned_cleanly(world: World, instance_id: str) -> None:
    assert world.our_enis() == [], "a failed launch must not leave ENIs behind"
    assert hook_results(world, instance_id, LAUNCH_HOOK) == ["ABANDON"]


# --- launch ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "service", "operation"), matrix(launch_calls))
def test_given_throttling_that_clears_on_any_launch_call_then_the_launch_succeeds(
    world: World, service: str, operation: str
) -> None:
    (event,) = world.scale_out(1)
    code, status = THROTTLE[service]
    world.aws.faults.fail(service, operation, code=code, status=status, times=2)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "CONTINUE"
    assert_fault_fired(world, service, operation, code)
    assert_launched_once(world, event["detail"]["EC2InstanceId"])


SPECIAL_ON_PERMANENT_ERROR = ("CompleteLifecycleAction", "DescribeNetworkInterfaces")  # tested on their own below


@pytest.mark.parametrize(("mode", "service", "operation"), matrix(launch_calls, skip=SPECIAL_ON_PERMANENT_ERROR))
def test_given_a_permanent_error_on_a_launch_call_then_rollback_and_abandon(
    world: World, service: str, operation: str
) -> None:
    (event,) = world.scale_out(1)
    code, status = DENIED[service]
    world.aws.faults.fail(service, operation, code=code, status=status)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "ABANDON"
    assert code in outcome["reason"]
    assert operation in outcome["reason"]
    world.aws.faults.clear()
    assert_abandoned_cleanly(world, event["detail"]["EC2InstanceId"])


def test_given_describe_enis_always_fails_then_nothing_is_created_and_the_launch_is_abandoned(world: World) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "DescribeNetworkInterfaces", code="UnauthorizedOperation", status=403)

    with pytest.raises(RollbackIncomplete, match="could not release"):
        deliver(world.runtime(), event)

    world.aws.faults.clear()
    assert world.aws.calls_to("ec2", "CreateNetworkInterface") == []
    assert_abandoned_cleanly(world, event["detail"]["EC2InstanceId"])


def test_given_completion_always_fails_then_the_error_propagates_and_the_hook_timeout_decides(world: World) -> None:
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    world.aws.faults.fail("autoscaling", "CompleteLifecycleAction", code="AccessDenied", status=403)

    with pytest.raises(AwsCallFailed, match="CompleteLifecycleAction failed: AccessDenied"):
        deliver(world.runtime(), event)

    world.aws.clock.advance(301)
    assert hook_results(world, instance_id, LAUNCH_HOOK) == ["ABANDON"]
    assert world.our_enis() == [], "DeleteOnTermination was set, so terminating the instance deleted the ENIs"


@pytest.mark.parametrize(("mode", "service", "operation"), matrix(launch_calls))
def test_given_a_crash_right_after_a_launch_call_when_redelivered_then_one_eni_per_subnet_and_one_result(
    world: World, service: str, operation: str
) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.crash_after(service, operation)

    with pytest.raises(SimulatedCrash):
        deliver(world.runtime(), event)
    outcome = deliver(world.runtime(), event)  # redelivery, in a fresh execution environment

    # Completed before the crash: the instance is in service, and the redelivery changes nothing (verified first).
    expected = "not-waiting" if operation == "CompleteLifecycleAction" else "completed"
    assert outcome["status"] == expected
    assert_launched_once(world, event["detail"]["EC2InstanceId"])


PER_SUBNET_WRITES = [
    ("ec2", "CreateNetworkInterface"),
    ("ec2", "AttachNetworkInterface"),
    ("ec2", "ModifyNetworkInterfaceAttribute"),
]


@pytest.mark.parametrize(("mode", "service", "operation"), matrix(lambda _: PER_SUBNET_WRITES))
def test_given_a_crash_right_after_the_second_subnets_call_when_redelivered_then_one_eni_per_subnet(
    world: World, service: str, operation: str
) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.crash_after(service, operation, skip=1)  # the first subnet's call goes through

    with pytest.raises(SimulatedCrash):
        deliver(world.runtime(), event)
    outcomes = [c.outcome for c in world.aws.calls_to(service, operation)]
    if operation == "AttachNetworkInterface":
        # A new ENI may not be known yet (eventual consistency): the attach is retried, and the local AWS counts
        # that refused call among the ones to let through, so the crash may come after the first subnet's.
        assert outcomes.count("crash") == 1
    else:
        assert outcomes == ["ok", "crash"]
    assert deliver(world.runtime(), event)["status"] == "completed"

    assert_launched_once(world, event["detail"]["EC2InstanceId"])


def test_given_the_lifecycle_state_cannot_be_read_when_a_launch_fails_then_it_still_rolls_back(world: World) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "ModifyNetworkInterfaceAttribute", code="UnauthorizedOperation", status=403)
    # The first read verifies the instance; the one after the failure cannot be made.
    world.aws.faults.fail("autoscaling", "DescribeAutoScalingInstances", code="AccessDenied", status=403, skip=1)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "ABANDON"
    world.aws.faults.clear()
    assert_abandoned_cleanly(world, event["detail"]["EC2InstanceId"])


def test_given_the_rollback_cannot_delete_then_the_action_completes_and_the_reconciler_sweeps_the_eni(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code="UnauthorizedOperation", status=403)
    world.aws.faults.fail("ec2", "DeleteNetworkInterface", code="UnauthorizedOperation", status=403)

    with pytest.raises(RollbackIncomplete, match="could not release eni-") as raised:
        deliver(world.runtime(), event)

    assert hook_results(world, event["detail"]["EC2InstanceId"], LAUNCH_HOOK) == ["ABANDON"]
    left = {e["NetworkInterfaceId"] for e in world.our_enis()}
    assert len(left) == 2
    assert all(eni_id in str(raised.value) for eni_id in left)
    world.aws.faults.clear()
    settle(world)  # the ABANDON terminates the instance: positive evidence, at any age
    assert set(reconcile(make_reconciler(world)).orphans_deleted) == left
    assert world.our_enis() == []


def test_given_the_same_event_twice_when_handled_then_the_second_changes_nothing(world: World) -> None:
    # SQS delivers at least once: the second delivery finds the instance in service and stops before any change.
    (event,) = world.scale_out(1)
    runtime = world.runtime()

    first = deliver(runtime, event)
    writes = len([c for c in world.aws.calls if not c.operation.startswith("Describe")])
    second = deliver(runtime, event)

    assert first["status"] == "completed"
    assert second["status"] == "not-waiting"
    assert "is InService, not waiting for this launch" in second["reason"]
    assert len([c for c in world.aws.calls if not c.operation.startswith("Describe")]) == writes
    assert_launched_once(world, event["detail"]["EC2InstanceId"])


def test_given_the_same_event_three_times_in_parallel_then_one_eni_per_subnet_and_one_result(world: World) -> None:
    (event,) = world.scale_out(1)
    runtimes = [world.runtime() for _ in range(3)]

    outcomes = world.deliver_concurrently([event] * 3, runtimes)

    assert sorted(o["status"] for o in outcomes) == ["already-completed", "already-completed", "completed"]
    assert_launched_once(world, event["detail"]["EC2InstanceId"])


@pytest.mark.parametrize("mode", [Mode.STATIC])
def test_given_twenty_parallel_launches_then_all_continue_with_the_twenty_lowest_addresses(world: World) -> None:
    events = world.scale_out(20)

    outcomes = world.deliver_concurrently(events)

    assert [o["result"] for o in outcomes] == ["CONTINUE"] * 20
    for position, subnet in enumerate(world.multus_subnets[:2]):
        addresses = sorted(IPv4Address(e["PrivateIpAddress"]) for e in world.our_enis() if e["SubnetId"] == subnet)
        assert [str(a) for a in addresses] == [f"10.0.{4 + position}.{host}" for host in range(4, 24)]
    instances = {e["detail"]["EC2InstanceId"] for e in events}
    assert {r.instance_id for r in world.aws.lifecycle.results} == instances
    assert len(world.aws.lifecycle.results) == 20


@pytest.mark.parametrize("mode", [Mode.CIDR_RESERVATION])
def test_given_twenty_parallel_cidr_launches_then_all_continue_outside_the_pod_ranges(world: World) -> None:
    events = world.scale_out(20)

    outcomes = world.deliver_concurrently(events)

    assert [o["result"] for o in outcomes] == ["CONTINUE"] * 20
    ours = world.our_enis()
    assert len(ours) == 40
    addresses = [IPv4Address(e["PrivateIpAddress"]) for e in ours]
    assert len(set(addresses)) == 40
    for eni in ours:
        (pod_range,) = POD_RANGES[world.multus_subnets.index(eni["SubnetId"])]
        assert IPv4Address(eni["PrivateIpAddress"]) not in IPv4Network(pod_range)
    assert len(world.aws.lifecycle.results) == 20


# --- warm pools -----------------------------------------------------------------------------------------


def test_given_a_warm_pool_when_the_instance_launches_twice_then_both_succeed_without_duplicates(
    aws: LocalAWS, mode: Mode
) -> None:
    world = build_world(aws, warm_pool=True, reservations=POD_RANGES, mode=mode)
    runtime = world.runtime()
    (into_pool,) = aws.lifecycle.events()
    assert into_pool["detail"]["Destination"] == "WarmPool"
    instance_id = into_pool["detail"]["EC2InstanceId"]

    assert deliver(runtime, into_pool)["result"] == "CONTINUE"
    aws.lifecycle.leave_warm_pool(GROUP, instance_id)
    (action,) = [a for a in aws.lifecycle.active() if a.instance_id == instance_id]
    out_of_pool = aws.lifecycle.event(action)
    assert out_of_pool["detail"]["Origin"] == "WarmPool"
    second = deliver(runtime, out_of_pool)

    assert second["result"] == "CONTINUE"
    assert all(e["adopted"] for e in second["enis"])
    assert_launched_once_in_pool_lifecycle(world, instance_id)


def assert_launched_once_in_pool_lifecycle(world: World, instance_id: str) -> None:
    ours = world.our_enis()
    assert sorted(e["SubnetId"] for e in ours) == sorted(world.multus_subnets[:2])
    assert hook_results(world, instance_id, LAUNCH_HOOK) == ["CONTINUE", "CONTINUE"]


# --- terminate ------------------------------------------------------------------------------------------


def launched_without_dot(world: World) -> tuple[Runtime, str, dict[str, Any]]:
    """A launched instance whose first ENI lost DeleteOnTermination, and its terminate event."""
    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    runtime = world.runtime()
    deliver(runtime, launch)
    eni = world.our_enis()[0]
    world.drop_delete_on_termination(eni)
    return runtime, instance_id, world.scale_in_instance(instance_id)


@pytest.mark.parametrize(("mode", "service", "operation"), matrix(lambda _: TERMINATE_CALLS))
def test_given_throttling_that_clears_on_a_terminate_call_then_nothing_leaks(
    world: World, service: str, operation: str
) -> None:
    runtime, instance_id, event = launched_without_dot(world)
    code, status = THROTTLE[service]
    world.aws.faults.fail(service, operation, code=code, status=status, times=2)

    assert deliver(runtime, event)["result"] == "CONTINUE"

    assert_fault_fired(world, service, operation, code)
    assert world.our_enis() == []
    assert hook_results(world, instance_id, TERMINATE_HOOK) == ["CONTINUE"]


@pytest.mark.parametrize(
    ("mode", "service", "operation"), matrix(lambda _: TERMINATE_CALLS, skip=("CompleteLifecycleAction",))
)
def test_given_a_permanent_error_on_a_terminate_call_then_it_still_continues_and_reports_the_eni(
    world: World, service: str, operation: str
) -> None:
    runtime, instance_id, event = launched_without_dot(world)
    code, status = DENIED[service]
    world.aws.faults.fail(service, operation, code=code, status=status)

    with pytest.raises(RollbackIncomplete, match="could not release"):
        deliver(runtime, event)

    assert hook_results(world, instance_id, TERMINATE_HOOK) == ["CONTINUE"]


@pytest.mark.parametrize(("mode", "service", "operation"), matrix(lambda _: TERMINATE_CALLS))
def test_given_a_crash_right_after_a_terminate_call_when_redelivered_then_nothing_leaks(
    world: World, service: str, operation: str
) -> None:
    runtime, instance_id, event = launched_without_dot(world)
    world.aws.faults.crash_after(service, operation)

    with pytest.raises(SimulatedCrash):
        deliver(runtime, event)
    deliver(world.runtime(), event)

    assert world.our_enis() == []
    assert hook_results(world, instance_id, TERMINATE_HOOK) == ["CONTINUE"]


@pytest.mark.parametrize(
    ("code", "status"),
    [("RequestLimitExceeded", 503), ("UnauthorizedOperation", 403)],
    ids=["deferred", "failed"],
)
def test_given_a_launch_failing_after_its_action_was_completed_meanwhile_then_its_unattached_enis_are_deleted(
    world: World, code: str, status: int
) -> None:
    # Another delivery completed the action (or the hook timed out): no attempt will follow, nothing is rolled back
    # (the node is in service), and the orphan sweep keeps the ENIs of a live instance, so what this delivery made
    # and could not attach must go now, whether its failure was one to retry or not.
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    token = event["detail"]["LifecycleActionToken"]
    # Completed by someone else while this delivery waits for its new ENIs to settle (after it verified the
    # instance and created them).
    world.aws.clock.call_at(
        world.aws.clock.now() + timedelta(seconds=1),
        lambda: world.aws.lifecycle.complete(
            group=GROUP, hook=LAUNCH_HOOK, token=token, instance_id=instance_id, result="CONTINUE"
        ),
    )
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code=code, status=status)

    outcome = deliver(world.runtime(), event)

    assert outcome["status"] == "already-completed"
    assert len(world.aws.calls_to("ec2", "CreateNetworkInterface")) == 2
    settle(world)
    assert world.our_enis() == []
    assert hook_results(world, instance_id, LAUNCH_HOOK) == ["CONTINUE"]
