"""An EKS managed node group, as far as it shows in Auto Scaling: the group EKS owns, EKS's own lifecycle hooks,
and what EKS does with them and with the group on a version update.

What is modelled, and where it comes from:

* **The group.** EKS creates the Auto Scaling group (``eks-<nodegroup>-<uuid>``) and a launch template, and
  tags the group ``eks:cluster-name`` and ``eks:nodegroup-name`` (plus the cluster-autoscaler tags). Users may
  add hooks to it (our stack does, with ``CreateNodeGroup=false``) but must not change what EKS manages: its
  launch template, sizes and tags belong to the node group (DOMAIN.md section 2: a managed node group cannot
  declare hooks at creation; EKS user guide, "Managed node groups").
* **EKS's hooks.** The group carries ``Launch-LC-Hook`` (``EC2_INSTANCE_LAUNCHING``) and ``Terminate-LC-Hook``
  (``EC2_INSTANCE_TERMINATING``), each with a heartbeat timeout of 1800 s and ``DefaultResult`` CONTINUE (as
  described groups of managed node groups show them; a node waits up to 30 minutes in ``Terminating:Wait``
  while EKS drains it). EKS completes them itself: :meth:`ManagedNodeGroup.eks_completes` does, for the
  instances a test says EKS is done with, through the lifecycle model directly, so the call log
  (``aws.calls``) holds only what *other* callers did: any ``CompleteLifecycleAction`` or
  ``RecordLifecycleActionHeartbeat`` there that names an EKS hook is someone completing EKS's work for it.
* **A version update** (EKS user guide, "Managed node update behavior"): a new launch template version, the
  group set to it, maximum and desired size raised by the larger of twice the number of AZs and
  ``maxUnavailable`` (1 by default), then each node of the earlier version drained and terminated through the
  group, then the sizes put back. :meth:`begin_update`, :meth:`replace_next` and :meth:`end_update` are those
  steps, one at a time, so a test can run our functions and EKS's drains between them.

Not modelled: the Kubernetes side (labels, taints, cordon, eviction, PodDisruptionBudgets), EKS's own health
checks, a custom launch template's version rules, the update's failure on a drain that times out.
"""

# ruff: noqa: ANN401 - boto3 clients are untyped here, as in localaws.scenario.

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from localaws.lifecycle import CONTINUE

if TYPE_CHECKING:
    from localaws import LocalAWS

EKS_LAUNCH_HOOK = "Launch-LC-Hook"
EKS_TERMINATE_HOOK = "Terminate-LC-Hook"
EKS_HOOKS = frozenset({EKS_LAUNCH_HOOK, EKS_TERMINATE_HOOK})
EKS_HOOK_TIMEOUT_SECONDS = 1800


@dataclass
class Update:
    """A version update in progress: the nodes of the earlier version still to replace, and the sizes to restore."""

    old: list[str]
    desired: int
    max_size: int
    surge: int


