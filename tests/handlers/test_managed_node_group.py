"""Our hooks on an EKS managed node group's Auto Scaling group (``localaws.eks``): beside EKS's own
``Launch-LC-Hook`` and ``Terminate-LC-Hook``, through the nodes EKS launched before our hooks existed and a
version update that replaces every node. README, docs/managed-node-groups.md.

The rule every test here holds: EKS's actions are EKS's. Only EKS completes them (``ManagedNodeGroup.
eks_completes`` does so through the lifecycle model, not the API), so a ``CompleteLifecycleAction`` or
``RecordLifecycleActionHeartbeat`` in the call log that names an EKS hook is ours, and a bug.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest

from localaws.eks import EKS_HOOK_TIMEOUT_SECONDS, EKS_HOOKS, EKS_LAUNCH_HOOK, EKS_TERMINATE_HOOK, ManagedNodeGroup
from multus_ipam.__main__ import EXIT_CONFLICTS, EXIT_OK, main
from multus_ipam.reconciler import Reconciler
from multus_ipam.runtime import Runtime
from tests.handlers.reconcile import intake_queue_url, reconcile, reconciler_for
from tests.handlers.world import World, deliver

OWNER = "test-stack"  # World.env's OWNER_ID: the stack's name
OUR_LAUNCH_HOOK = f"{OWNER}-multus-launch"  # the names the stack gives its hooks on an existing group
OUR_TERMINATE_HOOK = f"{OWNER}-multus-terminate"
GRACE_SECONDS = 120  # LostEventGraceSeconds' default
DRAIN_SECONDS = 600  # how long EKS takes to drain a node here: many of the reconciler's grace periods


@dataclass
class Mng:
    world: World
    group: ManagedNodeGroup
    runtime: Runtime
    reconciler: Reconciler

    def our_events(self) -> list[dict[str, Any]]:
        aws = self.world.aws
        return [
            aws.lifecycle.event(a)
            for a in aws.lifecycle.active()
            if a.group == self.group.group_name and a.hook in (OUR_LAUNCH_HOOK, OUR_TERMINATE_HOOK)
        ]

    def handle_ours(self) -> list[dict[str, Any]]:
        """Our function takes every event of our hooks, as the intake hands them over."""
        return [deliver(self.runtime, event) for event in self.our_events()]

    def wait_with_reconciler(self, seconds: int) -> list[str]:
        """Time passes with the reconciler on its schedule (every minute); returns whatever it requeued."""
        requeued: list[str] = []
        for _ in range(seconds // 60):
            self.world.aws.clock.advance(60)
            requeued.extend(reconcile(self.reconciler).requeued)
        return requeued

    def adopt(self) -> tuple[int, str]:
        self.world.aws.clock.advance(30)
        out, err = io.StringIO(), io.StringIO()
        env = {"MULTUS_SUBNET_IDS": ",".join(self.world.multus_subnets), "OWNER_ID": OWNER}
        code = main(
            ["adopt", "--group", self.group.group_name], out=out, err=err, env=env, now=self.world.aws.clock.now
        )
        assert err.getvalue() == ""
        return code, out.getvalue()

    def multus_enis(self, instance_id: str) -> list[dict[str, Any]]:
        return [dict(e) for e in self.world.enis_of(instance_id) if e["SubnetId"] in self.world.multus_subnets]

    def eks_hook_calls_by_others(self) -> list[Any]:
        return [
            call
            for operation in ("CompleteLifecycleAction", "RecordLifecycleActionHeartbeat")
            for call in self.world.aws.calls_to("autoscaling", operation)
            if call.params.get("LifecycleHookName") in EKS_HOOKS
        ]


def _node_subnet(world: World) -> str:
    subnets = world.ec2.describe_subnets(Filters=[{"Name": "cidr-block", "Values": ["10.0.0.0/24"]}])["Subnets"]
    return str(subnets[0]["SubnetId"])


@pytest.fixture
def mng(world: World) -> Mng:
    """A managed node group of two nodes that EKS launched and let in before our stack existed, then our stack
    deployed on it (CreateNodeGroup=false: its two hooks added beside EKS's)."""
    group = ManagedNodeGroup.create(
        world.aws, cluster="demo", nodegroup="multus", subnet_ids=(_node_subnet(world),), size=2
    )
    world.aws.clock.advance(90)  # the nodes join; EKS lets them in
    assert len(group.eks_completes()) == 2
    for name, transition, default in (
        (OUR_LAUNCH_HOOK, "LAUNCHING", "ABANDON"),
        (OUR_TERMINATE_HOOK, "TERMINATING", "CONTINUE"),
    ):
        world.autoscaling.put_lifecycle_hook(
            AutoScalingGroupName=group.group_name,
            LifecycleHookName=name,
            LifecycleTransition=f"autoscaling:EC2_INSTANCE_{transition}",
            HeartbeatTimeout=600,
            DefaultResult=default,
        )
    queue = intake_queue_url(world.aws)
    hooks = f"{OUR_LAUNCH_HOOK},{OUR_TERMINATE_HOOK}"
    return Mng(
        world,
        group,
        world.runtime(AUTOSCALING_GROUP_NAME=group.group_name, LIFECYCLE_HOOK_NAMES=hooks),
        reconciler_for(world, queue, AUTOSCALING_GROUP_NAME=group.group_name, LIFECYCLE_HOOK_NAMES=hooks),
    )


def test_given_eks_hooks_on_the_group_when_described_then_they_are_the_ones_eks_creates(mng: Mng) -> None:
    """What the model reproduces: EKS's two hooks, 1800 s each, CONTINUE by default, beside ours."""
    hooks = mng.world.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=mng.group.group_name)
    found = {
        h["LifecycleHookName"]: (h["LifecycleTransition"], h["HeartbeatTimeout"], h["DefaultResult"])
        for h in hooks["LifecycleHooks"]
    }

    assert found[EKS_LAUNCH_HOOK] == ("autoscaling:EC2_INSTANCE_LAUNCHING", EKS_HOOK_TIMEOUT_SECONDS, "CONTINUE")
    assert found[EKS_TERMINATE_HOOK] == ("autoscaling:EC2_INSTANCE_TERMINATING", EKS_HOOK_TIMEOUT_SECONDS, "CONTINUE")
    assert set(found) == {EKS_LAUNCH_HOOK, EKS_TERMINATE_HOOK, OUR_LAUNCH_HOOK, OUR_TERMINATE_HOOK}


