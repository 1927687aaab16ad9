"""What the lifecycle engine needs from AWS, as small typed interfaces, and the values they exchange.

Adapters over boto3 live in :mod:`multus_ipam.aws`; tests may also use the local AWS behind the same
adapters. Every method either returns what it says or raises one of :mod:`multus_ipam.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Protocol

from multus_ipam.addressing import IPNetwork
from multus_ipam.settings import LifecycleResult


@dataclass(frozen=True, slots=True)
class AttachedInterface:
    """An ENI attached to an instance, as DescribeInstances shows it (the device indexes taken on each card)."""

    eni_id: str
    device_index: int
    network_card_index: int


@dataclass(frozen=True, slots=True)
class Instance:
    instance_id: str
    availability_zone: str
    state: str
    """EC2 state name: pending, running, shutting-down, terminated, stopping, stopped."""
    interfaces: tuple[AttachedInterface, ...] = ()
    """Every ENI attached to it when it was described (the primary one included)."""

    @property
    def is_gone(self) -> bool:
        return self.state in ("shutting-down", "terminated")


@dataclass(frozen=True, slots=True)
class Subnet:
    subnet_id: str
    availability_zone: str
    vpc_id: str
    ipv4_cidr: IPv4Network | None
    ipv6_cidr: IPv6Network | None
    """The subnet's associated IPv6 block, if dual-stack or IPv6-only."""


@dataclass(frozen=True, slots=True)
class Attachment:
    attachment_id: str
    instance_id: str
    device_index: int
    network_card_index: int
    delete_on_termination: bool
    status: str


@dataclass(frozen=True, slots=True)
class Eni:
    eni_id: str
    subnet_id: str
    status: str
    """available, in-use, attaching, detaching, ..."""
    private_ipv4s: tuple[IPv4Address, ...] = ()
    ipv6s: tuple[IPv6Address, ...] = ()
    ipv4_prefixes: tuple[IPv4Network, ...] = ()
    ipv6_prefixes: tuple[IPv6Network, ...] = ()
    attachment: Attachment | None = None
    source_dest_check: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def primary_ipv4(self) -> IPv4Address | None:
        return self.private_ipv4s[0] if self.private_ipv4s else None


@dataclass(frozen=True, slots=True)
class Reservation:
    reservation_id: str
    cidr: IPNetwork
    kind: str
    """explicit or prefix"""


@dataclass(frozen=True, slots=True)
class CreateEni:
    """Everything CreateNetworkInterface gets; ``client_token`` makes a retried create return the same ENI."""

    subnet_id: str
    security_groups: tuple[str, ...]
    tags: Mapping[str, str]
    client_token: str
    description: str
    ipv4: IPv4Address | None = None
    """None: EC2 assigns one (outside explicit reservations)."""
    ipv6: IPv6Address | None = None
    ipv6_count: int = 0
    """With ``ipv6`` None and this 1, EC2 assigns an IPv6 address."""


