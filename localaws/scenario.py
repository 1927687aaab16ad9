"""A Multus node group in the local AWS, the way the stack and the demo expect it.

``build(aws)`` creates a VPC with one EKS-style primary subnet and two Multus subnets per AZ (optionally
dual-stack or IPv6-only Multus subnets, optionally explicit CIDR reservations for pod addresses), a security
group, a launch template, and an Auto Scaling group whose launch and terminate hooks are declared in
``LifecycleHookSpecificationList`` (so even the first instances wait for them). Desired capacity starts at 0
unless asked: scale with ``SetDesiredCapacity`` and watch ``aws.lifecycle.events()``.
"""

# ruff: noqa: ANN401 - boto3 clients are passed untyped here to keep boto3-stubs out of the runtime path.

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from localaws import LocalAWS

IpMode = Literal["ipv4", "dual-stack", "ipv6-only"]


@dataclass(frozen=True)
class Spec:
    """What to build. CIDRs are per AZ, in ``azs`` order."""

    azs: tuple[str, ...] = ("us-east-1a", "us-east-1b")
    vpc_cidr: str = "10.0.0.0/16"
    primary_cidrs: tuple[str, ...] = ("10.0.0.0/20", "10.0.16.0/20")
    multus_cidrs: tuple[tuple[str, str], ...] = (("10.0.64.0/24", "10.0.65.0/24"), ("10.0.66.0/24", "10.0.67.0/24"))
    ip_mode: IpMode = "ipv4"
    #: CIDRs to reserve (``explicit``) in whichever Multus subnet contains them, e.g. the pod range.
    explicit_reservations: tuple[str, ...] = ()
    group_name: str = "multus-nodes"
    instance_type: str = "m5.large"
    min_size: int = 0
    max_size: int = 10
    desired_capacity: int = 0
    launch_hook: str = "multus-launch"
    terminate_hook: str = "multus-terminate"
    heartbeat_timeout: int = 300
    launch_default_result: Literal["CONTINUE", "ABANDON"] = "ABANDON"
    terminate_default_result: Literal["CONTINUE", "ABANDON"] = "CONTINUE"
    notification_metadata: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({"eks:cluster-name": "demo"}))


@dataclass(frozen=True)
class Scenario:
    vpc_id: str
    azs: tuple[str, ...]
    primary_subnets: Mapping[str, str]  # AZ -> subnet id
    multus_subnets: Mapping[str, tuple[str, str]]  # AZ -> (first, second) subnet ids
    reservations: Mapping[str, tuple[str, ...]]  # subnet id -> reservation ids
    security_group_id: str
    image_id: str
    launch_template_id: str
    group_name: str
    group_arn: str
    launch_hook: str
    terminate_hook: str


def build(aws: LocalAWS, spec: Spec | None = None) -> Scenario:
    spec = spec or Spec()
    if not len(spec.azs) == len(spec.primary_cidrs) == len(spec.multus_cidrs):
        raise ValueError("azs, primary_cidrs and multus_cidrs need one entry per AZ")
    ec2: Any = aws.client("ec2")
    autoscaling: Any = aws.client("autoscaling")
    dual = spec.ip_mode != "ipv4"
    vpc = ec2.create_vpc(CidrBlock=spec.vpc_cidr, AmazonProvidedIpv6CidrBlock=dual)["Vpc"]
    vpc_id = vpc["VpcId"]
    ipv6_blocks = (
        ipaddress.IPv6Network(vpc["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]).subnets(new_prefix=64)
        if dual
        else iter(())
    )

    def subnet(az: str, cidr: str, *, multus: bool) -> str:
        kwargs: dict[str, Any] = {"VpcId": vpc_id, "AvailabilityZone": az}
        if multus and dual:
            kwargs["Ipv6CidrBlock"] = str(next(ipv6_blocks))
        if multus and spec.ip_mode == "ipv6-only":
            kwargs["Ipv6Native"] = True
        else:
            kwargs["CidrBlock"] = cidr
        role = "multus" if multus else "primary"
        kwargs["TagSpecifications"] = [{"ResourceType": "subnet", "Tags": [{"Key": "role", "Value": role}]}]
        return str(ec2.create_subnet(**kwargs)["Subnet"]["SubnetId"])

    primary = {az: subnet(az, cidr, multus=False) for az, cidr in zip(spec.azs, spec.primary_cidrs, strict=True)}
    multus = {
        az: (subnet(az, first, multus=True), subnet(az, second, multus=True))
        for az, (first, second) in zip(spec.azs, spec.multus_cidrs, strict=True)
    }
    reservations = _reserve(ec2, spec, multus)
    security_group_id = ec2.create_security_group(
        GroupName=f"{spec.group_name}-nodes", Description="Multus worker nodes", VpcId=vpc_id
    )["GroupId"]
    image_id = ec2.register_image(Name="eks-node-al2023")["ImageId"]
    launch_template_id = ec2.create_launch_template(
        LaunchTemplateName=f"{spec.group_name}-lt",
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": spec.instance_type,
            "SecurityGroupIds": [security_group_id],
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    hook = {"HeartbeatTimeout": spec.heartbeat_timeout}
    if spec.notification_metadata is not None:
        hook["NotificationMetadata"] = spec.notification_metadata  # type: ignore[assignment]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=spec.group_name,
        LaunchTemplate={"LaunchTemplateId": launch_template_id, "Version": "$Latest"},
        MinSize=spec.min_size,
        MaxSize=spec.max_size,
        DesiredCapacity=spec.desired_capacity,
        VPCZoneIdentifier=",".join(primary[az] for az in spec.azs),
        LifecycleHookSpecificationList=[
            {
                "LifecycleHookName": spec.launch_hook,
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                "DefaultResult": spec.launch_default_result,
                **hook,
            },
            {
                "LifecycleHookName": spec.terminate_hook,
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "DefaultResult": spec.terminate_default_result,
                **hook,
            },
        ],
        Tags=[
            {"Key": key, "Value": value, "PropagateAtLaunch": True, "ResourceId": spec.group_name}
            for key, value in spec.tags.items()
        ],
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[spec.group_name])["AutoScalingGroups"][0]
    return Scenario(
        vpc_id=vpc_id,
        azs=spec.azs,
        primary_subnets=MappingProxyType(primary),
        multus_subnets=MappingProxyType(multus),
        reservations=MappingProxyType(reservations),
        security_group_id=security_group_id,
        image_id=image_id,
        launch_template_id=launch_template_id,
        group_name=spec.group_name,
        group_arn=group["AutoScalingGroupARN"],
        launch_hook=spec.launch_hook,
        terminate_hook=spec.terminate_hook,
    )


def _reserve(ec2: Any, spec: Spec, multus: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    cidrs = dict(
        zip([s for pair in multus.values() for s in pair], [c for pair in spec.multus_cidrs for c in pair], strict=True)
    )
    made: dict[str, list[str]] = {}
    for wanted in spec.explicit_reservations:
        network = ipaddress.ip_network(wanted)
        owner = next(
            (s for s, c in cidrs.items() if network.version == 4 and network.subnet_of(ipaddress.IPv4Network(c))),
            None,
        )
        if owner is None:
            raise ValueError(f"{wanted} is in none of the Multus subnets")
        reservation = ec2.create_subnet_cidr_reservation(SubnetId=owner, Cidr=wanted, ReservationType="explicit")
        made.setdefault(owner, []).append(reservation["SubnetCidrReservation"]["SubnetCidrReservationId"])
    return {subnet: tuple(ids) for subnet, ids in made.items()}
