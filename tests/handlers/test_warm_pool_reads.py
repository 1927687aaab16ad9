"""The static strategy's rank reads the group's waiting instances, and its warm pool's only when it has one.

DescribeWarmPool takes MaxRecords up to 50 (Auto Scaling API reference; botocore states the limit only in the
parameter's documentation): a larger page size is a ValidationError that would fail every static launch.
"""

from __future__ import annotations

import pytest

from localaws import LocalAWS, SimulatedCrash
from multus_ipam.aws.autoscaling import WARM_POOL_PAGE_SIZE, AutoScalingAdapter
from tests.handlers.timing import engine_clock
from tests.handlers.world import AZ, GROUP, World, build_world, deliver


def test_given_a_group_without_a_warm_pool_when_described_then_it_shows_no_warm_pool_configuration(
    world: World,
) -> None:
    (group,) = world.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    assert "WarmPoolConfiguration" not in group


def test_given_a_group_with_a_warm_pool_when_described_then_it_shows_its_warm_pool_configuration(
    aws: LocalAWS,
) -> None:
    world = build_world(aws, warm_pool=True)
    (group,) = world.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    assert group["WarmPoolConfiguration"]["PoolState"] == "Stopped"


def test_given_no_warm_pool_when_a_static_launch_ranks_itself_then_describe_warm_pool_is_not_called(
    world: World,
) -> None:
    (event,) = world.scale_out(1)

    outcome = deliver(world.runtime(clock=engine_clock(world)), event)

    assert outcome["result"] == "CONTINUE"
    assert world.aws.calls_to("autoscaling", "DescribeWarmPool") == []


def test_given_a_warm_pool_when_a_static_launch_ranks_itself_then_pages_of_at_most_50_are_asked_for(
    aws: LocalAWS,
) -> None:
    world = build_world(aws, warm_pool=True)
    (into_pool,) = aws.lifecycle.events()

    outcome = deliver(world.runtime(clock=engine_clock(world)), into_pool)

    assert outcome["result"] == "CONTINUE"
    calls = aws.calls_to("autoscaling", "DescribeWarmPool")
    assert calls, "a group with a warm pool must have its pool's waiting instances ranked too"
    assert {int(c.params["MaxRecords"]) for c in calls} == {WARM_POOL_PAGE_SIZE}
    assert WARM_POOL_PAGE_SIZE <= 50


def test_given_a_warm_pool_when_reading_waiting_instances_then_the_pools_waiting_instance_is_included(
    aws: LocalAWS,
) -> None:
    world = build_world(aws, warm_pool=True)
    (into_pool,) = aws.lifecycle.events()

    waiting = [
        i.instance_id
        for i in AutoScalingAdapter(world.autoscaling).waiting_instances(GROUP)
        if i.availability_zone == AZ
    ]

    assert waiting == [into_pool["detail"]["EC2InstanceId"]]


def test_given_a_warm_pool_and_throttling_that_clears_on_describe_warm_pool_then_the_launch_succeeds(
    aws: LocalAWS,
) -> None:
    world = build_world(aws, warm_pool=True)
    (into_pool,) = aws.lifecycle.events()
    aws.faults.fail("autoscaling", "DescribeWarmPool", code="Throttling", status=400, times=2)

    outcome = deliver(world.runtime(clock=engine_clock(world)), into_pool)

    assert outcome["result"] == "CONTINUE"
    assert [c.outcome for c in aws.calls_to("autoscaling", "DescribeWarmPool")][:2] == ["Throttling"] * 2


def test_given_a_warm_pool_and_a_permanent_error_on_describe_warm_pool_then_rollback_and_abandon(
    aws: LocalAWS,
) -> None:
    world = build_world(aws, warm_pool=True)
    (into_pool,) = aws.lifecycle.events()
    aws.faults.fail("autoscaling", "DescribeWarmPool", code="AccessDenied", status=403)

    outcome = deliver(world.runtime(clock=engine_clock(world)), into_pool)

    assert outcome["result"] == "ABANDON"
    assert "DescribeWarmPool failed: AccessDenied" in outcome["reason"]
    aws.faults.clear()
    assert world.our_enis() == []


def test_given_a_warm_pool_and_a_crash_after_describe_warm_pool_when_redelivered_then_it_launches(
    aws: LocalAWS,
) -> None:
    world = build_world(aws, warm_pool=True)
    (into_pool,) = aws.lifecycle.events()
    aws.faults.crash_after("autoscaling", "DescribeWarmPool")

    with pytest.raises(SimulatedCrash):
        deliver(world.runtime(clock=engine_clock(world)), into_pool)
    outcome = deliver(world.runtime(clock=engine_clock(world)), into_pool)

    assert outcome["result"] == "CONTINUE"
    assert sorted(e["SubnetId"] for e in world.our_enis()) == sorted(world.multus_subnets[:2])
