"""The engine's decisions where parallel deliveries, other instances and bugs meet it, each stated once: which of
several ENIs of ours a launch keeps, how an attach recovers from what a parallel delivery did meanwhile, what is
left to another instance, and what an unexpected error still gets (a rollback and a lifecycle result).

Parallel deliveries are staged by doing, with the test's own EC2 client, what the other delivery would have done
(create an ENI with our tags, attach it, delete one) at the moment it matters: before the engine's attach.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from localaws import LocalAWS
from multus_ipam.aws.ec2 import Ec2Adapter
from multus_ipam.lifecycle import MAX_DEVICE_INDEX_TRIES
from multus_ipam.ports import Subnet
from multus_ipam.settings import INSTANCE_TAG, OWNER_TAG, SUBNET_TAG
from tests.handlers.records import deliver_last
from tests.handlers.timing import settle
from tests.handlers.world import GROUP, World, build_world, deliver

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import TagSpecificationTypeDef, TagTypeDef

#: Longer than the local AWS's attach time (1 to 4 s): an attachment made before it is 'attached'.
ATTACHED_AFTER = 5.0


def make_ours(world: World, instance_id: str, subnet_id: str, *, subnet_tag: bool = True) -> str:
    """An ENI with our tags for the instance and subnet, as a delivery of its launch creates it."""
    ours: list[TagTypeDef] = [{"Key": OWNER_TAG, "Value": "test-stack"}, {"Key": INSTANCE_TAG, "Value": instance_id}]
    if subnet_tag:
        ours.append({"Key": SUBNET_TAG, "Value": subnet_id})
    tags: TagSpecificationTypeDef = {"ResourceType": "network-interface", "Tags": ours}
    created = world.ec2.create_network_interface(SubnetId=subnet_id, TagSpecifications=[tags])
    return created["NetworkInterface"]["NetworkInterfaceId"]


def attach(world: World, eni_id: str, instance_id: str, device_index: int, card: int = 0) -> None:
    world.ec2.attach_network_interface(
        NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=device_index, NetworkCardIndex=card
    )


def ours_in(world: World, subnet_id: str) -> dict[str, Any]:
    """Our ENIs of the subnet, by id."""
    return {e["NetworkInterfaceId"]: e for e in world.our_enis() if e["SubnetId"] == subnet_id}


def engine_attaches(world: World, eni_id: str) -> int:
    return sum(
        1
        for call in world.aws.calls_to("ec2", "AttachNetworkInterface")
        if call.params.get("NetworkInterfaceId") == eni_id
    )


def refused_attaches(world: World) -> list[str]:
    """The AttachNetworkInterface calls EC2 refused, by error code."""
    return [call.outcome for call in world.aws.calls_to("ec2", "AttachNetworkInterface") if not call.ok]


def cni_eni(world: World, instance_id: str) -> str:
    """An ENI of the VPC CNI's (in the node subnet, none of our tags)."""
    primary_subnet = world.enis_of(instance_id)[0]["SubnetId"]
    made = world.ec2.create_network_interface(SubnetId=primary_subnet)["NetworkInterface"]["NetworkInterfaceId"]
    settle(world)
    return made


def before_first_attach(monkeypatch: pytest.MonkeyPatch, subnet_id: str, meanwhile: Callable[[str], None]) -> None:
    """Run ``meanwhile(eni_id)`` once, right before the engine's first attach of an ENI in ``subnet_id``: what a
    parallel delivery did between this delivery's create and its attach."""
    real_attach = Ec2Adapter.attach_eni
    real_describe = Ec2Adapter.describe_eni
    done: list[str] = []

    def attach_eni(self: Ec2Adapter, eni_id: str, instance_id: str, device_index: int, card: int) -> str:
        if not done:
            current = real_describe(self, eni_id)
            if current is not None and current.subnet_id == subnet_id:
                done.append(eni_id)
                meanwhile(eni_id)
        return real_attach(self, eni_id, instance_id, device_index, card)

    monkeypatch.setattr(Ec2Adapter, "attach_eni", attach_eni)


