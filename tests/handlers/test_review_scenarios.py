"""Races and late deliveries that once went wrong: each test forces the interleaving instead of hoping for it."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from localaws import LocalAWS, SimulatedCrash
from multus_ipam.aws.ec2 import Ec2Adapter
from multus_ipam.ports import Eni
from tests.handlers.reconcile import make_reconciler, reconcile
from tests.handlers.timing import engine_clock, settle
from tests.handlers.world import GROUP, LAUNCH_HOOK, TERMINATE_HOOK, World, build_world, deliver


def hook_results(world: World, hook: str) -> list[str]:
    return [r.result for r in world.aws.lifecycle.results if r.hook == hook]


def test_given_a_completed_launch_when_a_late_redelivery_fails_then_the_node_keeps_its_enis(world: World) -> None:
    (event,) = world.scale_out(1)
    deliver(world.runtime(), event)
    world.aws.faults.fail("ec2", "DescribeSubnets", code="UnauthorizedOperation", status=403)

    outcome = deliver(world.runtime(), event)  # a fresh execution environment, so subnets are read again

    assert outcome["status"] == "not-waiting"
    assert outcome["result"] is None
    assert len(world.our_enis()) == 2, "a node in service must keep its Multus ENIs"
    assert world.aws.calls_to("ec2", "DetachNetworkInterface") == []
    assert hook_results(world, LAUNCH_HOOK) == ["CONTINUE"]


def test_given_a_parallel_delivery_that_read_our_enis_before_the_other_created_one_then_it_gets_the_same_eni(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.crash_after("ec2", "CreateNetworkInterface")
    with pytest.raises(SimulatedCrash):  # delivery X creates the first ENI, then dies
        deliver(world.runtime(), event)
    created = {e["NetworkInterfaceId"] for e in world.our_enis()}
    stale_reads = [True]
    real_owned = Ec2Adapter.owned_enis

    def owned_as_read_before_x(self: Ec2Adapter, owner: str, instance_id: str) -> list[Eni]:
        if stale_reads:  # delivery Y's first look happened before X's create
            stale_reads.pop()
            return []
        return real_owned(self, owner, instance_id)

    monkeypatch.setattr(Ec2Adapter, "owned_enis", owned_as_read_before_x)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "CONTINUE"
    assert created <= {e["networkInterfaceId"] for e in outcome["enis"]}, "Y must end up with X's ENI"
    assert world.aws.calls_to("ec2", "DeleteNetworkInterface") == [], "no duplicate was made, so none deleted"
    assert len(world.our_enis()) == 2


def test_given_a_describe_that_lags_behind_a_taken_address_then_the_next_try_avoids_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (event,) = world.scale_out(1)
    subnet = world.multus_subnets[0]
    foreign = world.ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress="10.0.4.4")["NetworkInterface"]
    real_subnet_enis = Ec2Adapter.subnet_enis

    def lagging(self: Ec2Adapter, subnet_id: str) -> list[Eni]:  # never shows the foreign ENI
        return [e for e in real_subnet_enis(self, subnet_id) if e.eni_id != foreign["NetworkInterfaceId"]]

    monkeypatch.setattr(Ec2Adapter, "subnet_enis", lagging)
    world.aws.clear_calls()

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "CONTINUE"
    assert outcome["enis"][0]["ipv4"] == "10.0.4.5"
    assert len(world.aws.calls_to("ec2", "CreateNetworkInterface")) == 3, "one conflict, then one per subnet"


def test_given_a_burst_that_fills_a_warm_pool_then_every_launch_continues_with_the_lowest_addresses(
    aws: LocalAWS,
) -> None:
    world = build_world(aws)
    world.autoscaling.put_warm_pool(AutoScalingGroupName=GROUP, MinSize=10, MaxGroupPreparedCapacity=10)
    events = aws.lifecycle.events()
    assert len(events) == 10
    assert {e["detail"]["Destination"] for e in events} == {"WarmPool"}
    outcomes = world.deliver_concurrently(events)

    assert [o["result"] for o in outcomes] == ["CONTINUE"] * 10
    first = sorted(
        IPv4Address(e["PrivateIpAddress"]) for e in world.our_enis() if e["SubnetId"] == world.multus_subnets[0]
    )
    assert [str(a) for a in first] == [f"10.0.4.{host}" for host in range(4, 14)]
    creates = aws.calls_to("ec2", "CreateNetworkInterface")
    assert len(creates) <= 22, f"{len(creates)} creates for 20 ENIs: launches are colliding"


def test_given_a_scale_in_into_the_warm_pool_when_completion_is_briefly_refused_then_it_retries(
    aws: LocalAWS,
) -> None:
    world = build_world(aws)
    world.autoscaling.put_warm_pool(
        AutoScalingGroupName=GROUP, MinSize=0, MaxGroupPreparedCapacity=0, InstanceReusePolicy={"ReuseOnScaleIn": True}
    )
    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    runtime = world.runtime(clock=(clock := engine_clock(world)))
    deliver(runtime, launch)
    world.autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=0)
    (action,) = [a for a in aws.lifecycle.active() if a.instance_id == instance_id]
    event = aws.lifecycle.event(action)
    assert event["detail"]["Destination"] == "WarmPool"
    aws.faults.fail(
        "autoscaling",
        "CompleteLifecycleAction",
        code="ValidationError",
        message=f"No active Lifecycle Action found with token {action.token}",
        times=1,
    )

    outcome = deliver(runtime, event)

    assert outcome["status"] == "completed"
    assert [c.outcome for c in aws.calls_to("autoscaling", "CompleteLifecycleAction")][-2:] == ["ValidationError", "ok"]
    assert clock.slept[-1] == 1.0, "one second between the refused completion and the next"
    assert hook_results(world, TERMINATE_HOOK) == ["CONTINUE"]
    assert len(world.our_enis()) == 2, "an instance going back to the pool keeps its ENIs"


def test_given_a_launch_that_died_after_creating_and_was_never_redelivered_then_the_reconciler_sweeps_the_eni(
    world: World,
) -> None:
    (first,) = world.scale_out(1)
    world.aws.faults.crash_after("ec2", "CreateNetworkInterface")
    with pytest.raises(SimulatedCrash):
        deliver(world.runtime(), first)
    settle(world)
    (orphan,) = world.our_enis()
    world.aws.clock.advance(301)  # the event is lost: the hook times out, ABANDON terminates the instance
    assert hook_results(world, LAUNCH_HOOK) == ["ABANDON"]
    (left_behind,) = world.ec2.describe_network_interfaces(NetworkInterfaceIds=[orphan["NetworkInterfaceId"]])[
        "NetworkInterfaces"
    ]
    assert left_behind["Status"] == "available"
    (replacement,) = world.aws.lifecycle.events()  # Auto Scaling launches a replacement
    assert deliver(world.runtime(), replacement)["result"] == "CONTINUE"
    settle(world)

    report = reconcile(make_reconciler(world))

    remaining = {e["NetworkInterfaceId"] for e in world.our_enis()}
    assert report.orphans_deleted == (orphan["NetworkInterfaceId"],)
    assert len(remaining) == 2, "the second worker's two ENIs"


def test_given_a_detached_eni_of_a_live_instance_when_sweeping_then_it_is_left_for_its_launch(world: World) -> None:
    first, second = world.scale_out(2)
    world.aws.faults.crash_after("ec2", "CreateNetworkInterface")
    with pytest.raises(SimulatedCrash):  # the first launch is mid-flight: its ENI exists, not yet attached
        deliver(world.runtime(), first)
    deliver(world.runtime(), second)
    settle(world)

    assert reconcile(make_reconciler(world)).orphans_deleted == ()
    assert deliver(world.runtime(), first)["result"] == "CONTINUE"  # its redelivery adopts the ENI
    assert world.aws.calls_to("ec2", "DeleteNetworkInterface") == []
    assert len(world.our_enis()) == 4
