"""Static lowest-free function: launch and terminate on the local AWS, driven by lifecycle events."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest

from localaws import LocalAWS
from multus_ipam.aws.ec2 import Ec2Adapter
from multus_ipam.errors import RetryLater
from multus_ipam.ports import CreateEni, Eni
from multus_ipam.runtime import Mode
from multus_ipam.settings import INSTANCE_TAG, NO_MANAGE_TAG, OWNER_TAG
from tests.eventfiles import load_event
from tests.handlers.records import deliver_last
from tests.handlers.timing import engine_clock, settle
from tests.handlers.world import GROUP, FakeContext, World, build_world, deliver


def tags_of(eni: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in eni.get("TagSet", [])}


def results_for(aws: LocalAWS, instance_id: str) -> list[str]:
    return [r.result for r in aws.lifecycle.results if r.instance_id == instance_id]


def test_given_a_launch_when_handled_then_each_multus_subnet_of_the_az_gets_an_eni_with_the_lowest_address(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]

    outcome = deliver(world.runtime(ENI_TAGS='{"team": "ims"}'), event)

    assert outcome["status"] == "completed"
    assert outcome["result"] == "CONTINUE"
    enis = world.enis_of(instance_id)
    multus = [e for e in enis if e["Attachment"]["DeviceIndex"] > 0]
    assert [e["SubnetId"] for e in multus] == list(world.multus_subnets[:2])
    assert [e["PrivateIpAddress"] for e in multus] == ["10.0.4.4", "10.0.5.4"]
    assert [e["Attachment"]["DeviceIndex"] for e in multus] == [1, 2]
    for eni in multus:
        assert eni["Attachment"]["DeleteOnTermination"] is True
        assert eni["Attachment"]["NetworkCardIndex"] == 0
        tags = tags_of(eni)
        assert tags[NO_MANAGE_TAG[0]] == "true"
        assert tags[OWNER_TAG] == "test-stack"
        assert tags[INSTANCE_TAG] == instance_id
        assert tags["team"] == "ims"
        assert eni["Groups"][0]["GroupId"] == world.security_group
    assert results_for(world.aws, instance_id) == ["CONTINUE"]
    assert world.lifecycle_state(instance_id) == "InService"


def test_given_tags_when_the_eni_is_created_then_they_are_set_in_the_create_call_itself(world: World) -> None:
    (event,) = world.scale_out(1)
    deliver(world.runtime(), event)
    creates = world.aws.calls_to("ec2", "CreateNetworkInterface")
    assert creates
    assert not world.aws.calls_to("ec2", "CreateTags"), "tags must be applied at creation, never afterwards"


def test_given_used_addresses_and_a_reservation_when_launching_then_they_are_skipped(aws: LocalAWS) -> None:
    world = build_world(aws, reservations={0: ["10.0.4.0/29"]})
    world.ec2.create_network_interface(SubnetId=world.multus_subnets[0], PrivateIpAddress="10.0.4.8")
    world.ec2.create_network_interface(SubnetId=world.multus_subnets[0], PrivateIpAddress="10.0.4.10")
    (event,) = world.scale_out(1)

    deliver(world.runtime(), event)

    addresses = [e["PrivateIpAddress"] for e in world.enis_of(event["detail"]["EC2InstanceId"])]
    assert "10.0.4.9" in addresses


def test_given_the_worker_bound_is_reached_when_launching_then_rollback_and_abandon(world: World) -> None:
    subnet = world.multus_subnets[0]
    for host in range(4, 8):
        world.ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress=f"10.0.4.{host}")
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]

    outcome = deliver(world.runtime(WORKER_IP_UPPER_BOUNDS=f"{subnet}=10.0.4.7"), event)

    assert outcome["result"] == "ABANDON"
    assert "WorkerRangeExhausted" in outcome["reason"]
    assert "10.0.4.7" in outcome["reason"]
    assert world.our_enis() == []
    assert results_for(world.aws, instance_id) == ["ABANDON"]


def test_given_a_full_subnet_when_launching_then_rollback_and_abandon(aws: LocalAWS) -> None:
    world = build_world(aws, multus_prefix=28)
    subnet = world.multus_subnets[1]
    for host in range(4, 15):
        world.ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress=f"10.0.5.{host}")
    (event,) = world.scale_out(1)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "ABANDON"
    assert "InsufficientAddresses" in outcome["reason"]
    assert world.our_enis() == [], "the ENI made in the first subnet must be rolled back"


def test_given_failure_result_continue_when_a_launch_fails_then_it_completes_with_continue(world: World) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code="UnauthorizedOperation", status=403)

    outcome = deliver(world.runtime(FAILURE_RESULT="CONTINUE"), event)

    assert outcome["result"] == "CONTINUE"
    assert "UnauthorizedOperation" in outcome["reason"]
    assert world.our_enis() == []


def test_given_the_address_is_taken_between_choice_and_create_then_the_next_one_is_used(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (event,) = world.scale_out(1)
    real_create = Ec2Adapter.create_eni
    stolen: list[str] = []

    def racing_create(self: Ec2Adapter, request: CreateEni) -> Eni:
        if not stolen and request.ipv4 is not None:
            stolen.append(str(request.ipv4))  # another tool claims the address first
            world.ec2.create_network_interface(SubnetId=request.subnet_id, PrivateIpAddress=str(request.ipv4))
        return real_create(self, request)

    monkeypatch.setattr(Ec2Adapter, "create_eni", racing_create)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "CONTINUE"
    assert stolen == ["10.0.4.4"]
    assert outcome["enis"][0]["ipv4"] == "10.0.4.5"


def test_given_the_vpc_cni_took_device_index_1_when_attaching_then_the_next_free_index_is_used(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    settle(world)
    primary_subnet = world.enis_of(instance_id)[0]["SubnetId"]
    cni_eni = world.ec2.create_network_interface(SubnetId=primary_subnet)["NetworkInterface"]
    settle(world)
    world.ec2.attach_network_interface(
        NetworkInterfaceId=cni_eni["NetworkInterfaceId"], InstanceId=instance_id, DeviceIndex=1
    )

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "CONTINUE"
    assert [e["deviceIndex"] for e in outcome["enis"]] == [2, 3]


def test_given_configured_device_indexes_when_attaching_then_they_are_used(world: World) -> None:
    (event,) = world.scale_out(1)
    first, second = world.multus_subnets[:2]
    outcome = deliver(world.runtime(DEVICE_INDEXES=f"{first}=3,{second}=5"), event)
    assert [e["deviceIndex"] for e in outcome["enis"]] == [3, 5]


def test_given_source_dest_check_disabled_when_launching_then_it_is_off_on_the_enis(world: World) -> None:
    (event,) = world.scale_out(1)
    deliver(world.runtime(DISABLE_SOURCE_DEST_CHECK="true"), event)
    for eni in world.our_enis():
        assert eni["SourceDestCheck"] is False


def test_given_a_dual_stack_subnet_when_launching_then_the_eni_gets_the_lowest_ipv6_too(aws: LocalAWS) -> None:
    world = build_world(aws, dual_stack=True)
    (event,) = world.scale_out(1)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "CONTINUE"
    for record in outcome["enis"]:
        assert record["ipv6"] is not None
        assert record["ipv6"].endswith("::4")


@pytest.mark.parametrize("mode", [Mode.STATIC, Mode.CIDR_RESERVATION])
def test_given_ipv6_only_subnets_when_launching_then_the_enis_have_only_an_ipv6_address(
    aws: LocalAWS, mode: Mode
) -> None:
    world = build_world(aws, ipv6_only=True, mode=mode)
    if mode is Mode.CIDR_RESERVATION:
        for subnet in world.multus_subnets[:2]:
            world.reserve_ipv6_pod_half(subnet)
    (event,) = world.scale_out(1)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "CONTINUE", outcome["reason"]
    assert [e["ipv4"] for e in outcome["enis"]] == [None, None]
    ipv6s = [e["ipv6"] for e in outcome["enis"]]
    assert all(ipv6s)
    if mode is Mode.STATIC:
        assert all(a.endswith("::4") for a in ipv6s), "the lowest free IPv6 address after the reserved ones"


def test_given_an_instance_that_is_already_gone_when_launching_then_nothing_is_created(world: World) -> None:
    (event,) = world.scale_out(1)
    settle(world)
    world.ec2.terminate_instances(InstanceIds=[event["detail"]["EC2InstanceId"]])

    outcome = deliver(world.runtime(), event)

    # Terminated outside Auto Scaling, it has left the group: nothing to verify it against, nothing is made.
    assert outcome["status"] == "not-waiting"
    assert "is in no Auto Scaling group: terminated" in (outcome["reason"] or "")
    assert world.our_enis() == []


def test_given_too_little_time_left_when_launching_then_the_event_is_retried_later(world: World) -> None:
    (event,) = world.scale_out(1)
    with pytest.raises(RetryLater, match="DeadlineExceeded"):
        deliver(world.runtime(SAFETY_MARGIN_SECONDS="30"), event, FakeContext(remaining_ms=20_000))
    assert world.aws.lifecycle.results == []
    assert world.our_enis() == []


def test_given_too_little_time_left_on_the_last_attempt_when_launching_then_it_rolls_back_and_completes(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    outcome = deliver_last(world.runtime(SAFETY_MARGIN_SECONDS="30"), event, FakeContext(remaining_ms=20_000))
    assert outcome["result"] == "ABANDON"
    assert "DeadlineExceeded" in outcome["reason"]
    assert world.our_enis() == []


def test_given_no_multus_subnet_in_the_az_when_launching_then_the_launch_fails_by_name(world: World) -> None:
    (event,) = world.scale_out(1)
    outcome = deliver(world.runtime(MULTUS_SUBNET_IDS=world.multus_subnets[2]), event)
    assert outcome["result"] == "ABANDON"
    assert "no subnet of MULTUS_SUBNET_IDS is in us-east-1a" in outcome["reason"]


def test_given_a_subnet_that_does_not_exist_when_launching_then_the_launch_fails_by_name(world: World) -> None:
    (event,) = world.scale_out(1)
    outcome = deliver(world.runtime(MULTUS_SUBNET_IDS="subnet-0123456789abcdef0"), event)
    assert outcome["result"] == "ABANDON"
    assert "subnet-0123456789abcdef0" in outcome["reason"]


def test_given_a_terminate_when_handled_then_our_enis_go_and_the_action_continues(world: World) -> None:
    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    runtime = world.runtime()
    deliver(runtime, launch)
    # One of our ENIs lost DeleteOnTermination (an operator, an old version): it must be released explicitly.
    leaky = world.our_enis()[0]
    world.drop_delete_on_termination(leaky)
    terminate = world.scale_in_instance(instance_id)

    outcome = deliver(runtime, terminate)

    assert outcome["result"] == "CONTINUE"
    assert results_for(world.aws, instance_id) == ["CONTINUE", "CONTINUE"]
    assert world.our_enis() == [], "nothing of ours may outlive the instance"


@pytest.mark.parametrize(
    "name",
    ["malformed-missing-instance-id.json", "other-group.json", "launch-successful-not-a-lifecycle-action.json"],
)
def test_given_bad_input_when_handled_then_it_is_rejected_and_aws_is_not_touched(world: World, name: str) -> None:
    runtime = world.runtime()
    world.aws.clear_calls()

    outcome = deliver(runtime, load_event(name))

    assert outcome["status"] == "rejected"
    assert outcome["reason"]
    assert world.aws.calls == []


def test_given_a_test_notification_when_handled_then_it_is_skipped_without_touching_aws(world: World) -> None:
    runtime = world.runtime()
    world.aws.clear_calls()
    assert deliver(runtime, load_event("test-notification.json"))["status"] == "skipped"
    assert world.aws.calls == []


def test_given_a_group_mismatch_when_handled_then_the_reason_names_both_groups(world: World) -> None:
    outcome = deliver(world.runtime(), load_event("other-group.json"))
    assert "some-other-group" in outcome["reason"]
    assert GROUP in outcome["reason"]


def test_given_the_completion_is_refused_while_the_instance_still_waits_then_it_is_retried(world: World) -> None:
    (event,) = world.scale_out(1)
    clock = engine_clock(world)
    world.aws.faults.fail(
        "autoscaling",
        "CompleteLifecycleAction",
        code="ValidationError",
        message=f"No active Lifecycle Action found with token {event['detail']['LifecycleActionToken']}",
        times=1,
    )

    outcome = deliver(world.runtime(clock=clock), event)

    assert outcome["status"] == "completed"
    completions = world.aws.calls_to("autoscaling", "CompleteLifecycleAction")
    assert [c.outcome for c in completions] == ["ValidationError", "ok"]
    assert clock.slept[-1] == 1.0, "one second between the refused completion and the next"
    assert results_for(world.aws, event["detail"]["EC2InstanceId"]) == ["CONTINUE"]


def test_given_three_launches_in_a_row_then_they_take_the_three_lowest_addresses(world: World) -> None:
    events = world.scale_out(3)
    runtime = world.runtime()
    for event in events:
        deliver(runtime, event)
    addresses = sorted(
        IPv4Address(e["PrivateIpAddress"]) for e in world.our_enis() if e["SubnetId"] == world.multus_subnets[0]
    )
    assert [str(a) for a in addresses] == ["10.0.4.4", "10.0.4.5", "10.0.4.6"]
