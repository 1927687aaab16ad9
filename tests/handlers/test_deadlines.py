"""The function timeout is a bound: whatever AWS does, the lifecycle action is completed before the invocation's
time runs out.

botocore's standard mode can spend more than 100 s retrying one throttled call (10 attempts, backoff up to 20 s
each). Here every retry's backoff costs its largest possible delay on the engine's clock (as it would cost wall
time in Lambda), the context's remaining time shrinks with that clock, and throttling never clears.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.retries.standard import ExponentialBackoff

from multus_ipam.aws.autoscaling import AutoScalingAdapter
from multus_ipam.aws.ec2 import Ec2Adapter
from multus_ipam.aws.retry_deadline import ATTEMPT_SECONDS, THROTTLE_BACKOFF_CAP
from multus_ipam.budget import COMPLETION_RESERVE_SECONDS
from multus_ipam.lifecycle import RollbackIncomplete
from multus_ipam.ports import Eni
from multus_ipam.settings import LifecycleResult
from tests.handlers.records import failed_ids, sqs_batch
from tests.handlers.timing import engine_clock
from tests.handlers.world import LAUNCH_HOOK, TERMINATE_HOOK, FakeClock, FakeContext, World, deliver

THROTTLED = "RequestLimitExceeded"
#: A call under way when a phase's deadline passes still takes its latency (the local AWS draws up to 0.25 s).
LATENCY_SLACK = 1.0


@pytest.fixture
def clock(world: World, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The engine's clock on the local AWS clock, where botocore's backoff costs the most it can:
    rand x min(2^(n-1), cap) s at rand = 1 (instead of the local AWS's own draw), slept on the local AWS clock."""
    clock = engine_clock(world)

    def delay_amount(backoff: ExponentialBackoff, context: Any) -> float:
        cap: float = getattr(backoff, "_max_backoff")  # noqa: B009 - botocore keeps the cap private
        return min(2.0 ** (int(context.attempt_number) - 1), cap)

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", delay_amount)
    return clock


@pytest.fixture
def completions(monkeypatch: pytest.MonkeyPatch) -> Callable[[FakeContext], list[float]]:
    """Seconds left in the invocation at each CompleteLifecycleAction the engine makes."""
    seen: list[float] = []

    def watch(context: FakeContext) -> list[float]:
        real = AutoScalingAdapter.complete_lifecycle_action

        def complete(self: AutoScalingAdapter, **kwargs: Any) -> None:
            seen.append(context.get_remaining_time_in_millis() / 1000)
            real(self, **kwargs)

        monkeypatch.setattr(AutoScalingAdapter, "complete_lifecycle_action", complete)
        return seen

    return watch


def hook_results(world: World, hook: str) -> list[str]:
    return [r.result for r in world.aws.lifecycle.results if r.hook == hook]


def test_given_throttling_that_never_clears_on_attach_then_the_launch_is_deferred_before_its_time_runs_out(
    world: World, clock: FakeClock, completions: Callable[[FakeContext], list[float]]
) -> None:
    # Throttling is not a launch failure: nothing is rolled back or completed, the event comes back.
    (event,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code=THROTTLED, status=503)
    context = FakeContext(remaining_ms=100_000, clock=clock)
    left_at_completion = completions(context)

    response = deliver(world.runtime(clock=clock, SAFETY_MARGIN_SECONDS="30"), sqs_batch([event]), context)

    assert failed_ids(response) == ["message-0"]
    assert hook_results(world, LAUNCH_HOOK) == []
    assert left_at_completion == []
    assert context.get_remaining_time_in_millis() >= (30 - LATENCY_SLACK - COMPLETION_RESERVE_SECONDS) * 1000
    assert len(world.our_enis()) == 2, "the ENIs made are kept for the next attempt"


def test_given_throttling_that_never_clears_on_attach_on_the_last_receive_then_the_launch_is_abandoned_in_time(
    world: World, clock: FakeClock, completions: Callable[[FakeContext], list[float]]
) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code=THROTTLED, status=503)
    context = FakeContext(remaining_ms=100_000, clock=clock)
    left_at_completion = completions(context)
    runtime = world.runtime(clock=clock, SAFETY_MARGIN_SECONDS="30", MAX_RECEIVE_COUNT="3")

    response = deliver(runtime, sqs_batch([event], receive_count=3), context)

    assert failed_ids(response) == []
    assert hook_results(world, LAUNCH_HOOK) == [LifecycleResult.ABANDON.value]
    assert len(left_at_completion) == 1
    # the launch stopped at its deadline (SAFETY_MARGIN_SECONDS before the end; a throttled call is not retried
    # when its backoff and attempt could end past it), the rollback within its own
    latest = 30 + THROTTLE_BACKOFF_CAP + ATTEMPT_SECONDS + LATENCY_SLACK
    assert COMPLETION_RESERVE_SECONDS - LATENCY_SLACK <= left_at_completion[0] <= latest
    assert world.our_enis() == []


