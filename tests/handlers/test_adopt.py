"""`python -m multus_ipam adopt` on the local AWS, on a group the way the AWS sample leaves it (DOMAIN.md
section 7), and the runbook in docs/migration.md run command by command."""

from __future__ import annotations

import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from multus_ipam.__main__ import EXIT_CONFLICTS, EXIT_OK, EXIT_UNREADABLE, main
from multus_ipam.settings import (
    CREATED_AT_TAG,
    INSTANCE_TAG,
    NO_MANAGE_TAG,
    OWNER_TAG,
    SUBNET_TAG,
    parse_created_at,
)
from tests.handlers.reconcile import make_reconciler, reconcile
from tests.handlers.world import GROUP, LAUNCH_HOOK, TERMINATE_HOOK, World, deliver

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import TagTypeDef

ROOT = Path(__file__).resolve().parents[2]
OWNER = "test-stack"  # World.env's OWNER_ID
SAMPLE_LAUNCH_HOOK = "sample-launch"
SAMPLE_TERMINATE_HOOK = "sample-terminate"
SAMPLE_RULE = "sample-lifecycle-rule"
SAMPLE_TARGET_ID = "sample-function"
USER_TAG: TagTypeDef = {"Key": "team", "Value": "ims"}


@dataclass(frozen=True)
class SampleGroup:
    """Two nodes the sample served: each with a sample ENI at device 1 and 2 (the two Multus subnets of its
    AZ, in order), its primary ENI and a VPC CNI ENI; DeleteOnTermination off on the second node's device 2;
    and one sample ENI it created and never attached (the half-made case)."""

    world: World
    instances: tuple[str, str]
    sample_enis: dict[tuple[str, int], str]
    """(instance, device index) -> ENI id"""
    no_dot: str
    half_made: str

    def env(self) -> dict[str, str]:
        return {
            "MULTUS_SUBNET_IDS": ",".join(self.world.multus_subnets),
            "OWNER_ID": OWNER,
            "LIFECYCLE_HOOK_NAMES": f"{LAUNCH_HOOK},{TERMINATE_HOOK}",
        }

    def adopt(self, *argv: str) -> tuple[int, str, str]:
        self.world.aws.clock.advance(30)  # an operator's pace: EC2's describes show what was just made
        out, err = io.StringIO(), io.StringIO()
        code = main(["adopt", "--group", GROUP, *argv], out=out, err=err, env=self.env(), now=self.world.aws.clock.now)
        return code, out.getvalue(), err.getvalue()

    def eni(self, eni_id: str) -> dict[str, Any]:
        (found,) = self.world.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"]
        return dict(found)

    def tags(self, eni_id: str) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self.eni(eni_id).get("TagSet", [])}


def _sample_eni(world: World, subnet: str) -> str:
    tags: list[TagTypeDef] = [{"Key": NO_MANAGE_TAG[0], "Value": NO_MANAGE_TAG[1]}, USER_TAG]
    created = world.ec2.create_network_interface(
        SubnetId=subnet,
        Groups=[world.security_group],
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": tags}],
    )
    return str(created["NetworkInterface"]["NetworkInterfaceId"])


