"""A small Multus node group on the local AWS, and the handler wired to it, for handler tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network, IPv6Network
from itertools import islice
from typing import TYPE_CHECKING, Any

from localaws import LocalAWS
from multus_ipam.aws.clients import Clients, retry_config
from multus_ipam.runtime import Mode, Runtime, build_runtime, handle_event
from multus_ipam.settings import OWNER_TAG

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import NetworkInterfaceTypeDef

    from localaws.clock import Clock as LocalAwsClock

GROUP = "multus-workers"
LAUNCH_HOOK = "multus-launch"
TERMINATE_HOOK = "multus-terminate"
AZ = "us-east-1a"
OTHER_AZ = "us-east-1b"


@dataclass
class FakeClock:
    """The engine's clock in tests: waits (detach polling, completion backoff, patience for EC2) are recorded,
    never slept in wall time, and move ``now`` on.

    ``follow``: the local AWS clock (``aws.clock``) to read and wait on instead of a clock of its own, so the
    engine's waits pass on the local AWS as well (what becomes visible, attached or detached meanwhile) and
    the local AWS's waits (latency, botocore's backoff) count against the engine's deadlines.
    """

    slept: list[float] = field(default_factory=list)
    start: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    follow: LocalAwsClock | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _elapsed: float = 0.0

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self._elapsed += max(seconds, 0.0)
        if self.follow is not None:  # outside the lock: a simulated wait may hand the baton to another task
            self.follow.sleep(seconds)

    def now(self) -> datetime:
        if self.follow is not None:
            return self.follow.now()
        with self._lock:
            return self.start + timedelta(seconds=self._elapsed)


@dataclass
class FakeContext:
    """The part of the Lambda context the handler uses; time is plentiful unless a test says otherwise.

    With ``clock``, the remaining time shrinks as that clock moves on (from when the context is made)."""

    remaining_ms: int = 120_000
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    clock: FakeClock | None = None
    _started: datetime | None = None

    def __post_init__(self) -> None:
        if self.clock is not None and self._started is None:
            self._started = self.clock.now()

    def get_remaining_time_in_millis(self) -> int:
        if self.clock is None or self._started is None:
            return self.remaining_ms
        elapsed_ms = (self.clock.now() - self._started).total_seconds() * 1000
        return max(int(self.remaining_ms - elapsed_ms), 0)


@dataclass(frozen=True)
class World:
    aws: LocalAWS
    ec2: EC2Client
    autoscaling: AutoScalingClient
    vpc_id: str
    security_group: str
    multus_subnets: tuple[str, ...]
    """Two Multus subnets in AZ, then one in OTHER_AZ."""
    cidrs: dict[str, str]
    mode: Mode = Mode.STATIC
    """The function the world's events go to unless a test says otherwise."""

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "AUTOSCALING_GROUP_NAME": GROUP,
            "MULTUS_SUBNET_IDS": ",".join(self.multus_subnets),
            "MULTUS_SECURITY_GROUP_IDS": self.security_group,
            "OWNER_ID": "test-stack",
            "LIFECYCLE_HOOK_NAMES": f"{LAUNCH_HOOK},{TERMINATE_HOOK}",
        }
        env.update(overrides)
        return env

    def runtime(
        self, mode: Mode | None = None, clock: FakeClock | None = None, page_size: int = 5, **env: str
    ) -> Runtime:
        """The handler's runtime on this world. Pages of 5 make every listing really page (AWS allows 5-1000)."""
        clients = Clients(
            ec2=self.aws.client("ec2", config=retry_config(10)),
            autoscaling=self.aws.client("autoscaling", config=retry_config(10)),
        )
        return build_runtime(
            mode or self.mode,
            self.env(**env),
            clients=clients,
            clock=clock or FakeClock(follow=self.aws.clock),
            page_size=page_size,
        )

    def deliver_concurrently(
        self, events: list[dict[str, Any]], runtimes: list[Runtime] | None = None
    ) -> list[dict[str, Any]]:
        """Deliver the events at once, as EventBridge does: each to its own execution environment (its own
        runtime, unless ``runtimes`` says otherwise), as concurrent callers on the local AWS clock
        (``aws.run_concurrently``: the interleaving follows the seed). Re-raises a delivery's exception."""
        runtimes = runtimes or [self.runtime() for _ in events]
        outcomes = self.aws.run_concurrently(
            [lambda r=r, e=e: deliver(r, e) for r, e in zip(runtimes, events, strict=True)]  # type: ignore[misc]
        )
        return [outcome.get() for outcome in outcomes]

    def scale_out(self, count: int) -> list[dict[str, Any]]:
        """Raise desired capacity by ``count``; returns the launch events of the new instances."""
        before = {a.token for a in self.aws.lifecycle.active()}
        group = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
        self.autoscaling.set_desired_capacity(
            AutoScalingGroupName=GROUP, DesiredCapacity=group["DesiredCapacity"] + count
        )
        return [self.aws.lifecycle.event(a) for a in self.aws.lifecycle.active() if a.token not in before]

    def scale_in_instance(self, instance_id: str) -> dict[str, Any]:
        before = {a.token for a in self.aws.lifecycle.active()}
        self.autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=instance_id, ShouldDecrementDesiredCapacity=True
        )
        (action,) = [a for a in self.aws.lifecycle.active() if a.token not in before]
        return self.aws.lifecycle.event(action)

    def our_enis(self) -> list[NetworkInterfaceTypeDef]:
        paginator = self.ec2.get_paginator("describe_network_interfaces")
        pages = paginator.paginate(Filters=[{"Name": "tag-key", "Values": [OWNER_TAG]}])
        return [eni for page in pages for eni in page["NetworkInterfaces"]]

    def enis_of(self, instance_id: str) -> list[NetworkInterfaceTypeDef]:
        response = self.ec2.describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
        )
        return sorted(response["NetworkInterfaces"], key=lambda e: e.get("Attachment", {}).get("DeviceIndex", 0))

    def drop_delete_on_termination(self, eni: NetworkInterfaceTypeDef) -> None:
        """As an operator or an older version might have: the ENI would then outlive its instance."""
        self.ec2.modify_network_interface_attribute(
            NetworkInterfaceId=eni["NetworkInterfaceId"],
            Attachment={"AttachmentId": eni["Attachment"]["AttachmentId"], "DeleteOnTermination": False},
        )

    def reserve_ipv6_pod_half(self, subnet_id: str) -> IPv6Network:
        """Reserve (explicit) the lower half of the subnet's IPv6 /64 for pods; returns it."""
        described = self.ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]
        block = IPv6Network(described["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"])
        pods = next(block.subnets(new_prefix=65))
        self.ec2.create_subnet_cidr_reservation(SubnetId=subnet_id, Cidr=str(pods), ReservationType="explicit")
        return pods

    def lifecycle_state(self, instance_id: str) -> str | None:
        found = self.autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
        return found[0]["LifecycleState"] if found else None


