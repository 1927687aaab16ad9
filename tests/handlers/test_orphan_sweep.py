"""The orphan sweep (in the scheduled reconciler) never deletes a launch in flight.

Every ENI we create carries the time of the lifecycle event that made it (multus-ipam:created-at). An instance
DescribeInstances does not show counts as gone only for ENIs older than ORPHAN_MIN_AGE_SECONDS (a new instance
may not be shown yet); ENIs without the tag (older versions) go only on positive evidence (the instance shown
shutting-down or terminated). DescribeInstances gets at most 200 filter values per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from localaws import SimulatedCrash
from multus_ipam.aws.ec2 import Ec2Adapter
from multus_ipam.ports import Eni
from multus_ipam.reconciler import ReconcileReport
from multus_ipam.runtime import Runtime
from multus_ipam.settings import CREATED_AT_TAG, INSTANCE_TAG, OWNER_TAG, SUBNET_TAG, format_created_at
from tests.handlers.reconcile import make_reconciler, reconcile
from tests.handlers.timing import engine_clock, settle
from tests.handlers.world import World, deliver

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import NetworkInterfaceTypeDef

NOT_SHOWN = "i-0aaaaaaaaaaaaaaaa"  # no such instance: DescribeInstances does not show it


def left_behind(world: World, instance_id: str, *, age: timedelta | None) -> str:
    """A detached ENI of ours for ``instance_id``, as a launch leaves it between create and attach; ``age``
    None: made by a version without the created-at tag."""
    tags = {OWNER_TAG: "test-stack", INSTANCE_TAG: instance_id, SUBNET_TAG: world.multus_subnets[0]}
    if age is not None:
        tags[CREATED_AT_TAG] = format_created_at(world.aws.clock.now() - age)
    eni = world.ec2.create_network_interface(
        SubnetId=world.multus_subnets[0],
        TagSpecifications=[
            {"ResourceType": "network-interface", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
    )["NetworkInterface"]
    return eni["NetworkInterfaceId"]


def runtime(world: World, min_age_seconds: str = "") -> Runtime:
    return world.runtime(clock=engine_clock(world), ORPHAN_MIN_AGE_SECONDS=min_age_seconds)


def sweep(world: World, min_age_seconds: str = "") -> ReconcileReport:
    """A scheduled run of the reconciler, once what was left behind is visible."""
    settle(world)
    return reconcile(make_reconciler(world, engine_clock(world), ORPHAN_MIN_AGE_SECONDS=min_age_seconds))


def exists(world: World, eni_id: str) -> bool:
    return eni_id in {e["NetworkInterfaceId"] for e in world.our_enis()}


def tags_of(eni: NetworkInterfaceTypeDef) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in eni.get("TagSet", []) if "Key" in t and "Value" in t}


def test_given_a_launch_then_each_eni_carries_the_time_of_its_lifecycle_event(world: World) -> None:
    (event,) = world.scale_out(1)

    deliver(runtime(world), event)

    ours = world.our_enis()
    assert len(ours) == 2
    assert {tags_of(eni)[CREATED_AT_TAG] for eni in ours} == {event["time"]}


def first_listing_misses_our_enis(monkeypatch: pytest.MonkeyPatch) -> None:
    """The redelivery's first look at our ENIs: EC2 does not list the one just created yet (eventual
    consistency), so the launch creates again with the same client token."""
    real_listing = Ec2Adapter.subnet_enis
    unlisted = [True]

    def not_listed_yet(self: Ec2Adapter, subnet_ids: Sequence[str]) -> list[Eni]:
        found = real_listing(self, subnet_ids)
        if unlisted:
            unlisted.pop()
            return [e for e in found if e.tags.get(OWNER_TAG) is None]
        return found

    monkeypatch.setattr(Ec2Adapter, "subnet_enis", not_listed_yet)


def test_given_a_crash_after_create_and_the_eni_not_listed_yet_when_redelivered_later_then_the_same_eni_is_used(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (event,) = world.scale_out(1)
    world.aws.faults.crash_after("ec2", "CreateNetworkInterface")
    with pytest.raises(SimulatedCrash):
        deliver(runtime(world), event)
    settle(world)
    (created,) = world.our_enis()
    world.aws.clock.advance(90)  # Lambda's retry comes a minute or two later
    first_listing_misses_our_enis(monkeypatch)

    outcome = deliver(runtime(world), event)

    assert outcome["result"] == "CONTINUE", outcome["reason"]
    creates = world.aws.calls_to("ec2", "CreateNetworkInterface")
    assert [c.outcome for c in creates] == ["crash", "ok", "ok"], "the same token, the same request: no mismatch"
    assert created["NetworkInterfaceId"] in {e["networkInterfaceId"] for e in outcome["enis"]}
    assert len(world.our_enis()) == 2


def test_given_an_event_without_a_time_and_a_crash_after_create_when_redelivered_then_the_same_eni_is_used(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A created-at taken from each delivery's own clock would change the request behind the same client token:
    # AWS answers IdempotentParameterMismatch (review finding). Without the event's time, no created-at tag.
    (event,) = world.scale_out(1)
    del event["time"]
    world.aws.faults.crash_after("ec2", "CreateNetworkInterface")
    with pytest.raises(SimulatedCrash):
        deliver(runtime(world), event)
    settle(world)
    (created,) = world.our_enis()
    world.aws.clock.advance(90)
    first_listing_misses_our_enis(monkeypatch)

    outcome = deliver(runtime(world), event)

    assert outcome["result"] == "CONTINUE", outcome["reason"]
    assert [c.outcome for c in world.aws.calls_to("ec2", "CreateNetworkInterface")] == ["crash", "ok", "ok"]
    assert created["NetworkInterfaceId"] in {e["networkInterfaceId"] for e in outcome["enis"]}
    assert CREATED_AT_TAG not in {t["Key"] for t in created.get("TagSet", [])}


def test_given_a_young_detached_eni_whose_instance_is_not_shown_when_sweeping_then_it_is_kept(world: World) -> None:
    eni_id = left_behind(world, NOT_SHOWN, age=timedelta(seconds=30))

    sweep(world)

    assert exists(world, eni_id), "a new instance may not be shown yet: its launch is in flight"


def test_given_an_old_detached_eni_whose_instance_is_not_shown_when_sweeping_then_it_is_deleted(world: World) -> None:
    eni_id = left_behind(world, NOT_SHOWN, age=timedelta(minutes=11))

    sweep(world)

    assert not exists(world, eni_id)


def test_given_a_cooldown_setting_when_sweeping_then_it_decides_what_is_old(world: World) -> None:
    eni_id = left_behind(world, NOT_SHOWN, age=timedelta(minutes=2))

    sweep(world, min_age_seconds="60")

    assert not exists(world, eni_id)


def test_given_an_untagged_old_eni_whose_instance_is_not_shown_when_sweeping_then_it_is_kept(world: World) -> None:
    eni_id = left_behind(world, NOT_SHOWN, age=None)

    sweep(world)

    assert exists(world, eni_id), "no proof of age: only positive evidence of the instance's end will do"


def test_given_an_untagged_eni_whose_instance_is_terminated_when_sweeping_then_it_is_deleted(world: World) -> None:
    (first,) = world.scale_out(1)
    instance_id = first["detail"]["EC2InstanceId"]
    eni_id = left_behind(world, instance_id, age=None)
    settle(world)
    world.ec2.terminate_instances(InstanceIds=[instance_id])

    sweep(world)

    assert not exists(world, eni_id)


def test_given_a_launch_in_flight_whose_instance_is_not_shown_yet_when_the_reconciler_sweeps_then_it_completes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (first,) = world.scale_out(1)
    world.aws.faults.crash_after("ec2", "CreateNetworkInterface")
    with pytest.raises(SimulatedCrash):  # the launch is mid-flight: its ENI exists, not yet attached
        deliver(runtime(world), first)
    in_flight = first["detail"]["EC2InstanceId"]
    real_states = Ec2Adapter.instance_states

    def too_new_to_be_shown(self: Ec2Adapter, instance_ids: list[str]) -> dict[str, str]:
        return {i: s for i, s in real_states(self, instance_ids).items() if i != in_flight}

    monkeypatch.setattr(Ec2Adapter, "instance_states", too_new_to_be_shown)

    report = sweep(world)

    assert report.orphans_deleted == ()
    assert world.aws.calls_to("ec2", "DeleteNetworkInterface") == []
    assert deliver(runtime(world), first)["result"] == "CONTINUE"  # its redelivery adopts the ENI
    assert len(world.our_enis()) == 2


def test_given_more_than_200_candidates_when_sweeping_then_describe_instances_gets_at_most_200_values_per_call(
    world: World,
) -> None:
    instance_ids = [f"i-{n:017x}" for n in range(1, 251)]  # none of them exists
    for instance_id in instance_ids:
        left_behind(world, instance_id, age=timedelta(hours=1))
    world.aws.clear_calls()

    sweep(world)

    sweep_reads = [c for c in world.aws.calls_to("ec2", "DescribeInstances") if "Filter.1.Name" in c.params]
    values = [sum(1 for key in c.params if key.startswith("Filter.1.Value.")) for c in sweep_reads]
    assert sorted(values) == [50, 200]
    assert not any(tags_of(e).get(INSTANCE_TAG) in instance_ids for e in world.our_enis())


def test_given_describe_instances_fails_when_sweeping_then_nothing_is_deleted_and_the_run_ends_normally(
    world: World,
) -> None:
    eni_id = left_behind(world, NOT_SHOWN, age=timedelta(hours=1))
    settle(world)
    reconciler = make_reconciler(world, engine_clock(world))
    world.aws.faults.fail("ec2", "DescribeInstances", code="UnauthorizedOperation", status=403)

    report = reconcile(reconciler)

    assert report.orphans_deleted == ()
    assert exists(world, eni_id), "the next run tries again"


def foreign_subnet(world: World) -> str:
    """A subnet of the VPC that is not a Multus subnet."""
    return world.ec2.create_subnet(VpcId=world.vpc_id, CidrBlock="10.0.200.0/24", AvailabilityZone="us-east-1a")[
        "Subnet"
    ]["SubnetId"]


def test_given_an_eni_with_our_owner_tag_outside_the_multus_subnets_then_the_sweep_leaves_it_and_goes_on(
    world: World,
) -> None:
    # Anyone who may tag an ENI can set our owner tag; the role may delete ENIs in the Multus subnets only (IAM
    # ec2:Subnet), so such an ENI is never tried, and it does not stop the sweep of the real orphans after it.
    planted = world.ec2.create_network_interface(
        SubnetId=foreign_subnet(world),
        TagSpecifications=[
            {
                "ResourceType": "network-interface",
                "Tags": [
                    {"Key": OWNER_TAG, "Value": "test-stack"},
                    {"Key": INSTANCE_TAG, "Value": NOT_SHOWN},
                    {"Key": CREATED_AT_TAG, "Value": format_created_at(world.aws.clock.now() - timedelta(hours=2))},
                ],
            }
        ],
    )["NetworkInterface"]["NetworkInterfaceId"]
    orphan = left_behind(world, NOT_SHOWN, age=timedelta(hours=2))

    report = sweep(world)

    assert report.orphans_deleted == (orphan,)
    assert exists(world, planted)
    assert [c.params.get("NetworkInterfaceId") for c in world.aws.calls_to("ec2", "DeleteNetworkInterface")] == [orphan]


def test_given_one_orphan_that_cannot_be_deleted_then_the_sweep_deletes_the_others(world: World) -> None:
    first = left_behind(world, NOT_SHOWN, age=timedelta(hours=2))
    second = left_behind(world, NOT_SHOWN, age=timedelta(hours=2))
    world.aws.faults.fail("ec2", "DeleteNetworkInterface", code="UnauthorizedOperation", status=403, times=1)

    report = sweep(world)

    assert len(report.orphans_deleted) == 1
    assert [exists(world, eni) for eni in (first, second)].count(True) == 1, "only the refused one is left"


def test_given_an_eni_with_our_tags_outside_the_multus_subnets_on_a_terminating_node_then_it_is_left_alone(
    world: World,
) -> None:
    (launch,) = world.scale_out(1)
    instance_id = launch["detail"]["EC2InstanceId"]
    deliver(runtime(world), launch)
    planted = world.ec2.create_network_interface(
        SubnetId=foreign_subnet(world),
        TagSpecifications=[
            {
                "ResourceType": "network-interface",
                "Tags": [{"Key": OWNER_TAG, "Value": "test-stack"}, {"Key": INSTANCE_TAG, "Value": instance_id}],
            }
        ],
    )["NetworkInterface"]["NetworkInterfaceId"]
    settle(world)
    world.ec2.attach_network_interface(NetworkInterfaceId=planted, InstanceId=instance_id, DeviceIndex=5)
    settle(world)
    terminate = world.scale_in_instance(instance_id)

    outcome = deliver(runtime(world), terminate)

    assert outcome["status"] == "completed", "no RollbackIncomplete for an ENI that is not ours to release"
    detached = [c.params.get("AttachmentId") for c in world.aws.calls_to("ec2", "DetachNetworkInterface")]
    assert detached == []