@pytest.fixture
def sample(world: World) -> SampleGroup:
    ec2, autoscaling = world.ec2, world.autoscaling
    for hook in (LAUNCH_HOOK, TERMINATE_HOOK):  # the group had the sample's hooks, not ours
        autoscaling.delete_lifecycle_hook(AutoScalingGroupName=GROUP, LifecycleHookName=hook)
    for hook, transition in ((SAMPLE_LAUNCH_HOOK, "LAUNCHING"), (SAMPLE_TERMINATE_HOOK, "TERMINATING")):
        autoscaling.put_lifecycle_hook(
            AutoScalingGroupName=GROUP,
            LifecycleHookName=hook,
            LifecycleTransition=f"autoscaling:EC2_INSTANCE_{transition}",
            HeartbeatTimeout=300,
        )
    events = world.aws.client("events")
    events.put_rule(Name=SAMPLE_RULE, EventPattern='{"source": ["aws.autoscaling"]}')
    events.put_targets(
        Rule=SAMPLE_RULE,
        Targets=[{"Id": SAMPLE_TARGET_ID, "Arn": "arn:aws:lambda:us-east-1:123456789012:function:sample"}],
    )
    launches = world.scale_out(2)
    instances = tuple(e["detail"]["EC2InstanceId"] for e in launches)
    assert len(instances) == 2
    subnets = world.multus_subnets[:2]  # the two of the nodes' AZ
    made = {(i, index): _sample_eni(world, s) for i in instances for index, s in enumerate(subnets, start=1)}
    half_made = _sample_eni(world, subnets[0])
    world.aws.clock.advance(15)  # before the nodes' VPC CNI (40-90 s after launch) takes a device index
    attachments = {
        key: ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=key[0], DeviceIndex=key[1])["AttachmentId"]
        for key, eni in made.items()
    }
    world.aws.clock.advance(10)
    no_dot = made[(instances[1], 2)]
    for key, eni in made.items():
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": False})
        if eni != no_dot:
            ec2.modify_network_interface_attribute(
                NetworkInterfaceId=eni, Attachment={"AttachmentId": attachments[key], "DeleteOnTermination": True}
            )
    for instance in instances:  # the sample completes by instance id, without the token
        autoscaling.complete_lifecycle_action(
            AutoScalingGroupName=GROUP,
            LifecycleHookName=SAMPLE_LAUNCH_HOOK,
            InstanceId=instance,
            LifecycleActionResult="CONTINUE",
        )
    world.aws.clock.advance(120)  # the VPC CNI has attached its ENI to each node by now
    # ours deployed on the existing group (CreateNodeGroup=false): its hooks beside the sample's
    for hook, transition in ((LAUNCH_HOOK, "LAUNCHING"), (TERMINATE_HOOK, "TERMINATING")):
        autoscaling.put_lifecycle_hook(
            AutoScalingGroupName=GROUP,
            LifecycleHookName=hook,
            LifecycleTransition=f"autoscaling:EC2_INSTANCE_{transition}",
            HeartbeatTimeout=300,
        )
    return SampleGroup(world, (instances[0], instances[1]), made, no_dot, half_made)


def _others(sample: SampleGroup, instance: str) -> list[dict[str, Any]]:
    """The instance's ENIs the sample did not make: its primary and the VPC CNI's."""
    mine = set(sample.sample_enis.values())
    return [dict(e) for e in sample.world.enis_of(instance) if e["NetworkInterfaceId"] not in mine]


def test_given_a_group_the_sample_serves_when_reporting_then_each_eni_is_listed_and_nothing_changes(
    sample: SampleGroup,
) -> None:
    code, out, err = sample.adopt()

    assert (code, err) == (EXIT_CONFLICTS, "")  # the half-made ENI is refused
    for (instance, index), eni in sample.sample_enis.items():
        subnet = sample.world.multus_subnets[index - 1]
        (line,) = [x for x in out.splitlines() if x.strip().startswith(eni)]
        assert f"{eni} {subnet} device {index} 10.0." in line
        assert ": adopt (sample ENI" in line
        dot = ", set DeleteOnTermination" if eni == sample.no_dot else ""
        assert line.endswith(f"-> would tag with our ownership tags{dot}"), line
        assert out.index(instance) < out.index(eni)
    for instance in sample.instances:
        primary, cni = sorted(_others(sample, instance), key=lambda e: e["Attachment"]["DeviceIndex"])
        assert f"{primary['NetworkInterfaceId']} device 0: left alone (primary ENI)" in out
        assert f"{cni['NetworkInterfaceId']} device 3: left alone (outside the Multus subnets)" in out
    (half,) = [x for x in out.splitlines() if sample.half_made in x and "refused" in x]
    assert f"{sample.half_made} {sample.world.multus_subnets[0]} unattached" in half
    assert f"delete-network-interface --network-interface-id {sample.half_made}" in half
    assert out.endswith("4 ENI(s) to change: run again with --apply; 1 refused or missing (listed above)\n")
    assert sample.world.our_enis() == []