class Ec2(Protocol):
    def describe_instance(self, instance_id: str) -> Instance | None:
        """None when EC2 does not show the instance: gone, or launched so recently that EC2 does not show it
        yet (eventual consistency). The caller decides which, with patience."""
        ...

    def describe_subnets(self, subnet_ids: Sequence[str]) -> list[Subnet]:
        """Raises SubnetMisconfigured naming the missing subnet."""
        ...

    def subnet_enis(self, subnet_ids: Sequence[str]) -> list[Eni]:
        """Every ENI in the subnets (one request for all of them, all pages)."""
        ...

    def subnet_reservations(self, subnet_id: str) -> list[Reservation]:
        """Every CIDR reservation of the subnet (IPv4 and IPv6, explicit and prefix), all pages."""
        ...

    def owned_enis(self, owner: str, instance_id: str) -> list[Eni]:
        """Our ENIs (by ownership tags) intended for or attached to the instance, all pages."""
        ...

    def describe_eni(self, eni_id: str) -> Eni | None: ...

    def detached_enis(self, owner: str) -> list[Eni]:
        """Our ENIs (by owner tag) that are not attached to anything (status available), all pages."""
        ...

    def instance_states(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """The EC2 state of each of the instances that DescribeInstances shows (any number of ids: the adapter
        splits them within AWS's limits). An id missing from the result is not shown: gone long ago, or too
        new to be shown yet."""
        ...

    def create_eni(self, request: CreateEni) -> Eni:
        """Raises IpAddressInUse, InsufficientAddresses, AwsCallFailed."""
        ...

    def attach_eni(self, eni_id: str, instance_id: str, device_index: int, network_card_index: int) -> str:
        """Returns the attachment id. Raises DeviceIndexTaken, NotYetVisible (the ENI or the instance is not
        known yet), AwsCallFailed."""
        ...

    def set_delete_on_termination(self, eni_id: str, attachment_id: str) -> None:
        """Raises NotYetVisible (the attachment or the ENI is not known yet), AwsCallFailed."""
        ...

    def set_source_dest_check(self, eni_id: str, *, enabled: bool) -> None:
        """Raises NotYetVisible (the ENI is not known yet), AwsCallFailed."""
        ...

    def detach_eni(self, attachment_id: str) -> None:
        """Tolerates an attachment that is already gone."""
        ...

    def delete_eni(self, eni_id: str) -> None:
        """Tolerates NotFound (deleting twice is normal)."""
        ...


@dataclass(frozen=True, slots=True)
class GroupInstance:
    instance_id: str
    availability_zone: str
    lifecycle_state: str
    """Auto Scaling's LifecycleState: Pending:Wait, InService, Terminating:Wait, Warmed:Pending:Wait, ..."""


@dataclass(frozen=True, slots=True)
class Membership:
    """Where Auto Scaling says an instance is: its group, its AZ and its lifecycle state in that group
    (DescribeAutoScalingInstances; warm pool instances included)."""

    instance_id: str
    group: str
    availability_zone: str
    lifecycle_state: str


@dataclass(frozen=True, slots=True)
class LifecycleHook:
    name: str
    transition: str
    """autoscaling:EC2_INSTANCE_LAUNCHING or autoscaling:EC2_INSTANCE_TERMINATING"""
    heartbeat_timeout_seconds: int


class AutoScaling(Protocol):
    def complete_lifecycle_action(
        self, *, group: str, hook: str, token: str | None, instance_id: str, result: LifecycleResult
    ) -> None:
        """Raises LifecycleActionGone when no such action is active any more. ``token`` None: by instance id."""
        ...

    def membership(self, instance_id: str) -> Membership | None:
        """The instance's group, AZ and lifecycle state; None if it is in no group (or does not exist)."""
        ...

    def waiting_instances(self, group: str) -> list[GroupInstance]:
        """Instances of the group (and its warm pool) whose launch is waiting on a lifecycle hook, in every AZ:
        one read of the group (a warm pool adds its own pages)."""
        ...

    def group_instances(self, group: str) -> list[GroupInstance]:
        """Every instance of the group and of its warm pool, with its lifecycle state: the same read."""
        ...

    def record_heartbeat(self, *, group: str, hook: str, token: str | None, instance_id: str) -> None:
        """Restart the hook's heartbeat timeout. Raises LifecycleActionGone when no such action is active."""
        ...


class GroupReader(Protocol):
    """What the reconciler reads of the group."""

    def group_instances(self, group: str) -> list[GroupInstance]:
        """Every instance of the group and of its warm pool, with its lifecycle state."""
        ...

    def lifecycle_hooks(self, group: str) -> list[LifecycleHook]: ...

    def record_heartbeat(self, *, group: str, hook: str, token: str | None, instance_id: str) -> None:
        """Restart the hook's heartbeat timeout. Raises LifecycleActionGone when no such action is active."""
        ...


@dataclass(frozen=True, slots=True)
class Backlog:
    """What the intake queue holds (approximate, as SQS counts)."""

    visible: int
    """Waiting for a receive."""
    in_flight: int
    """Received and not deleted: being handled, or failed and back when the visibility timeout ends."""
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


class Intake(Protocol):
    """The queue lifecycle events wait in for the function (the reconciler puts lost ones back in)."""

    def backlog(self) -> Backlog: ...

    def send(self, events: Sequence[Mapping[str, object]]) -> None:
        """Queue the events (as EventBridge would). Raises AwsCallFailed naming what could not be sent."""
        ...


class Clock(Protocol):
    def sleep(self, seconds: float) -> None: ...

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class CallDeadline(Protocol):
    """Bounds the time the AWS SDK may spend retrying the calling thread's AWS calls (throttling, 5xx).

    The engine binds a deadline for each phase of an invocation (launch, rollback, completion); the adapters'
    clients stop retrying a call when another retry could not end before it, and the call fails as AWS
    answered it. Per thread: concurrent invocations in one execution environment each have their own.
    """

    def within(self, until: datetime | None) -> AbstractContextManager[None]:
        """Bind ``until`` (None: no bound) for the calling thread while the context lasts."""
        ...