# --- which of several ENIs of ours a launch keeps -------------------------------------------------------------


def test_given_two_unattached_enis_of_ours_in_a_subnet_when_launching_then_the_lowest_id_is_kept_and_the_other_deleted(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    subnet = world.multus_subnets[0]
    low, _high = sorted(make_ours(world, instance_id, subnet) for _ in range(2))
    settle(world)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "CONTINUE"
    assert (outcome["enis"][0]["networkInterfaceId"], outcome["enis"][0]["adopted"]) == (low, True)
    assert list(ours_in(world, subnet)) == [low], "every delivery keeps the lowest id: they converge on it"


def test_given_an_attached_eni_of_ours_and_an_unattached_one_when_launching_then_the_attached_one_is_kept(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    subnet = world.multus_subnets[0]
    low, high = sorted(make_ours(world, instance_id, subnet) for _ in range(2))
    settle(world)
    attach(world, high, instance_id, 1)  # a parallel delivery got as far as its attach
    world.aws.clock.advance(ATTACHED_AFTER)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "CONTINUE"
    assert (outcome["enis"][0]["networkInterfaceId"], outcome["enis"][0]["deviceIndex"]) == (high, 1)
    assert list(ours_in(world, subnet)) == [high]
    assert engine_attaches(world, low) == 0, "the unattached one is deleted, never attached"
    assert engine_attaches(world, high) == 1, "the attached one is not attached again (only the test's attach)"


def test_given_two_attached_enis_of_ours_in_a_subnet_when_launching_then_the_lowest_is_kept_and_none_is_deleted(
    world: World,
) -> None:
    # An attached ENI is the node's now (EC2 refuses to delete it): the launch goes on with the lowest id.
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    subnet = world.multus_subnets[0]
    low, high = sorted(make_ours(world, instance_id, subnet) for _ in range(2))
    settle(world)
    attach(world, high, instance_id, 1)
    attach(world, low, instance_id, 3)
    world.aws.clock.advance(ATTACHED_AFTER)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "CONTINUE", outcome["reason"]
    assert (outcome["enis"][0]["networkInterfaceId"], outcome["enis"][0]["deviceIndex"]) == (low, 3)
    assert sorted(ours_in(world, subnet)) == [low, high]


def test_given_an_eni_of_ours_in_the_second_subnet_only_when_launching_then_it_serves_that_subnet_alone(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    first, second = world.multus_subnets[:2]
    made = make_ours(world, instance_id, second)
    settle(world)

    outcome = deliver(world.runtime(), event)

    assert (outcome["status"], outcome["result"]) == ("completed", "CONTINUE")
    records = {record["subnetId"]: record for record in outcome["enis"]}
    assert (records[second]["networkInterfaceId"], records[second]["adopted"]) == (made, True)
    assert records[first]["adopted"] is False
    assert len(ours_in(world, first)) == len(ours_in(world, second)) == 1


# --- attach recovery --------------------------------------------------------------------------------------------


def test_given_a_parallel_delivery_attached_its_own_eni_at_our_index_when_attaching_then_ours_gives_way_to_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    subnet = world.multus_subnets[0]
    theirs: list[str] = []

    def parallel_delivery(_ours: str) -> None:
        theirs.append(make_ours(world, instance_id, subnet))
        settle(world)
        attach(world, theirs[0], instance_id, 1)
        world.aws.clock.advance(ATTACHED_AFTER)

    before_first_attach(monkeypatch, subnet, parallel_delivery)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "CONTINUE", outcome["reason"]
    assert (outcome["enis"][0]["networkInterfaceId"], outcome["enis"][0]["deviceIndex"]) == (theirs[0], 1)
    assert list(ours_in(world, subnet)) == theirs, "this delivery's own ENI is deleted as the duplicate"


def test_given_a_parallel_delivery_attached_our_very_eni_when_attaching_then_that_attachment_is_taken(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    subnet = world.multus_subnets[0]

    def parallel_delivery(ours: str) -> None:
        attach(world, ours, instance_id, 1)
        world.aws.clock.advance(ATTACHED_AFTER)

    before_first_attach(monkeypatch, subnet, parallel_delivery)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "CONTINUE", outcome["reason"]
    (only,) = ours_in(world, subnet).values()
    assert outcome["enis"][0]["networkInterfaceId"] == only["NetworkInterfaceId"]
    assert (only["Attachment"]["DeviceIndex"], only["Attachment"]["DeleteOnTermination"]) == (1, True)


def test_given_a_parallel_delivery_deleted_our_eni_and_kept_its_own_when_attaching_then_the_launch_goes_on_with_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    subnet = world.multus_subnets[0]
    theirs: list[str] = []

    def parallel_delivery(ours: str) -> None:
        theirs.append(make_ours(world, instance_id, subnet))
        settle(world)
        attach(world, theirs[0], instance_id, 1)
        world.ec2.delete_network_interface(NetworkInterfaceId=ours)  # ours was the duplicate in its eyes
        world.aws.clock.advance(ATTACHED_AFTER)

    before_first_attach(monkeypatch, subnet, parallel_delivery)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "CONTINUE", outcome["reason"]
    assert outcome["enis"][0]["networkInterfaceId"] == theirs[0]
    assert list(ours_in(world, subnet)) == theirs


def test_given_our_eni_attached_to_another_instance_when_launching_then_it_fails_by_name_and_the_other_keeps_it(
    world: World,
) -> None:
    launch, other_launch = world.scale_out(2)
    instance_id = launch["detail"]["EC2InstanceId"]
    other = other_launch["detail"]["EC2InstanceId"]
    subnet = world.multus_subnets[0]
    taken = make_ours(world, instance_id, subnet)
    settle(world)
    attach(world, taken, other, 1)
    world.aws.clock.advance(ATTACHED_AFTER)

    outcome = deliver_last(world.runtime(), launch)

    assert outcome["result"] == "ABANDON"
    assert outcome["reason"] == (
        "AwsCallFailed: AttachNetworkInterface failed: EniAttachedElsewhere: "
        f"{taken} is tagged for {instance_id} but attached to {other}"
    )
    kept = ours_in(world, subnet)[taken]
    assert kept["Attachment"]["InstanceId"] == other, "the rollback releases this instance's ENIs, not another's"
    assert ours_in(world, world.multus_subnets[1]) == {}, "the ENI made for the second subnet is released"


def test_given_a_second_network_card_when_the_vpc_cni_holds_index_1_on_the_first_then_ours_still_take_index_1(
    world: World,
) -> None:
    world.ec2.create_launch_template_version(
        LaunchTemplateName="multus-workers",
        SourceVersion="$Latest",
        LaunchTemplateData={"InstanceType": "c6in.32xlarge"},
    )
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    settle(world)
    primary_subnet = world.enis_of(instance_id)[0]["SubnetId"]
    cni = world.ec2.create_network_interface(SubnetId=primary_subnet)["NetworkInterface"]["NetworkInterfaceId"]
    settle(world)
    attach(world, cni, instance_id, 1)

    outcome = deliver(world.runtime(NETWORK_CARD_INDEX="1"), event)

    assert outcome["result"] == "CONTINUE", outcome["reason"]
    assert [e["deviceIndex"] for e in outcome["enis"]] == [1, 2], "device indexes are per network card"
    for eni in world.our_enis():
        assert eni["Attachment"]["NetworkCardIndex"] == 1


# --- errors nobody planned for, and configuration -------------------------------------------------------------


def test_given_an_unexpected_error_during_a_launch_then_it_is_rolled_back_completed_and_still_raised(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]

    def bug(self: Ec2Adapter, eni_id: str, attachment_id: str) -> None:
        raise RuntimeError("a bug nobody foresaw")

    monkeypatch.setattr(Ec2Adapter, "set_delete_on_termination", bug)

    with pytest.raises(RuntimeError, match="a bug nobody foresaw"):
        deliver(world.runtime(), event)

    assert [r.result for r in world.aws.lifecycle.results if r.instance_id == instance_id] == ["ABANDON"]
    assert world.our_enis() == [], "what the launch made is released before the error propagates"


def test_given_a_multus_subnet_that_does_not_exist_next_to_one_that_does_then_the_launch_fails_naming_it(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    missing = "subnet-0123456789abcdef0"

    outcome = deliver(world.runtime(MULTUS_SUBNET_IDS=f"{world.multus_subnets[0]},{missing}"), event)

    assert outcome["result"] == "ABANDON"
    assert outcome["reason"].startswith("SubnetMisconfigured: MULTUS_SUBNET_IDS: ")
    assert missing in outcome["reason"]
    assert world.our_enis() == []


def test_given_ec2_answers_without_one_of_the_subnets_then_the_launch_fails_naming_the_missing_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DescribeSubnets with a filter (rather than ids) answers with the subnets it knows and no error.
    (event,) = world.scale_out(1)
    missing = "subnet-0123456789abcdef0"
    real = Ec2Adapter.describe_subnets

    def known_only(self: Ec2Adapter, subnet_ids: list[str]) -> list[Subnet]:
        return real(self, [s for s in subnet_ids if s != missing])

    monkeypatch.setattr(Ec2Adapter, "describe_subnets", known_only)

    outcome = deliver(world.runtime(MULTUS_SUBNET_IDS=f"{world.multus_subnets[0]},{missing}"), event)

    assert outcome["result"] == "ABANDON"
    assert outcome["reason"] == f"SubnetMisconfigured: MULTUS_SUBNET_IDS: {missing} not found"


def test_given_an_eni_of_ours_without_the_subnet_tag_when_launching_then_it_is_adopted_by_where_it_is(
    world: World,
) -> None:
    # ENIs made before the subnet tag existed, or tagged by hand: the subnet they are in decides.
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    subnet = world.multus_subnets[0]
    made = make_ours(world, instance_id, subnet, subnet_tag=False)
    settle(world)

    outcome = deliver(world.runtime(), event)

    assert (outcome["enis"][0]["networkInterfaceId"], outcome["enis"][0]["adopted"]) == (made, True)
    assert list(ours_in(world, subnet)) == [made]


def test_given_the_vpc_cni_attached_at_our_index_after_our_describe_when_attaching_then_the_next_free_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    settle(world)
    first, second = world.multus_subnets[:2]
    cni = cni_eni(world, instance_id)

    def vpc_cni(_ours: str) -> None:  # ipamd takes the lowest free index on card 0: our second subnet's
        attach(world, cni, instance_id, 2)

    before_first_attach(monkeypatch, second, vpc_cni)

    outcome = deliver(world.runtime(), event)

    assert (outcome["status"], outcome["result"]) == ("completed", "CONTINUE"), outcome["reason"]
    assert [(e["subnetId"], e["deviceIndex"]) for e in outcome["enis"]] == [(first, 1), (second, 3)]
    assert refused_attaches(world) == ["InvalidParameterValue"], "index 2 refused once, then the next free one"
    assert len(ours_in(world, first)) == len(ours_in(world, second)) == 1


def test_given_the_vpc_cni_holds_index_1_when_the_instance_is_described_then_no_attach_is_refused(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    settle(world)
    attach(world, cni_eni(world, instance_id), instance_id, 1)

    outcome = deliver(world.runtime(), event)

    assert [e["deviceIndex"] for e in outcome["enis"]] == [2, 3]
    assert refused_attaches(world) == [], "DescribeInstances showed index 1 taken: it is not tried"


def test_given_every_device_index_refused_when_attaching_then_the_launch_fails_after_a_bounded_number_of_tries(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    message = "Instance 'i-0' already has an interface attached at device index '1'."
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code="InvalidParameterValue", message=message)

    outcome = deliver_last(world.runtime(), event)

    assert outcome["result"] == "ABANDON"
    assert outcome["reason"].startswith(
        "AwsCallFailed: AttachNetworkInterface failed: NoFreeDeviceIndex: no free device index for eni-"
    )
    assert len(world.aws.calls_to("ec2", "AttachNetworkInterface")) == MAX_DEVICE_INDEX_TRIES
    assert world.our_enis() == []


def test_given_the_second_subnets_attach_refused_for_good_then_the_first_subnets_finished_eni_is_released_too(
    world: World,
) -> None:
    # FAILURE_RESULT=CONTINUE: the node goes in service, so what the rollback leaves stays on it.
    (event,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code="UnauthorizedOperation", status=403, skip=1)

    outcome = deliver_last(world.runtime(FAILURE_RESULT="CONTINUE"), event)

    assert (outcome["status"], outcome["result"]) == ("completed", "CONTINUE")
    assert world.our_enis() == [], "attached, with DeleteOnTermination set: a rollback releases it all the same"


def test_given_a_terminate_when_releasing_then_only_the_enis_ec2_would_not_delete_are_detached(world: World) -> None:
    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    assert deliver(world.runtime(), launch)["result"] == "CONTINUE"
    leaky = world.our_enis()[-1]  # listed after one that keeps DeleteOnTermination: skipping that one goes on
    world.drop_delete_on_termination(leaky)
    event = world.scale_in_instance(instance_id)
    world.aws.clear_calls()

    outcome = deliver(world.runtime(), event)

    assert (outcome["status"], outcome["result"]) == ("completed", "CONTINUE")
    detached = [c.params.get("AttachmentId") for c in world.aws.calls_to("ec2", "DetachNetworkInterface")]
    assert detached == [leaky["Attachment"]["AttachmentId"]]


def test_given_an_unexpected_error_while_releasing_on_terminate_then_the_action_still_continues_and_it_is_raised(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    assert deliver(world.runtime(), launch)["result"] == "CONTINUE"
    event = world.scale_in_instance(instance_id)

    def bug(self: Ec2Adapter, owner: str, instance: str) -> list[Any]:
        raise RuntimeError("a bug nobody foresaw")

    monkeypatch.setattr(Ec2Adapter, "owned_enis", bug)

    with pytest.raises(RuntimeError, match="a bug nobody foresaw"):
        deliver(world.runtime(), event)

    assert [r.result for r in world.aws.lifecycle.results if r.instance_id == instance_id] == ["CONTINUE", "CONTINUE"]


def test_given_a_scale_in_into_the_warm_pool_then_the_enis_stay_and_the_action_continues(aws: LocalAWS) -> None:
    world = build_world(aws)
    world.autoscaling.put_warm_pool(
        AutoScalingGroupName=GROUP, MinSize=0, MaxGroupPreparedCapacity=0, InstanceReusePolicy={"ReuseOnScaleIn": True}
    )
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    assert deliver(world.runtime(), event)["result"] == "CONTINUE"
    enis = sorted(e["NetworkInterfaceId"] for e in world.our_enis())
    world.autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=0)
    (action,) = [a for a in aws.lifecycle.active() if a.instance_id == instance_id]
    into_pool = aws.lifecycle.event(action)
    assert into_pool["detail"]["Destination"] == "WarmPool"

    outcome = deliver(world.runtime(), into_pool)

    assert outcome == {
        "status": "completed",
        "result": "CONTINUE",
        "enis": [],
        "reason": "warm pool",
    }
    assert sorted(e["NetworkInterfaceId"] for e in world.our_enis()) == enis