def test_given_the_report_when_applying_then_exactly_the_sample_enis_are_tagged_and_given_delete_on_termination(
    sample: SampleGroup,
) -> None:
    before = sample.world.aws.clock.now().replace(microsecond=0)
    code, out, _ = sample.adopt("--apply")
    after = sample.world.aws.clock.now()

    assert code == EXIT_CONFLICTS
    assert out.endswith("4 ENI(s) changed; 1 refused or missing (listed above)\n")
    for (instance, index), eni in sample.sample_enis.items():
        tags = sample.tags(eni)
        assert tags[OWNER_TAG] == OWNER
        assert tags[INSTANCE_TAG] == instance
        assert tags[SUBNET_TAG] == sample.world.multus_subnets[index - 1]
        created = parse_created_at(tags[CREATED_AT_TAG])  # the adoption's time
        assert created is not None
        assert before <= created <= after
        assert tags[USER_TAG["Key"]] == USER_TAG["Value"]
        assert sample.eni(eni)["Attachment"]["DeleteOnTermination"] is True
    assert {e["NetworkInterfaceId"] for e in sample.world.our_enis()} == set(sample.sample_enis.values())
    assert OWNER_TAG not in sample.tags(sample.half_made)
    for instance in sample.instances:
        assert all(OWNER_TAG not in sample.tags(e["NetworkInterfaceId"]) for e in _others(sample, instance))


def test_given_an_adopted_group_when_applying_again_then_nothing_changes(sample: SampleGroup) -> None:
    sample.adopt("--apply")
    before = {e: sample.tags(e) for e in sample.sample_enis.values()}

    code, out, _ = sample.adopt("--apply")

    assert code == EXIT_CONFLICTS  # still the half-made ENI, still untouched
    assert out.endswith("nothing to change; 1 refused or missing (listed above)\n")
    assert {e: sample.tags(e) for e in sample.sample_enis.values()} == before
    assert out.count(": ours (ours)") == 4


def test_given_the_half_made_eni_deleted_as_told_when_verifying_then_exit_0_and_nothing_to_change(
    sample: SampleGroup,
) -> None:
    sample.adopt("--apply")
    sample.world.ec2.delete_network_interface(NetworkInterfaceId=sample.half_made)

    code, out, err = sample.adopt()

    assert (code, err) == (EXIT_OK, "")
    assert out.endswith("nothing to change\n")


def test_given_an_adopted_node_when_it_terminates_through_our_hook_then_nothing_of_ours_is_left(
    sample: SampleGroup,
) -> None:
    world = sample.world
    sample.adopt("--apply")
    for hook in (SAMPLE_LAUNCH_HOOK, SAMPLE_TERMINATE_HOOK):
        world.autoscaling.delete_lifecycle_hook(AutoScalingGroupName=GROUP, LifecycleHookName=hook)
    node = sample.instances[1]  # the one whose device 2 the sample left without DeleteOnTermination

    result = deliver(world.runtime(), world.scale_in_instance(node))

    assert result["status"] == "completed", result
    world.aws.clock.advance(120)
    assert world.lifecycle_state(node) is None
    left = [e["NetworkInterfaceId"] for e in world.our_enis() if e.get("Attachment", {}).get("InstanceId") == node]
    assert left == []
    assert {e["NetworkInterfaceId"] for e in world.our_enis()} == {
        eni for (instance, _), eni in sample.sample_enis.items() if instance != node
    }


def test_given_an_adopted_eni_left_detached_when_its_node_is_gone_then_the_reconciler_sweeps_it(
    sample: SampleGroup,
) -> None:
    world = sample.world
    sample.adopt("--apply")
    node = sample.instances[0]
    eni = sample.sample_enis[(node, 1)]
    world.ec2.detach_network_interface(AttachmentId=sample.eni(eni)["Attachment"]["AttachmentId"])
    world.aws.clock.advance(30)
    world.ec2.terminate_instances(InstanceIds=[node])  # gone outside the hooks: no terminate event for us
    world.aws.clock.advance(60)

    reconcile(make_reconciler(world))

    assert (
        world.ec2.describe_network_interfaces(Filters=[{"Name": "network-interface-id", "Values": [eni]}])[
            "NetworkInterfaces"
        ]
        == []
    )


def test_given_no_permission_to_describe_the_enis_when_adopting_then_one_line_naming_the_actions_and_exit_3(
    sample: SampleGroup,
) -> None:
    sample.world.aws.faults.fail("ec2", "DescribeNetworkInterfaces", code="UnauthorizedOperation", status=403)

    code, out, err = sample.adopt()

    assert (code, out) == (EXIT_UNREADABLE, "")
    assert err.startswith(f"adopt: could not read {GROUP}: DescribeNetworkInterfaces failed: UnauthorizedOperation")
    assert err.endswith(
        "(it needs autoscaling:DescribeAutoScalingGroups, autoscaling:DescribeLifecycleHooks, ec2:DescribeSubnets, "
        "ec2:DescribeInstances, ec2:DescribeNetworkInterfaces)\n"
    )
    assert err.count("\n") == 1