def deliver(runtime: Runtime, event: dict[str, Any], context: FakeContext | None = None) -> dict[str, Any]:
    """Hand the event to the handler as Lambda would; by default with the function's time counted on the local
    AWS clock (from now)."""
    if context is None:
        active = LocalAWS.active()
        context = FakeContext(clock=FakeClock(follow=active.clock) if active is not None else None)
    return handle_event(runtime, event, context)


def build_world(
    aws: LocalAWS,
    *,
    dual_stack: bool = False,
    ipv6_only: bool = False,
    reservations: dict[int, list[str]] | None = None,
    multus_prefix: int = 24,
    node_prefix: int = 24,
    max_size: int = 200,
    heartbeat_timeout: int = 300,
    warm_pool: bool = False,
    mode: Mode = Mode.STATIC,
) -> World:
    """VPC 10.0.0.0/16: the node subnet 10.0.0.0/24 in AZ; Multus subnets 10.0.4.0 and 10.0.5.0 in AZ and
    10.0.6.0 in OTHER_AZ (configured, never used by this group). ``reservations`` maps a Multus subnet's
    position to explicit CIDR reservations. ``ipv6_only`` makes the Multus subnets IPv6-only (no IPv4 block).

    Larger subnets for bursts (``_layout``): a node subnet larger than /22 or Multus subnets larger than /24 no
    longer fit that layout; they take the first aligned blocks from 10.0.8.0 on, Multus subnets first (/22:
    10.0.8.0, 10.0.12.0, 10.0.16.0; then a /20 node subnet at 10.0.32.0). ``max_size``: the group's MaxSize;
    ``heartbeat_timeout``: both hooks' HeartbeatTimeout."""
    dual_stack = dual_stack or ipv6_only
    ec2: EC2Client = aws.client("ec2")
    autoscaling: AutoScalingClient = aws.client("autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=dual_stack)["Vpc"]
    vpc_id = vpc["VpcId"]
    ipv6_block = ""
    if dual_stack:
        described = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
        ipv6_block = described["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
    node_cidr, multus_cidrs = _layout(node_prefix=node_prefix, multus_prefix=multus_prefix)
    node_a = ec2.create_subnet(VpcId=vpc_id, CidrBlock=str(node_cidr), AvailabilityZone=AZ)["Subnet"]["SubnetId"]
    multus: list[str] = []
    cidrs: dict[str, str] = {}
    for position, (network, az) in enumerate(zip(multus_cidrs, (AZ, AZ, OTHER_AZ), strict=True)):
        cidr = str(network)
        third = network.network_address.packed[2]
        kwargs: dict[str, Any] = {"VpcId": vpc_id, "CidrBlock": cidr, "AvailabilityZone": az}
        if dual_stack:
            kwargs["Ipv6CidrBlock"] = str(next(islice(IPv6Network(ipv6_block).subnets(new_prefix=64), third, None)))
        if ipv6_only:
            del kwargs["CidrBlock"]
            kwargs["Ipv6Native"] = True
        subnet_id = ec2.create_subnet(**kwargs)["Subnet"]["SubnetId"]
        multus.append(subnet_id)
        cidrs[subnet_id] = cidr
        for reserved in (reservations or {}).get(position, []):
            ec2.create_subnet_cidr_reservation(SubnetId=subnet_id, Cidr=reserved, ReservationType="explicit")
    sg = ec2.create_security_group(GroupName="multus", Description="Multus ENIs", VpcId=vpc_id)["GroupId"]
    ec2.create_launch_template(
        LaunchTemplateName="multus-workers",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.xlarge"},
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=GROUP,
        LaunchTemplate={"LaunchTemplateName": "multus-workers", "Version": "$Latest"},
        MinSize=0,
        MaxSize=max_size,
        DesiredCapacity=0,
        VPCZoneIdentifier=node_a,  # every worker in AZ: two Multus subnets each
        LifecycleHookSpecificationList=[
            {
                "LifecycleHookName": LAUNCH_HOOK,
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                "HeartbeatTimeout": heartbeat_timeout,
                "DefaultResult": "ABANDON",
            },
            {
                "LifecycleHookName": TERMINATE_HOOK,
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "HeartbeatTimeout": heartbeat_timeout,
                "DefaultResult": "CONTINUE",
            },
        ],
    )
    if warm_pool:
        # One prepared instance: it launches into the pool right away (an EC2 -> WarmPool launch action).
        autoscaling.put_warm_pool(
            AutoScalingGroupName=GROUP, MinSize=1, MaxGroupPreparedCapacity=1, PoolState="Stopped"
        )
    return World(
        aws=aws,
        ec2=ec2,
        autoscaling=autoscaling,
        vpc_id=vpc_id,
        security_group=sg,
        multus_subnets=tuple(multus),
        cidrs=cidrs,
        mode=mode,
    )


#: Where the layout of the handler tests ends; larger subnets are placed from here on.
_LARGE_FROM = IPv4Network("10.0.8.0/21")


def _layout(*, node_prefix: int, multus_prefix: int) -> tuple[IPv4Network, list[IPv4Network]]:
    """The node subnet and the three Multus subnets in 10.0.0.0/16, without overlaps.

    The layout the handler tests rely on, where it fits: the node subnet at 10.0.0.0 (up to /22, below
    10.0.4.0), the Multus subnets at 10.0.4.0, 10.0.5.0 and 10.0.6.0 (up to /24). What does not fit takes the
    first free aligned block from 10.0.8.0 on: the Multus subnets in order, then the node subnet."""
    vpc = IPv4Network("10.0.0.0/16")
    node = IPv4Network(f"10.0.0.0/{node_prefix}") if node_prefix >= 22 else None
    small = multus_prefix >= 24
    multus = [IPv4Network(f"10.0.{third}.0/{multus_prefix}") for third in (4, 5, 6)] if small else []
    placed = [n for n in (node, *multus) if n is not None]

    def first_free(prefix: int) -> IPv4Network:
        for candidate in vpc.subnets(new_prefix=prefix):
            if candidate.network_address >= _LARGE_FROM.network_address and not any(
                candidate.overlaps(other) for other in placed
            ):
                placed.append(candidate)
                return candidate
        raise ValueError(f"no room in {vpc} for a /{prefix} next to {', '.join(map(str, placed))}")

    if not multus:
        multus = [first_free(multus_prefix) for _ in range(3)]
    if node is None:
        node = first_free(node_prefix)
    return node, multus
