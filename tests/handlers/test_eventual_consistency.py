"""EC2 is eventually consistent: an id just created, or an instance just launched, may be unknown for a while
("this does not mean the resource does not exist", EC2 developer guide, "Eventual consistency").

A NotFound for the event's instance or for an ENI or attachment we just made is retried with backoff on the
engine's clock (0.5, 1, 2, 4, 8 s), bounded and within the launch's time, and only then taken as final.

The NotFound answers here are injected, on the ideal local AWS: its realistic lag would add NotFounds of its own
and blur the exact waits these tests hold. Every other handler test meets the realistic lag.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import pytest

from localaws import LocalAWS, Realism
from multus_ipam.aws.ec2 import Ec2Adapter
from multus_ipam.budget import NEW_ENI_SETTLE_SECONDS
from multus_ipam.ports import Eni
from multus_ipam.settings import INSTANCE_TAG, OWNER_TAG, SUBNET_TAG
from tests.handlers.records import deliver_last
from tests.handlers.world import FakeClock, FakeContext, World, deliver

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import TagSpecificationTypeDef

INSTANCE_NOT_FOUND = "InvalidInstanceID.NotFound"
ENI_NOT_FOUND = "InvalidNetworkInterfaceID.NotFound"
ATTACHMENT_NOT_FOUND = "InvalidAttachmentID.NotFound"


@pytest.fixture
def aws() -> Iterator[LocalAWS]:
    with LocalAWS(region="us-east-1", realism=Realism.ideal()) as local:
        yield local


def assert_one_attached_eni_per_subnet(world: World, instance_id: str) -> None:
    ours = world.our_enis()
    assert sorted(e["SubnetId"] for e in ours) == sorted(world.multus_subnets[:2])
    for eni in ours:
        assert eni["Attachment"]["InstanceId"] == instance_id
        assert eni["Attachment"]["DeleteOnTermination"] is True


def test_given_the_instance_is_not_shown_yet_when_launching_then_it_is_asked_again_and_the_launch_continues(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "DescribeInstances", code=INSTANCE_NOT_FOUND, times=2)
    clock = FakeClock()

    outcome = deliver(world.runtime(clock=clock), event)

    assert outcome["result"] == "CONTINUE"
    assert clock.slept == [0.5, 1.0, NEW_ENI_SETTLE_SECONDS]  # then the wait between the creates and the attaches
    assert_one_attached_eni_per_subnet(world, event["detail"]["EC2InstanceId"])


def test_given_the_instance_is_never_shown_when_launching_then_it_is_gone_after_a_bounded_wait(world: World) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "DescribeInstances", code=INSTANCE_NOT_FOUND)
    clock = FakeClock()

    outcome = deliver(world.runtime(clock=clock), event)

    assert outcome["result"] == "ABANDON"
    assert "InstanceGone" in outcome["reason"]
    assert "not found" in outcome["reason"]
    assert clock.slept == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert world.aws.calls_to("ec2", "CreateNetworkInterface") == []


@pytest.mark.parametrize("code", [ENI_NOT_FOUND, INSTANCE_NOT_FOUND])
def test_given_attach_answers_not_found_for_a_while_then_it_is_retried_and_the_launch_continues(
    world: World, code: str
) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code=code, times=2)
    clock = FakeClock()

    outcome = deliver(world.runtime(clock=clock), event)

    assert outcome["result"] == "CONTINUE"
    assert clock.slept == [NEW_ENI_SETTLE_SECONDS, 0.5, 1.0]
    assert [c.outcome for c in world.aws.calls_to("ec2", "AttachNetworkInterface")] == [code, code, "ok", "ok"]
    assert_one_attached_eni_per_subnet(world, event["detail"]["EC2InstanceId"])


def test_given_the_attachment_is_not_found_right_after_the_attach_then_delete_on_termination_is_set_anyway(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "ModifyNetworkInterfaceAttribute", code=ATTACHMENT_NOT_FOUND, times=2)
    clock = FakeClock()

    outcome = deliver(world.runtime(clock=clock), event)

    assert outcome["result"] == "CONTINUE"
    assert clock.slept == [NEW_ENI_SETTLE_SECONDS, 0.5, 1.0]
    assert_one_attached_eni_per_subnet(world, event["detail"]["EC2InstanceId"])


def test_given_the_new_eni_is_never_known_to_attach_then_the_launch_fails_by_name_after_a_bounded_wait(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code=ENI_NOT_FOUND)
    clock = FakeClock()

    outcome = deliver_last(world.runtime(clock=clock), event)

    assert outcome["result"] == "ABANDON"
    assert f"AttachNetworkInterface failed: {ENI_NOT_FOUND}" in outcome["reason"]
    assert "still not found after 15.5s" in outcome["reason"]
    assert clock.slept == [NEW_ENI_SETTLE_SECONDS, 0.5, 1.0, 2.0, 4.0, 8.0]
    assert world.our_enis() == []


def test_given_attach_never_knows_the_instance_then_the_instance_is_gone_after_a_bounded_wait(world: World) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code=INSTANCE_NOT_FOUND)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "ABANDON"
    assert "InstanceGone" in outcome["reason"]
    assert world.our_enis() == []


def test_given_little_time_left_when_waiting_for_ec2_to_know_the_eni_then_the_wait_stops_at_the_launch_deadline(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code=ENI_NOT_FOUND)
    clock = FakeClock()

    # 40 s left, 30 s kept back: the launch has 10 s, so after the 2 s between the creates and the attaches it
    # waits 0.5 + 1 + 2 + 4 s and not the 8 s after.
    runtime = world.runtime(clock=clock, SAFETY_MARGIN_SECONDS="30")
    outcome = deliver_last(runtime, event, FakeContext(40_000, clock=clock))

    assert outcome["result"] == "ABANDON"
    assert "DeadlineExceeded" in outcome["reason"]
    assert clock.slept == [NEW_ENI_SETTLE_SECONDS, 0.5, 1.0, 2.0, 4.0]
    assert world.our_enis() == []


def test_given_our_enis_flicker_in_the_listings_when_attach_fails_then_the_launch_gives_up_after_one_switch(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (event,) = world.scale_out(1)
    instance_id = event["detail"]["EC2InstanceId"]
    subnet = world.multus_subnets[0]
    ours: TagSpecificationTypeDef = {
        "ResourceType": "network-interface",
        "Tags": [
            {"Key": OWNER_TAG, "Value": "test-stack"},
            {"Key": INSTANCE_TAG, "Value": instance_id},
            {"Key": SUBNET_TAG, "Value": subnet},
        ],
    }
    twins = [
        world.ec2.create_network_interface(SubnetId=subnet, TagSpecifications=[ours])["NetworkInterface"][
            "NetworkInterfaceId"
        ]
        for _ in range(2)
    ]
    real_owned = Ec2Adapter.owned_enis
    real_subnet = Ec2Adapter.subnet_enis
    listings = [0]

    def hidden_twin() -> str:
        """Each listing shows only one of the two (alternately): neither looks like a duplicate."""
        listings[0] += 1
        return twins[listings[0] % 2]

    def flickering(self: Ec2Adapter, owner: str, instance: str) -> list[Eni]:
        hidden = hidden_twin()
        return [e for e in real_owned(self, owner, instance) if e.eni_id != hidden]

    def flickering_subnets(self: Ec2Adapter, subnet_ids: Sequence[str]) -> list[Eni]:
        hidden = hidden_twin()
        return [e for e in real_subnet(self, subnet_ids) if e.eni_id != hidden]

    monkeypatch.setattr(Ec2Adapter, "owned_enis", flickering)
    monkeypatch.setattr(Ec2Adapter, "subnet_enis", flickering_subnets)
    monkeypatch.setattr(Ec2Adapter, "describe_eni", lambda self, eni_id: None)  # "deleted by a parallel delivery"?
    world.aws.faults.fail("ec2", "AttachNetworkInterface", code="UnauthorizedOperation", status=403)

    outcome = deliver(world.runtime(), event)

    assert outcome["result"] == "ABANDON"
    assert "UnauthorizedOperation" in outcome["reason"]
    assert len(world.aws.calls_to("ec2", "AttachNetworkInterface")) == 2, "the first ENI, then one switch"