# --- the runbook --------------------------------------------------------------------------------------------

FENCED = re.compile(r"^```sh\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)


def runbook_commands() -> list[str]:
    section = (ROOT / "docs" / "migration.md").read_text()
    lines = [line.split("  #")[0].strip() for block in FENCED.finditer(section) for line in block["body"].splitlines()]
    return [line for line in lines if line]


def _aws_cli(world: World, argv: list[str]) -> None:
    """``aws SERVICE OPERATION --kebab-option value ...`` as the boto3 call the AWS CLI makes."""
    service, operation, *options = argv
    kwargs: dict[str, Any] = {}
    for name, value in zip(options[::2], options[1::2], strict=True):
        key = "".join(part.capitalize() for part in name.removeprefix("--").split("-"))
        kwargs[key] = [value] if key == "Ids" else value
    getattr(world.aws.client(service), operation.replace("-", "_"))(**kwargs)


def test_the_runbook_takes_the_group_over_command_by_command(sample: SampleGroup) -> None:
    world = sample.world
    variables = {
        **sample.env(),
        "GROUP": GROUP,
        "SAMPLE_LAUNCH_HOOK": SAMPLE_LAUNCH_HOOK,
        "SAMPLE_TERMINATE_HOOK": SAMPLE_TERMINATE_HOOK,
        "SAMPLE_RULE": SAMPLE_RULE,
        "SAMPLE_TARGET_ID": SAMPLE_TARGET_ID,
    }
    world.ec2.delete_network_interface(NetworkInterfaceId=sample.half_made)  # done as the report says
    codes, outputs = [], []
    for command in runbook_commands():
        argv = [re.sub(r"\$(\w+)", lambda m: variables[m[1]], word) for word in shlex.split(command)]
        if argv[0] == "export":
            assert {word.split("=")[0] for word in argv[1:]} <= set(variables) | {"AWS_REGION"}, command
        elif argv[:3] == ["python", "-m", "multus_ipam"]:
            assert argv[3:5] == ["adopt", "--group"], command
            world.aws.clock.advance(30)
            out, err = io.StringIO(), io.StringIO()
            codes.append(main(argv[3:], out=out, err=err, env=sample.env(), now=world.aws.clock.now))
            assert err.getvalue() == "", command
            outputs.append(out.getvalue())
        else:
            assert argv[0] == "aws", command
            _aws_cli(world, argv[1:])
    assert codes == [EXIT_OK, EXIT_OK, EXIT_OK]
    first, *_, last = outputs
    assert f"  {SAMPLE_LAUNCH_HOOK} (launch): another tool's" in first  # the report says what to remove
    assert f"  {SAMPLE_TERMINATE_HOOK} (terminate): another tool's" in first
    assert "another tool's" not in last  # the verification: the sample's hooks are gone, ours are there
    assert f"  {LAUNCH_HOOK} (launch): ours\n  {TERMINATE_HOOK} (terminate): ours\n" in last
    hooks = world.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=GROUP)["LifecycleHooks"]
    assert {h["LifecycleHookName"] for h in hooks} == {LAUNCH_HOOK, TERMINATE_HOOK}
    assert SAMPLE_RULE not in {r["Name"] for r in world.aws.client("events").list_rules()["Rules"]}
    assert {e["NetworkInterfaceId"] for e in world.our_enis()} == set(sample.sample_enis.values())


def test_given_the_subnets_and_owner_as_options_when_reporting_then_the_environment_is_not_needed(
    sample: SampleGroup,
) -> None:
    sample.world.aws.clock.advance(30)
    out, err = io.StringIO(), io.StringIO()
    subnets = ",".join(sample.world.multus_subnets)

    code = main(["adopt", "--group", GROUP, "--subnet-ids", subnets, "--owner", OWNER], out=out, err=err, env={})

    assert (code, err.getvalue()) == (EXIT_CONFLICTS, "")
    assert out.getvalue().startswith(f"group {GROUP}, owner {OWNER}: 2 instance(s)\n")
    assert out.getvalue().count(": adopt (sample ENI") == 4