def test_given_throttling_that_never_clears_on_the_rollback_then_it_names_the_eni_and_still_completes_in_time(
    world: World, clock: FakeClock, completions: Callable[[FakeContext], list[float]]
) -> None:
    (action,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code=THROTTLED, status=503)
    world.aws.faults.fail("ec2", "DeleteNetworkInterface", code=THROTTLED, status=503)
    context = FakeContext(remaining_ms=100_000, clock=clock)
    left_at_completion = completions(context)
    runtime = world.runtime(clock=clock, SAFETY_MARGIN_SECONDS="30", MAX_RECEIVE_COUNT="1")

    response = deliver(runtime, sqs_batch([action]), context)

    left = world.our_enis()
    assert failed_ids(response) == ["message-0"], "RollbackIncomplete: the record fails and comes back"
    assert hook_results(world, LAUNCH_HOOK) == [LifecycleResult.ABANDON.value]
    assert left_at_completion[0] >= COMPLETION_RESERVE_SECONDS - LATENCY_SLACK
    assert len(left) == 2
    assert {e["Status"] for e in left} == {"available"}, "left detached: the reconciler deletes them with the node"


def test_given_detaches_that_never_finish_when_terminating_then_the_release_stops_in_time_and_names_both_enis(
    world: World, clock: FakeClock, completions: Callable[[FakeContext], list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    assert deliver(world.runtime(clock=engine_clock(world)), launch)["result"] == "CONTINUE"
    for eni in world.our_enis():
        world.drop_delete_on_termination(eni)
    event = world.scale_in_instance(instance_id)
    real_describe = Ec2Adapter.describe_eni

    def stuck_detaching(self: Ec2Adapter, eni_id: str) -> Eni | None:
        current = real_describe(self, eni_id)
        return None if current is None else Eni(current.eni_id, current.subnet_id, "detaching")

    monkeypatch.setattr(Ec2Adapter, "describe_eni", stuck_detaching)
    context = FakeContext(remaining_ms=60_000, clock=clock)
    left_at_completion = completions(context)

    with pytest.raises(RollbackIncomplete) as raised:
        deliver(world.runtime(clock=clock, DETACH_TIMEOUT_SECONDS="600"), event, context)

    ours = {e["NetworkInterfaceId"] for e in world.our_enis()}
    assert len(ours) == 2
    assert all(eni_id in str(raised.value) for eni_id in ours)
    assert len(world.aws.calls_to("ec2", "DetachNetworkInterface")) == 1, "no time was left to try the second"
    assert hook_results(world, TERMINATE_HOOK) == [LifecycleResult.CONTINUE.value]
    assert left_at_completion[0] >= COMPLETION_RESERVE_SECONDS - LATENCY_SLACK


def test_given_a_rolled_back_launch_with_little_time_left_when_the_completion_is_throttled_once_then_it_is_retried(
    world: World,
) -> None:
    # botocore standard mode retries Throttling; a deadline check that counted the worst-case hang (connect +
    # read timeouts) forbade every retry in the last half minute, leaving the action uncompleted (review finding).
    (event,) = world.scale_out(1)
    clock = engine_clock(world)
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code="UnauthorizedOperation", status=403)
    world.aws.faults.fail("autoscaling", "CompleteLifecycleAction", code="Throttling", status=400, times=1)

    runtime = world.runtime(clock=clock, SAFETY_MARGIN_SECONDS="5")
    outcome = deliver(runtime, event, FakeContext(remaining_ms=20_000, clock=clock))

    assert outcome["result"] == "ABANDON"
    outcomes = [c.outcome for c in world.aws.calls_to("autoscaling", "CompleteLifecycleAction")]
    assert outcomes == ["Throttling", "ok"]
    assert [r.result for r in world.aws.lifecycle.results] == ["ABANDON"]