def test_given_nodes_launched_before_our_hooks_when_checked_then_adopt_says_to_replace_them(mng: Mng) -> None:
    """EKS launched the first nodes before the stack added its hooks: they have no Multus ENIs, and adoption
    does not add any to a running node."""
    code, out = mng.adopt()

    assert code == EXIT_CONFLICTS
    for instance in mng.group.instances():
        assert instance in out
        assert mng.multus_enis(instance) == []
    assert out.count("replace the node") == 2 * 2  # two nodes, two Multus subnets in their AZ each
    assert f"  {EKS_LAUNCH_HOOK} (launch): EKS's (managed node group): leave it" in out
    assert f"  {EKS_TERMINATE_HOOK} (terminate): EKS's (managed node group): leave it" in out
    assert f"  {OUR_LAUNCH_HOOK} (launch): ours" in out


def test_given_an_event_of_eks_hooks_when_it_reaches_our_function_then_it_is_ignored(mng: Mng) -> None:
    """The stack's rule passes only our hooks' events; any other route (a rule of your own, `sam local invoke`)
    still completes nothing of EKS's: LIFECYCLE_HOOK_NAMES names only ours."""
    mng.world.autoscaling.set_desired_capacity(AutoScalingGroupName=mng.group.group_name, DesiredCapacity=3)
    theirs = [
        mng.world.aws.lifecycle.event(a)
        for a in mng.world.aws.lifecycle.active()
        if a.group == mng.group.group_name and a.hook == EKS_LAUNCH_HOOK
    ]
    assert len(theirs) == 1
    mng.world.aws.clear_calls()

    outcome = deliver(mng.runtime, theirs[0])

    assert outcome["status"] == "ignored"
    assert EKS_LAUNCH_HOOK in outcome["reason"]
    assert mng.world.aws.calls == []


def test_given_a_launch_when_ours_completes_first_then_the_node_waits_for_eks_and_nothing_is_requeued(
    mng: Mng,
) -> None:
    """A new node waits on both launch hooks. Ours completes as soon as the ENIs are attached; the node stays
    in Pending:Wait until EKS is done with it, and the reconciler, which sees only "Pending:Wait", must not take
    that for a lost event of ours."""
    mng.world.autoscaling.set_desired_capacity(AutoScalingGroupName=mng.group.group_name, DesiredCapacity=3)
    (outcome,) = mng.handle_ours()
    assert outcome["status"] == "completed", outcome
    (new,) = [i for i, state in mng.group.instances().items() if state == "Pending:Wait"]

    requeued = mng.wait_with_reconciler(DRAIN_SECONDS)

    assert requeued == []
    assert mng.group.instances()[new] == "Pending:Wait"  # EKS's hook still holds it
    assert mng.group.eks_completes() == [new]
    assert mng.group.instances()[new] == "InService"
    assert len(mng.multus_enis(new)) == 2
    assert mng.eks_hook_calls_by_others() == []


