"""One validated, frozen settings object, parsed once per execution environment from the environment.

Every problem names the variable and the accepted form, so a bad deployment fails at cold start with a
message an operator can act on, before any event is handled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_address, ip_network

from multus_ipam.addressing import IPNetwork
from multus_ipam.errors import ConfigurationError

SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
GROUP_NAME = re.compile(r"^[\w\-.:/ @+=]{1,255}$")

#: Tag that keeps the VPC CNI from adopting the ENI (amazon-vpc-cni-k8s ipamd).
NO_MANAGE_TAG = ("node.k8s.amazonaws.com/no_manage", "true")
#: Our ownership tags. IAM policies scope attach/modify/detach/delete to ENIs carrying OWNER_TAG.
OWNER_TAG = "multus-ipam:owner"
INSTANCE_TAG = "multus-ipam:instance-id"
SUBNET_TAG = "multus-ipam:subnet-id"
#: When the lifecycle event that made the ENI was emitted (ISO 8601, UTC, seconds). The orphan sweep deletes an
#: ENI whose instance DescribeInstances does not show only once this is older than ORPHAN_MIN_AGE_SECONDS.
CREATED_AT_TAG = "multus-ipam:created-at"
RESERVED_TAG_KEYS = frozenset({NO_MANAGE_TAG[0], OWNER_TAG, INSTANCE_TAG, SUBNET_TAG, CREATED_AT_TAG})


class LifecycleResult(StrEnum):
    CONTINUE = "CONTINUE"
    ABANDON = "ABANDON"


@dataclass(frozen=True, slots=True)
class Settings:
    group_name: str
    subnet_ids: tuple[str, ...]
    security_groups: Mapping[str, tuple[str, ...]]
    """Security groups of each subnet's ENIs."""
    extra_tags: Mapping[str, str] = field(default_factory=dict)
    owner: str = "multus-ipam"
    worker_upper_bounds: Mapping[str, IPv4Address] = field(default_factory=dict)
    device_indexes: Mapping[str, int] = field(default_factory=dict)
    """Explicit device indexes; subnets not listed get the default (1, 2, ... in AZ order)."""
    network_card_index: int = 0
    failure_result: LifecycleResult = LifecycleResult.ABANDON
    disable_source_dest_check: bool = False
    pod_reservations: Mapping[str, tuple[IPNetwork, ...]] = field(default_factory=dict)
    """Reservations the CIDR-reservation mode requires in each subnet before it creates anything."""
    aws_max_attempts: int = 10
    max_address_attempts: int = 8
    safety_margin_seconds: int = 30
    detach_timeout_seconds: int = 60
    orphan_min_age_seconds: int = 600
    """How old an ENI of ours must be before the orphan sweep may take its instance's absence from
    DescribeInstances for death (a new instance may not be shown yet)."""
    hook_heartbeat_timeout_seconds: int = 600
    """The launch and terminate hooks' HeartbeatTimeout (HookHeartbeatTimeout): a deferred launch records a
    heartbeat when its next attempt might end after it."""
    retry_delay_seconds: int = 210
    """How long a deferred event takes to come back at most: the intake queue's visibility timeout."""
    max_receive_count: int = 5
    """The intake queue's redrive maxReceiveCount: the receive with this count is the last; it does not defer."""
    lost_event_grace_seconds: int = 120
    """The reconciler queues an event for an instance that has waited on one of our hooks this long with no
    message waiting in the intake queue."""
    hook_names: frozenset[str] = frozenset()
    """The lifecycle hooks this function serves; empty: every hook of the group."""

    def tags_for(self, instance_id: str, subnet_id: str, *, created_at: datetime | None) -> dict[str, str]:
        """Every tag an ENI gets at creation: the user's, the no_manage tag and our ownership tags.

        ``created_at`` must be the same for every attempt of one launch (the lifecycle event's time): the tags
        are part of the CreateNetworkInterface request its deterministic client token stands for. None (an
        event without a time): no created-at tag, since any other value would differ between deliveries and
        make a redelivered create an IdempotentParameterMismatch; the orphan sweep then needs positive evidence.
        """
        tags = {
            **self.extra_tags,
            NO_MANAGE_TAG[0]: NO_MANAGE_TAG[1],
            OWNER_TAG: self.owner,
            INSTANCE_TAG: instance_id,
            SUBNET_TAG: subnet_id,
        }
        if created_at is not None:
            tags[CREATED_AT_TAG] = format_created_at(created_at)
        return tags


