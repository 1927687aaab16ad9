"""Auto Scaling adapter: completing lifecycle actions and reading lifecycle states."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from multus_ipam.aws._errors import aws_call, error_code, error_message
from multus_ipam.errors import LifecycleActionGone
from multus_ipam.ports import GroupInstance, LifecycleHook, Membership
from multus_ipam.settings import LifecycleResult
from multus_ipam.verification import LAUNCH_WAITING_STATES

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_autoscaling.type_defs import InstanceTypeDef

NO_ACTIVE_ACTION = "No active Lifecycle Action found"
#: DescribeWarmPool's MaxRecords is at most 50 (Auto Scaling API reference; botocore states it only in the
#: parameter's documentation, AWS answers ValidationError beyond).
WARM_POOL_PAGE_SIZE = 50


class AutoScalingAdapter:
    """Implements :class:`multus_ipam.ports.AutoScaling` over a boto3 Auto Scaling client."""

    IAM_ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {
            "autoscaling:CompleteLifecycleAction",
            "autoscaling:RecordLifecycleActionHeartbeat",
            "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:DescribeWarmPool",
            "autoscaling:DescribeLifecycleHooks",
        }
    )

    def __init__(self, client: AutoScalingClient) -> None:
        self._client = client

    def complete_lifecycle_action(
        self, *, group: str, hook: str, token: str | None, instance_id: str, result: LifecycleResult
    ) -> None:
        kwargs: dict[str, Any] = {"LifecycleActionToken": token} if token else {}
        with aws_call("CompleteLifecycleAction"):
            try:
                self._client.complete_lifecycle_action(
                    LifecycleHookName=hook,
                    AutoScalingGroupName=group,
                    LifecycleActionResult=result.value,
                    InstanceId=instance_id,
                    **kwargs,
                )
            except ClientError as error:
                # The code is the generic ValidationError: the message is what says the action is gone.
                if error_code(error) == "ValidationError" and NO_ACTIVE_ACTION in error_message(error):
                    raise LifecycleActionGone(error_message(error)) from error
                raise

    def membership(self, instance_id: str) -> Membership | None:
        with aws_call("DescribeAutoScalingInstances"):
            response = self._client.describe_auto_scaling_instances(InstanceIds=[instance_id])
        for item in response.get("AutoScalingInstances", []):
            if item.get("InstanceId") == instance_id:
                return Membership(
                    instance_id=instance_id,
                    group=str(item["AutoScalingGroupName"]),
                    availability_zone=str(item.get("AvailabilityZone", "")),
                    lifecycle_state=str(item["LifecycleState"]),
                )
        return None

    def waiting_instances(self, group: str) -> list[GroupInstance]:
        """The group's instances (its warm pool's too) whose launch waits on a hook."""
        return [i for i in self.group_instances(group) if i.lifecycle_state in LAUNCH_WAITING_STATES]

    def group_instances(self, group: str) -> list[GroupInstance]:
        """The group's instances and its warm pool's (DescribeAutoScalingGroups does not list those): a burst
        that fills a warm pool must rank its launches as much as one that scales the group out. The warm pool
        is read only when the group has one (DescribeAutoScalingGroups then shows its WarmPoolConfiguration)."""
        with aws_call("DescribeAutoScalingGroups"):
            response = self._client.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
        groups = response.get("AutoScalingGroups", [])
        items = [item for found in groups for item in found.get("Instances", [])]
        if any(found.get("WarmPoolConfiguration") for found in groups):
            items.extend(self._warm_pool_instances(group))
        return [
            GroupInstance(str(item["InstanceId"]), str(item.get("AvailabilityZone", "")), str(item["LifecycleState"]))
            for item in items
        ]

    def lifecycle_hooks(self, group: str) -> list[LifecycleHook]:
        with aws_call("DescribeLifecycleHooks"):
            response = self._client.describe_lifecycle_hooks(AutoScalingGroupName=group)
        return [
            LifecycleHook(
                name=str(item["LifecycleHookName"]),
                transition=str(item.get("LifecycleTransition", "")),
                heartbeat_timeout_seconds=int(item.get("HeartbeatTimeout", 3600)),
            )
            for item in response.get("LifecycleHooks", [])
        ]

    def record_heartbeat(self, *, group: str, hook: str, token: str | None, instance_id: str) -> None:
        kwargs: dict[str, Any] = {"LifecycleActionToken": token} if token else {}
        with aws_call("RecordLifecycleActionHeartbeat"):
            try:
                self._client.record_lifecycle_action_heartbeat(
                    LifecycleHookName=hook, AutoScalingGroupName=group, InstanceId=instance_id, **kwargs
                )
            except ClientError as error:
                if error_code(error) == "ValidationError" and NO_ACTIVE_ACTION in error_message(error):
                    raise LifecycleActionGone(error_message(error)) from error
                raise

    def _warm_pool_instances(self, group: str) -> list[InstanceTypeDef]:
        instances: list[InstanceTypeDef] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"AutoScalingGroupName": group, "MaxRecords": WARM_POOL_PAGE_SIZE}
            if token:
                kwargs["NextToken"] = token
            with aws_call("DescribeWarmPool"):
                pool = self._client.describe_warm_pool(**kwargs)
            instances.extend(pool.get("Instances", []))
            token = pool.get("NextToken")
            if not token:
                return instances