def test_given_a_scale_in_when_eks_drains_long_after_ours_completed_then_nothing_is_requeued_and_no_eni_leaks(
    mng: Mng,
) -> None:
    """EKS's Terminate-LC-Hook holds a node while EKS drains it (up to 1800 s). Ours releases and completes at
    once; for the whole drain the reconciler asks (a heartbeat on our hook: "No active Lifecycle Action") and
    requeues nothing. When EKS lets the node go, EC2 deletes its Multus ENIs with it (DeleteOnTermination)."""
    mng.world.autoscaling.set_desired_capacity(AutoScalingGroupName=mng.group.group_name, DesiredCapacity=3)
    mng.handle_ours()
    (new,) = mng.group.eks_completes()
    assert len(mng.multus_enis(new)) == 2
    mng.world.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=new, ShouldDecrementDesiredCapacity=True)
    (outcome,) = mng.handle_ours()
    assert outcome["status"] == "completed", outcome

    requeued = mng.wait_with_reconciler(DRAIN_SECONDS)

    assert requeued == []
    assert mng.group.instances()[new] == "Terminating:Wait"
    rejected = [
        r for r in mng.world.aws.lifecycle.rejected_completions if r.operation == "RecordLifecycleActionHeartbeat"
    ]
    assert rejected
    assert {r.hook for r in rejected} == {OUR_TERMINATE_HOOK}
    assert len(rejected) <= DRAIN_SECONDS // GRACE_SECONDS  # asked once a grace period, not every minute
    assert mng.group.eks_completes() == [new]
    mng.world.aws.clock.advance(60)
    assert new not in mng.group.instances()
    assert mng.world.our_enis() == []
    assert mng.eks_hook_calls_by_others() == []


def test_given_a_lost_event_of_ours_beside_eks_hooks_then_the_reconciler_still_requeues_it(mng: Mng) -> None:
    """The probe must not hide a real loss: our launch event never arrives, our hook still waits."""
    mng.world.autoscaling.set_desired_capacity(AutoScalingGroupName=mng.group.group_name, DesiredCapacity=3)
    (lost,) = [e["detail"]["EC2InstanceId"] for e in mng.our_events()]

    requeued = mng.wait_with_reconciler(3 * 60)

    assert requeued == [lost]


def test_given_a_version_update_when_eks_replaces_every_node_then_each_new_node_has_its_enis_and_none_leak(
    mng: Mng,
) -> None:
    """EKS's update, step by step (localaws.eks): surge, then each node of the earlier version drained and
    terminated through the group, then the sizes restored. Our function serves every launch and termination
    on the way; the two nodes launched before our hooks (no Multus ENIs) are replaced by nodes that have them."""
    before = set(mng.group.instances())
    update = mng.group.begin_update()
    assert update.surge == 2  # one AZ: twice the number of AZs
    settle(mng)
    while mng.group.replace_next() is not None:
        settle(mng)
    mng.group.end_update()
    settle(mng)

    states = mng.group.instances()
    assert set(states).isdisjoint(before)
    assert set(states.values()) == {"InService"}
    assert len(states) == 2
    for instance in states:
        enis = mng.multus_enis(instance)
        assert sorted(e["SubnetId"] for e in enis) == sorted(mng.world.multus_subnets[:2]), instance
        assert all(e["Attachment"]["DeleteOnTermination"] for e in enis)
    attached_to = {e.get("Attachment", {}).get("InstanceId") for e in mng.world.our_enis()}
    assert attached_to == set(states), "every ENI of ours is on a node of the group: none leaked"
    assert mng.eks_hook_calls_by_others() == []
    code, out = mng.adopt()
    assert code == EXIT_OK, out
    assert {r.hook for r in mng.world.aws.lifecycle.results if r.group == mng.group.group_name} >= EKS_HOOKS


def settle(mng: Mng) -> None:
    """Until nothing waits: our function handles our hooks' events, then EKS finishes (its drain takes
    DRAIN_SECONDS, with the reconciler running meanwhile and requeueing nothing)."""
    for _ in range(20):
        outcomes = mng.handle_ours()
        assert all(o["status"] == "completed" for o in outcomes), outcomes
        waiting = [s for s in mng.group.instances().values() if s.endswith(":Wait")]
        if not waiting:
            return
        assert mng.wait_with_reconciler(DRAIN_SECONDS) == []
        mng.group.eks_completes()
        mng.world.aws.clock.advance(60)
    raise AssertionError(f"still waiting: {mng.group.instances()}")