@dataclass
class ManagedNodeGroup:
    aws: LocalAWS
    cluster: str
    nodegroup: str
    group_name: str
    launch_template_id: str
    subnet_ids: tuple[str, ...]
    max_unavailable: int = 1
    update: Update | None = field(default=None)

    @classmethod
    def create(
        cls,
        aws: LocalAWS,
        *,
        cluster: str,
        nodegroup: str,
        subnet_ids: tuple[str, ...],
        size: int,
        image_id: str = "ami-12c6146b",
        instance_type: str = "m5.xlarge",
    ) -> ManagedNodeGroup:
        """The group as ``aws eks create-nodegroup`` leaves it: EKS's launch template and hooks, ``size`` nodes
        launching (each waits on ``Launch-LC-Hook`` until :meth:`eks_completes`)."""
        ec2: Any = aws.client("ec2")
        autoscaling: Any = aws.client("autoscaling")
        suffix = str(uuid.uuid5(uuid.NAMESPACE_URL, f"eks:{cluster}/{nodegroup}"))  # deterministic, uuid-shaped
        group_name = f"eks-{nodegroup}-{suffix}"
        template_id = ec2.create_launch_template(
            LaunchTemplateName=f"eks-{suffix}",
            LaunchTemplateData={"ImageId": image_id, "InstanceType": instance_type},
        )["LaunchTemplate"]["LaunchTemplateId"]
        tags = {
            "eks:cluster-name": cluster,
            "eks:nodegroup-name": nodegroup,
            "k8s.io/cluster-autoscaler/enabled": "true",
            f"k8s.io/cluster-autoscaler/{cluster}": "owned",
            f"kubernetes.io/cluster/{cluster}": "owned",
        }
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=group_name,
            LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"},
            MinSize=0,
            MaxSize=max(size, 1) * 4,
            DesiredCapacity=size,
            VPCZoneIdentifier=",".join(subnet_ids),
            Tags=[
                {
                    "Key": key,
                    "Value": value,
                    "PropagateAtLaunch": True,
                    "ResourceId": group_name,
                    "ResourceType": "auto-scaling-group",
                }
                for key, value in tags.items()
            ],
            LifecycleHookSpecificationList=[
                {
                    "LifecycleHookName": name,
                    "LifecycleTransition": transition,
                    "HeartbeatTimeout": EKS_HOOK_TIMEOUT_SECONDS,
                    "DefaultResult": CONTINUE,
                }
                for name, transition in (
                    (EKS_LAUNCH_HOOK, "autoscaling:EC2_INSTANCE_LAUNCHING"),
                    (EKS_TERMINATE_HOOK, "autoscaling:EC2_INSTANCE_TERMINATING"),
                )
            ],
        )
        return cls(aws, cluster, nodegroup, group_name, template_id, tuple(subnet_ids))

    # --- what EKS does ------------------------------------------------------------------------------------

    def eks_completes(self, instance_ids: list[str] | None = None) -> list[str]:
        """EKS's side of its own hooks: CONTINUE on each of its active actions (for ``instance_ids``, default
        all): a launch once EKS is done with the new node, a termination once EKS has drained it. Returns the
        instances whose action it completed. Our hooks' actions are left alone."""
        done: list[str] = []
        for action in self.aws.lifecycle.active():
            if action.group != self.group_name or action.hook not in EKS_HOOKS:
                continue
            if instance_ids is not None and action.instance_id not in instance_ids:
                continue
            self.aws.lifecycle.complete(
                group=self.group_name, hook=action.hook, token=action.token, instance_id=None, result=CONTINUE
            )
            done.append(action.instance_id)
        return done

    def instances(self) -> dict[str, str]:
        """Instance id -> lifecycle state, for the group's instances."""
        group = self._group()
        return {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}

    def begin_update(self, image_id: str = "ami-1f0f0f0f") -> Update:
        """Setup and scale-up phases: a new launch template version, the group on it, sizes raised by the
        larger of twice the number of AZs and ``max_unavailable``. The new nodes start launching."""
        if self.update is not None:
            raise ValueError(f"an update of {self.nodegroup} is already in progress")
        ec2: Any = self.aws.client("ec2")
        autoscaling: Any = self.aws.client("autoscaling")
        version = ec2.create_launch_template_version(
            LaunchTemplateId=self.launch_template_id, SourceVersion="1", LaunchTemplateData={"ImageId": image_id}
        )["LaunchTemplateVersion"]["VersionNumber"]
        group = self._group()
        old = [i["InstanceId"] for i in group["Instances"] if not i["LifecycleState"].startswith("Terminating")]
        azs = {i["AvailabilityZone"] for i in group["Instances"]} or {"-"}
        surge = max(2 * len(azs), self.max_unavailable)
        self.update = Update(old, group["DesiredCapacity"], group["MaxSize"], surge)
        autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=self.group_name,
            LaunchTemplate={"LaunchTemplateId": self.launch_template_id, "Version": str(version)},
            MaxSize=group["MaxSize"] + surge,
            DesiredCapacity=group["DesiredCapacity"] + surge,
        )
        return self.update

    def replace_next(self) -> str | None:
        """Upgrade phase, one node: EKS has drained a node of the earlier version (the test runs EKS's drain by
        :meth:`eks_completes` on its ``Terminate-LC-Hook``) and asks the group to terminate it, keeping the
        surge's capacity until the sizes are restored. Returns the node, or None when none is left."""
        if self.update is None:
            raise ValueError("no update in progress")
        states = self.instances()
        while self.update.old and self.update.old[0] not in states:
            self.update.old.pop(0)
        if not self.update.old:
            return None
        instance = self.update.old.pop(0)
        autoscaling: Any = self.aws.client("autoscaling")
        group = self._group()
        autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=instance, ShouldDecrementDesiredCapacity=group["DesiredCapacity"] > self.update.desired
        )
        return instance

    def end_update(self) -> None:
        """Scale-down phase: desired and maximum size back to their values before the update."""
        if self.update is None:
            raise ValueError("no update in progress")
        autoscaling: Any = self.aws.client("autoscaling")
        autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=self.group_name, MaxSize=self.update.max_size, DesiredCapacity=self.update.desired
        )
        self.update = None

    def _group(self) -> Any:
        autoscaling: Any = self.aws.client("autoscaling")
        return autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.group_name])["AutoScalingGroups"][0]