def format_created_at(moment: datetime) -> str:
    """ISO 8601 in UTC to the second, e.g. 2026-11-24T10:00:00Z."""
    if moment.tzinfo is None:
        raise ValueError("created-at must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_created_at(value: str | None) -> datetime | None:
    """The UTC time a created-at tag (or the lifecycle event's ``time``, which it is set from) holds; None when
    missing or unreadable (ENIs of older versions, an event without a time)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _required(env: Mapping[str, str], name: str, accepted: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(name, "is required", accepted)
    return value


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _ids(env: Mapping[str, str], name: str, pattern: re.Pattern[str], accepted: str) -> tuple[str, ...]:
    items = _csv(_required(env, name, accepted))
    for item in items:
        if not pattern.match(item):
            raise ConfigurationError(name, f"{item!r} is not a valid id", accepted)
    if len(set(items)) != len(items):
        raise ConfigurationError(name, "lists the same id twice", accepted)
    return tuple(items)


def _pairs(env: Mapping[str, str], name: str, subnets: tuple[str, ...], accepted: str) -> list[tuple[str, str]]:
    pairs = []
    for item in _csv(env.get(name, "")):
        subnet, sep, value = item.partition("=")
        subnet, value = subnet.strip(), value.strip()
        if not sep or not value:
            raise ConfigurationError(name, f"entry {item!r} is not subnet-id=value", accepted)
        if subnet not in subnets:
            raise ConfigurationError(name, f"{subnet!r} is not one of MULTUS_SUBNET_IDS", accepted)
        pairs.append((subnet, value))
    return pairs


def _unique(name: str, pairs: list[tuple[str, str]], accepted: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for subnet, value in pairs:
        if subnet in result:
            raise ConfigurationError(name, f"{subnet} is listed twice", accepted)
        result[subnet] = value
    return result


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    accepted = f"an integer from {low} to {high}"
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(name, f"{raw!r} is not an integer", accepted) from None
    if not low <= value <= high:
        raise ConfigurationError(name, f"{value} is out of range", accepted)
    return value


def _bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise ConfigurationError(name, f"{raw!r} is not a boolean", "true or false")


def _security_groups(env: Mapping[str, str], subnets: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    name = "MULTUS_SECURITY_GROUP_IDS"
    accepted = "one security group id for all subnets, or one per subnet in MULTUS_SUBNET_IDS order"
    items = _csv(_required(env, name, accepted))
    for item in items:
        if not SECURITY_GROUP_ID.match(item):
            raise ConfigurationError(name, f"{item!r} is not a valid id", accepted)
    if len(items) == 1:
        return dict.fromkeys(subnets, (items[0],))
    if len(items) == len(subnets):
        return {subnet: (group,) for subnet, group in zip(subnets, items, strict=True)}
    raise ConfigurationError(name, f"has {len(items)} ids for {len(subnets)} subnets", accepted)


def _tags(env: Mapping[str, str]) -> dict[str, str]:
    name = "ENI_TAGS"
    accepted = 'a JSON object of string tags, e.g. {"team": "ims"}'
    raw = env.get(name, "").strip()
    if not raw:
        return {}
    try:
        tags = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigurationError(name, f"is not valid JSON ({error.msg})", accepted) from None
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise ConfigurationError(name, "must map tag keys to string values", accepted)
    for key, value in tags.items():
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise ConfigurationError(name, f"tag {key!r} exceeds EC2's limits (key 128, value 256)", accepted)
        if key.lower().startswith("aws:"):
            raise ConfigurationError(name, f"tag {key!r} uses the reserved aws: prefix", accepted)
        if key in RESERVED_TAG_KEYS:
            raise ConfigurationError(name, f"tag {key!r} is set by this function and cannot be overridden", accepted)
    if len(tags) + len(RESERVED_TAG_KEYS) > 50:
        ours = len(RESERVED_TAG_KEYS)
        raise ConfigurationError(name, f"too many tags: EC2 allows 50 per resource, {ours} are ours", accepted)
    return dict(tags)


def _bounds(env: Mapping[str, str], subnets: tuple[str, ...]) -> dict[str, IPv4Address]:
    name = "WORKER_IP_UPPER_BOUNDS"
    accepted = "comma-separated subnet-id=IPv4 address, e.g. subnet-0abc...=10.0.4.63"
    bounds = {}
    for subnet, value in _unique(name, _pairs(env, name, subnets, accepted), accepted).items():
        try:
            address = ip_address(value)
        except ValueError:
            raise ConfigurationError(name, f"{value!r} is not an IP address", accepted) from None
        if not isinstance(address, IPv4Address):
            raise ConfigurationError(name, f"{value} is not an IPv4 address", accepted)
        bounds[subnet] = address
    return bounds


def _device_indexes(env: Mapping[str, str], subnets: tuple[str, ...]) -> dict[str, int]:
    name = "DEVICE_INDEXES"
    accepted = "comma-separated subnet-id=index with index 1 or more, e.g. subnet-0abc...=1"
    indexes = {}
    for subnet, value in _unique(name, _pairs(env, name, subnets, accepted), accepted).items():
        if not value.isdigit() or int(value) < 1:
            raise ConfigurationError(name, f"{value!r} is not a device index of 1 or more", accepted)
        indexes[subnet] = int(value)
    return indexes


def _reservations(env: Mapping[str, str], subnets: tuple[str, ...]) -> dict[str, tuple[IPNetwork, ...]]:
    name = "POD_CIDR_RESERVATIONS"
    accepted = "comma-separated subnet-id=CIDR (a subnet may appear more than once)"
    result: dict[str, list[IPNetwork]] = {}
    for subnet, value in _pairs(env, name, subnets, accepted):
        try:
            network = ip_network(value)
        except ValueError:
            raise ConfigurationError(name, f"{value!r} is not a CIDR block", accepted) from None
        assert isinstance(network, IPv4Network | IPv6Network)
        result.setdefault(subnet, []).append(network)
    return {subnet: tuple(networks) for subnet, networks in result.items()}


def load_settings(env: Mapping[str, str]) -> Settings:
    """Parse and validate the function's configuration. Raises :class:`ConfigurationError`."""
    group = _required(env, "AUTOSCALING_GROUP_NAME", "the name of the Auto Scaling group this function serves")
    if not GROUP_NAME.match(group):
        raise ConfigurationError("AUTOSCALING_GROUP_NAME", f"{group!r} is not a valid group name")
    subnets = _ids(env, "MULTUS_SUBNET_IDS", SUBNET_ID, "comma-separated subnet ids, in attachment order")
    failure = env.get("FAILURE_RESULT", "").strip().upper() or LifecycleResult.ABANDON.value
    if failure not in LifecycleResult.__members__:
        raise ConfigurationError("FAILURE_RESULT", f"{failure!r} is not a lifecycle result", "ABANDON or CONTINUE")
    owner = env.get("OWNER_ID", "").strip() or "multus-ipam"
    if not 1 <= len(owner) <= 256:
        raise ConfigurationError("OWNER_ID", "must be 1 to 256 characters (it becomes a tag value)")
    hooks = frozenset(_csv(env.get("LIFECYCLE_HOOK_NAMES", "")))
    if not hooks:
        # Required: a group can hold other tools' hooks (EKS's Launch-LC-Hook and Terminate-LC-Hook on every
        # managed node group, a drain hook), and completing one of theirs would cut their work short.
        raise ConfigurationError(
            "LIFECYCLE_HOOK_NAMES", "required: the names of the hooks this function completes", "hook-a,hook-b"
        )
    for hook in hooks:
        if not GROUP_NAME.match(hook):
            raise ConfigurationError("LIFECYCLE_HOOK_NAMES", f"{hook!r} is not a valid hook name")
    return Settings(
        hook_names=hooks,
        group_name=group,
        subnet_ids=subnets,
        security_groups=_security_groups(env, subnets),
        extra_tags=_tags(env),
        owner=owner,
        worker_upper_bounds=_bounds(env, subnets),
        device_indexes=_device_indexes(env, subnets),
        network_card_index=_int(env, "NETWORK_CARD_INDEX", 0, 0, 15),
        failure_result=LifecycleResult(failure),
        disable_source_dest_check=_bool(env, "DISABLE_SOURCE_DEST_CHECK", default=False),
        pod_reservations=_reservations(env, subnets),
        aws_max_attempts=_int(env, "AWS_MAX_ATTEMPTS", 10, 1, 30),
        max_address_attempts=_int(env, "MAX_ADDRESS_ATTEMPTS", 8, 1, 100),
        safety_margin_seconds=_int(env, "SAFETY_MARGIN_SECONDS", 30, 5, 600),
        detach_timeout_seconds=_int(env, "DETACH_TIMEOUT_SECONDS", 60, 5, 600),
        orphan_min_age_seconds=_int(env, "ORPHAN_MIN_AGE_SECONDS", 600, 60, 86_400),
        hook_heartbeat_timeout_seconds=_int(env, "HOOK_HEARTBEAT_TIMEOUT_SECONDS", 600, 30, 7200),
        retry_delay_seconds=_int(env, "RETRY_DELAY_SECONDS", 210, 0, 43_200),
        max_receive_count=_int(env, "MAX_RECEIVE_COUNT", 5, 1, 1000),
        lost_event_grace_seconds=_int(env, "LOST_EVENT_GRACE_SECONDS", 120, 30, 3600),
    )
