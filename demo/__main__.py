"""`make demo`: a Multus node group scaling out and in against the local AWS, through the product as deployed.

Two node groups side by side, one per IP mode, on the realistic local AWS (strict parameters, latency, EC2's
token buckets, eventual consistency, asynchronous attachments, each node's VPC CNI; simulated time). Every
lifecycle event takes the deployed intake (template.yaml: IntakeQueue, IntakeMapping): EventBridge puts it on
the group's SQS queue, Lambda's event source mapping hands it to the mode's function (``localaws.intake``), each
execution environment a ``LambdaEntry``, and the reconciler runs every minute beside it. Each group scales out
by six workers (three per AZ) in one burst, one event is queued a second time (EventBridge is at-least-once),
then two workers are scaled in. The static group also shows a launch that cannot finish (rolled back,
ABANDONed, replaced) and a lost event (the reconciler queues it again). A batch response carries no per-event
outcome, so what the demo reports comes from the local AWS's own records: Auto Scaling's lifecycle results,
the call log and the ENIs. It ends with a map of a Multus subnet and a leak check; exit status 1 if something
is wrong.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from localaws import Call, LocalAWS
from localaws.intake import EventSourceMapping, InvocationContext, QueuePair, RunReport, create_queue_pair
from localaws.lifecycle import LifecycleResult
from localaws.scenario import Scenario, Spec, build
from multus_ipam.links import PlannedLink, plan_links
from multus_ipam.runtime import LambdaEntry, ReconcilerEntry
from multus_ipam.runtime import Mode as FunctionMode
from multus_ipam.settings import INSTANCE_TAG, OWNER_TAG

SEED = 2026
#: The simulated clock's start: the times printed are the same on every run.
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# template.yaml, as deployed with its defaults.
FUNCTION_TIMEOUT_SECONDS = 180
VISIBILITY_TIMEOUT_SECONDS = 210  # IntakeQueue: a deferred event comes back after this (RETRY_DELAY_SECONDS)
MAX_RECEIVE_COUNT = 5  # IntakeMaxReceiveCount: then the dead-letter queue
MAXIMUM_CONCURRENCY = 20  # IntakeMaximumConcurrency's default (Lambda starts 5 pollers and adds 5 a second)
HOOK_HEARTBEAT_TIMEOUT_SECONDS = 600  # HookHeartbeatTimeout's default
LOST_EVENT_GRACE_SECONDS = 120  # LostEventGraceSeconds' default
#: NodeInstanceType's default: 4 network interfaces, the primary, the VPC CNI's and the two Multus ENIs. (An
#: m5.large has 3: a launch handled after the node's VPC CNI attached its ENI, a lost or deferred event's,
#: could not attach the second Multus ENI and would be abandoned.)
NODE_INSTANCE_TYPE = "m6i.xlarge"
RECONCILER_TIMEOUT_SECONDS = 60
RECONCILER_EVERY_SECONDS = 60.0  # rate(1 minute)
#: What EventBridge takes to put a lifecycle event on the queue (AWS publishes no figure; typically seconds).
EVENTBRIDGE_DELAY_SECONDS = 2.0
#: A scene's run of the intake stops after this much simulated time even if actions are still open.
SCENE_MAX_SECONDS = 900.0


@dataclass(frozen=True)
class Mode:
    title: str
    function: FunctionMode
    spec: Spec
    env: Callable[[Scenario, dict[str, IPv4Network]], dict[str, str]]
    show_failure: bool = False
    show_lost_event: bool = False


def _subnets(scenario: Scenario) -> list[str]:
    return [s for az in scenario.azs for s in scenario.multus_subnets[az]]


def worker_bound(network: IPv4Network) -> IPv4Address:
    """The split the docs recommend (docs/subnet-plan.md; tests/plan/test_recommended_split.py holds them to
    it): workers take the bottom quarter of each Multus subnet (.4 to .63 of a /24) ..."""
    return network[network.num_addresses // 4 - 1]


def pod_ranges(network: IPv4Network) -> tuple[IPv4Network, ...]:
    """... and pods the rest (.64 to .254): in cidr-reservation mode the second quarter and the top half, as
    explicit reservations (.64/26 and .128/25 of a /24). Both modes give one and the same whereabouts block."""
    return (list(network.subnets(new_prefix=network.prefixlen + 2))[1], list(network.subnets(prefixlen_diff=1))[1])


def _in_pod_range(address: IPv4Address, network: IPv4Network) -> bool:
    return any(address in pods for pods in pod_ranges(network))


def _static_env(scenario: Scenario, cidrs: dict[str, IPv4Network]) -> dict[str, str]:
    bounds = ",".join(f"{s}={worker_bound(cidrs[s])}" for s in _subnets(scenario))
    return _common_env(scenario) | {"WORKER_IP_UPPER_BOUNDS": bounds}


def _cidr_env(scenario: Scenario, _cidrs: dict[str, IPv4Network]) -> dict[str, str]:
    return _common_env(scenario)  # the function checks that each subnet has an explicit reservation


def _common_env(scenario: Scenario) -> dict[str, str]:
    """What template.yaml sets (the intake queue's URL is added once the queue exists)."""
    return {
        "AUTOSCALING_GROUP_NAME": scenario.group_name,
        "LIFECYCLE_HOOK_NAMES": f"{scenario.launch_hook},{scenario.terminate_hook}",
        "MULTUS_SUBNET_IDS": ",".join(_subnets(scenario)),
        "MULTUS_SECURITY_GROUP_IDS": scenario.security_group_id,
        "OWNER_ID": f"demo-{scenario.group_name}",
        "RETRY_DELAY_SECONDS": str(VISIBILITY_TIMEOUT_SECONDS),
        "MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
        "HOOK_HEARTBEAT_TIMEOUT_SECONDS": str(HOOK_HEARTBEAT_TIMEOUT_SECONDS),
        "LOST_EVENT_GRACE_SECONDS": str(LOST_EVENT_GRACE_SECONDS),
    }


#: The cidr-reservation group's Multus subnets (per AZ), in a VPC of their own.
CIDR_MODE_MULTUS_CIDRS = (("10.1.64.0/24", "10.1.65.0/24"), ("10.1.66.0/24", "10.1.67.0/24"))

MODES = (
    Mode(
        title="static: workers take the lowest free addresses, capped below the pod range",
        function=FunctionMode.STATIC,
        spec=Spec(
            group_name="multus-static",
            max_size=12,
            instance_type=NODE_INSTANCE_TYPE,
            heartbeat_timeout=HOOK_HEARTBEAT_TIMEOUT_SECONDS,
        ),
        env=_static_env,
        show_failure=True,
        show_lost_event=True,
    ),
    Mode(
        title="cidr-reservation: EC2 picks worker addresses outside the pods' explicit reservations",
        function=FunctionMode.CIDR_RESERVATION,
        spec=Spec(
            group_name="multus-cidr",
            max_size=12,
            instance_type=NODE_INSTANCE_TYPE,
            heartbeat_timeout=HOOK_HEARTBEAT_TIMEOUT_SECONDS,
            vpc_cidr="10.1.0.0/16",
            primary_cidrs=("10.1.0.0/20", "10.1.16.0/20"),
            multus_cidrs=CIDR_MODE_MULTUS_CIDRS,
            explicit_reservations=tuple(
                str(pods) for az in CIDR_MODE_MULTUS_CIDRS for cidr in az for pods in pod_ranges(IPv4Network(cidr))
            ),
        ),
        env=_cidr_env,
    ),
)


@dataclass
class EventBridge:
    """The rule that sends the group's lifecycle events to its intake queue: each new lifecycle action's event,
    EVENTBRIDGE_DELAY_SECONDS after the action begins (``tick`` is a task of every run). An instance passed to
    ``lose`` never gets its next event queued."""

    aws: LocalAWS
    group: str
    mapping: EventSourceMapping
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Event id -> the event (lost events too, never sent)."""
    lost: set[str] = field(default_factory=set)

    def lose(self, instance_id: str) -> None:
        self.lost.add(instance_id)

    def tick(self) -> None:
        now = self.aws.clock.now()
        due = [
            action
            for action in self.aws.lifecycle.active()
            if action.group == self.group
            and action.event_id not in self.sent
            and (now - action.started).total_seconds() >= EVENTBRIDGE_DELAY_SECONDS
        ]
        for action in due:
            event = self.aws.lifecycle.event(action)
            self.sent[action.event_id] = event
            if action.instance_id in self.lost:
                self.lost.discard(action.instance_id)
            else:
                self.mapping.put_events([event])


@dataclass
class Intake:
    """One group's deployed intake on the local AWS: its queue and dead-letter queue, the event source mapping
    into the mode's function, the EventBridge rule feeding the queue, and the scheduled reconciler."""

    aws: LocalAWS
    group: str
    queue: QueuePair
    mapping: EventSourceMapping
    bridge: EventBridge
    reconciler: ReconcilerEntry

    @classmethod
    def deploy(cls, aws: LocalAWS, mode: Mode, scenario: Scenario, env: dict[str, str]) -> Intake:
        group = scenario.group_name
        queue = create_queue_pair(
            aws, f"{group}-intake", visibility_timeout=VISIBILITY_TIMEOUT_SECONDS, max_receive_count=MAX_RECEIVE_COUNT
        )
        mapping = EventSourceMapping(
            aws,
            queue_url=queue.url,
            make_environment=lambda: LambdaEntry(mode.function, env, clock=aws.clock),
            function_timeout_seconds=FUNCTION_TIMEOUT_SECONDS,
            maximum_concurrency=MAXIMUM_CONCURRENCY,
            batch_size=1,
            report_batch_item_failures=True,
            function_name=f"{group}-{mode.function.value}",
        )
        reconciler = ReconcilerEntry(env | {"INTAKE_QUEUE_URL": queue.url}, clock=aws.clock)
        return cls(aws, group, queue, mapping, EventBridge(aws, group, mapping), reconciler)

    def run(self, until: Callable[[], bool] | None = None) -> RunReport:
        """Run the intake (and EventBridge, and the reconciler every minute) until ``until()``, by default until
        no lifecycle action of the group is open; then a moment more, for attachments to finish."""
        settled = until or (lambda: not any(a.group == self.group for a in self.aws.lifecycle.active()))
        tasks = [
            self.mapping.every(1.0, self.bridge.tick),
            self.mapping.every(RECONCILER_EVERY_SECONDS, self._reconcile),
        ]
        with contextlib.redirect_stdout(io.StringIO()):
            # (the functions' JSON logs and EMF metrics go to stdout, as in Lambda; not wanted on the demo's screen)
            report = self.mapping.run(settled, extra_tasks=tasks, max_seconds=SCENE_MAX_SECONDS)
        self.aws.clock.advance(15)  # a moment later: attachments have finished, new ENIs show in every describe
        return report

    def _reconcile(self) -> None:
        clock = self.aws.clock
        context = InvocationContext(
            function_name=f"{self.group}-reconciler",
            aws_request_id=f"schedule-{clock.now():%H%M%S}",
            invoked_function_arn=f"arn:aws:lambda:{self.aws.region}:{self.aws.account_id}:function:reconciler",
            deadline=clock.now() + timedelta(seconds=RECONCILER_TIMEOUT_SECONDS),
            clock=clock,
        )
        self.reconciler({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}}, context)

    def handled(self) -> set[str]:
        """Message ids the mapping deleted (the function took them)."""
        return {m for invocation in self.mapping.invocations for m in invocation.deleted}

    def dead_letters(self) -> int:
        attributes = self.aws.client("sqs").get_queue_attributes(
            QueueUrl=self.queue.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])


@dataclass
class Stage:
    """One group's scenes: the local AWS, the group, its intake, and the problems found so far."""

    aws: LocalAWS
    mode: Mode
    scenario: Scenario
    cidrs: dict[str, IPv4Network]
    intake: Intake
    owner: str
    problems: list[str] = field(default_factory=list)
    summary: str = ""
    """One line: how the group's story ended (set by the leak check)."""

    @property
    def group(self) -> str:
        return self.scenario.group_name

    def require(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(f"{self.group}: {problem}")

    def scale_to(self, capacity: int) -> list[str]:
        """SetDesiredCapacity; the instances that now wait on a hook."""
        self.aws.client("autoscaling").set_desired_capacity(AutoScalingGroupName=self.group, DesiredCapacity=capacity)
        return [a.instance_id for a in self.aws.lifecycle.active() if a.group == self.group]

    def results(self, since: datetime, instances: Sequence[str] = ()) -> list[LifecycleResult]:
        """Auto Scaling's accepted results for the group since ``since`` (of ``instances``, if given)."""
        return [
            r
            for r in self.aws.lifecycle.results
            if r.group == self.group and r.at >= since and (not instances or r.instance_id in instances)
        ]

    def calls(self, service: str, operation: str, since: datetime) -> list[Call]:
        """Our calls (the functions', the reconciler's, EventBridge's and the mapping's) since ``since``."""
        return [c for c in self.aws.calls_to(service, operation) if c.at >= since]

    def enis_of(self, instance_id: str) -> list[str]:
        """Our ENIs made for the instance (by their tags), attached or not."""
        enis = self.aws.client("ec2").describe_network_interfaces(
            Filters=[
                {"Name": f"tag:{OWNER_TAG}", "Values": [self.owner]},
                {"Name": f"tag:{INSTANCE_TAG}", "Values": [instance_id]},
            ]
        )["NetworkInterfaces"]
        return sorted(e["NetworkInterfaceId"] for e in enis)

    def device_indexes(self, instance_id: str) -> list[int]:
        """Where our ENIs are attached on the instance."""
        enis = self.aws.client("ec2").describe_network_interfaces(
            Filters=[
                {"Name": "attachment.instance-id", "Values": [instance_id]},
                {"Name": f"tag:{OWNER_TAG}", "Values": [self.owner]},
            ]
        )["NetworkInterfaces"]
        return sorted(int(e["Attachment"]["DeviceIndex"]) for e in enis)


def _at(moment: datetime) -> str:
    return f"{moment:%H:%M:%S}"


def _tally(results: Sequence[LifecycleResult]) -> str:
    counts = Counter(r.result if r.by == "api" else f"{r.result} (hook timed out)" for r in results)
    return ", ".join(f"{n} x {key}" for key, n in sorted(counts.items())) or "none"


def link_plan(scenario: Scenario) -> tuple[PlannedLink, ...]:
    """The stack's LinkPlan for this group's Multus subnets: the link name each gets on its AZ's nodes."""
    zones = {subnet: az for az in scenario.azs for subnet in scenario.multus_subnets[az]}
    return plan_links(_subnets(scenario), zones)


def show_workers(aws: LocalAWS, scenario: Scenario, owner: str) -> None:
    ec2 = aws.client("ec2")
    autoscaling = aws.client("autoscaling")
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[scenario.group_name])
    instances = sorted(
        group["AutoScalingGroups"][0]["Instances"], key=lambda i: (i["AvailabilityZone"], i["InstanceId"])
    )
    names = {link.subnet_id: link.name for link in link_plan(scenario)}
    print(
        "    (each Multus link, by the name the node gives it whatever its device index: address, last 6 characters"
        " of the ENI id, DoT = DeleteOnTermination set, the device index)"
    )
    print(f"    {'instance':<21} {'AZ':<11} {'state':<12} {'multus0':<30} {'multus1':<30}")
    for item in instances:
        enis = ec2.describe_network_interfaces(
            Filters=[
                {"Name": "attachment.instance-id", "Values": [item["InstanceId"]]},
                {"Name": f"tag:{OWNER_TAG}", "Values": [owner]},
            ]
        )["NetworkInterfaces"]
        by_name = {names[e["SubnetId"]]: e for e in enis}
        cells = []
        for name in ("multus0", "multus1"):
            eni = by_name.get(name)
            if eni is None:
                cells.append("-")
                continue
            attachment = eni["Attachment"]
            dot = " DoT" if attachment["DeleteOnTermination"] else ""
            cells.append(
                f"{eni['PrivateIpAddress']} {eni['NetworkInterfaceId'][-6:]}{dot} dev {attachment['DeviceIndex']}"
            )
        print(
            f"    {item['InstanceId']:<21} {item['AvailabilityZone']:<11} {item['LifecycleState']:<12} "
            f"{cells[0]:<30} {cells[1]:<30}"
        )


def subnet_map(aws: LocalAWS, subnet_id: str, network: IPv4Network) -> None:
    """One character per address: r AWS-reserved, W worker ENI, p pod range, . free (rows of 64)."""
    ec2 = aws.client("ec2")
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])["NetworkInterfaces"]
    used = {IPv4Address(a["PrivateIpAddress"]) for e in enis for a in e["PrivateIpAddresses"]}
    first, last = int(network.network_address), int(network.broadcast_address)
    cells = []
    for value in range(first, last + 1):
        address = IPv4Address(value)
        if value - first < 4 or value == last:
            cells.append("r")
        elif address in used:
            cells.append("W" if not _in_pod_range(address, network) else "!")
        elif _in_pod_range(address, network):
            cells.append("p")
        else:
            cells.append(".")
    pods = " + ".join(map(str, pod_ranges(network)))
    print(f"    {subnet_id} {network}  (r AWS-reserved, W worker, p pod range {pods}, . free, ! conflict)")
    for row in range(0, len(cells), 64):
        print(f"      .{row:<3} {''.join(cells[row : row + 64])}")


def run_mode(aws: LocalAWS, number: int, mode: Mode) -> Stage:
    """One group's story; its stage holds the problems found (none: all good) and a one-line summary."""
    print(f"\n{number}. {mode.title}")
    scenario = build(aws, mode.spec)
    found = aws.client("ec2").describe_subnets(SubnetIds=_subnets(scenario))["Subnets"]
    cidrs = {s["SubnetId"]: IPv4Network(s["CidrBlock"]) for s in found}
    env = mode.env(scenario, cidrs)
    stage = Stage(aws, mode, scenario, cidrs, Intake.deploy(aws, mode, scenario, env), env["OWNER_ID"])
    print(
        f"   group {stage.group} ({mode.spec.instance_type} nodes): launch and terminate hooks declared at "
        f"creation, heartbeat timeout {mode.spec.heartbeat_timeout} s"
    )
    names = {link.subnet_id: link.name for link in link_plan(scenario)}
    for az in scenario.azs:
        print(
            f"   Multus subnets in {az}: "
            + ", ".join(f"{s} {cidrs[s]} (link {names[s]})" for s in scenario.multus_subnets[az])
        )
    if "WORKER_IP_UPPER_BOUNDS" in env:
        print(
            "   workers may take .4 to .63 of each subnet (WORKER_IP_UPPER_BOUNDS); pods get .64 to .254 (whereabouts)"
        )
    else:
        print(
            "   each subnet has explicit CIDR reservations .64/26 and .128/25 for the pods; EC2 never assigns from them"
        )
    show_burst(stage)
    show_redelivery(stage, next(iter(stage.intake.bridge.sent.values())))
    show_scale_in(stage)
    if mode.show_failure:
        show_failed_launch(stage)
    if mode.show_lost_event:
        show_lost_event(stage)
    show_leak_check(stage)
    return stage


def show_burst(stage: Stage) -> None:
    """Scale out by six in one burst: six launch events at once through the intake."""
    launched = stage.aws.clock.now()
    burst = stage.scale_to(6)
    print(f"\n   scale out 0 -> 6 at {_at(launched)}: {len(burst)} instances wait in Pending:Wait; ", end="")
    print("EventBridge queues their events")
    report = stage.intake.run()
    results = stage.results(launched, burst)
    last = max((r.at for r in results), default=launched)
    invocations = stage.intake.mapping.invocations
    print(
        f"   results: {_tally(results)}; last completion {_at(last)}, "
        f"{(last - launched).total_seconds():.1f} s after the launch (simulated)"
    )
    print(
        f"   intake: {len(invocations)} invocations (Lambda starts with 5 pollers, adds 5 a second), at most "
        f"{stage.intake.mapping.max_concurrent_invocations} at once, "
        f"{sum(1 for i in invocations if i.kept)} returned to the queue"
    )
    stage.require(report.reached, "the burst did not finish")
    stage.require(_tally(results) == f"{len(burst)} x CONTINUE", f"burst: {_tally(results)}")
    show_workers(stage.aws, stage.scenario, stage.owner)


def show_redelivery(stage: Stage, event: dict[str, Any]) -> None:
    """EventBridge and SQS are at-least-once: a launch event queued again is verified first (the instance is in
    service, not waiting for a launch) and refused before any change: no ENI created, no lifecycle call."""
    instance_id = str(event["detail"]["EC2InstanceId"])
    before = stage.enis_of(instance_id)
    since = stage.aws.clock.now()
    (message_id,) = stage.intake.mapping.put_events([event])
    report = stage.intake.run(lambda: message_id in stage.intake.handled())
    completions = stage.calls("autoscaling", "CompleteLifecycleAction", since)
    created = stage.calls("ec2", "CreateNetworkInterface", since)
    after = stage.enis_of(instance_id)
    state = stage.aws.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[instance_id])
    lifecycle_state = state["AutoScalingInstances"][0]["LifecycleState"]
    refused = not completions and not created and after == before
    print("\n   the first launch event queued again (EventBridge is at-least-once): ", end="")
    print(f"refused before any change, the instance is {lifecycle_state}" if refused else "acted on again")
    print(f"   created {len(created) or 'none'}, the node keeps its {len(after)} ENIs, no lifecycle call")
    stage.require(report.reached, "the redelivered event was not handled")
    stage.require(refused, "redelivery: the event was acted on again")
    stage.require(len(after) == 2, "redelivery: the node's ENIs changed")


def show_scale_in(stage: Stage) -> None:
    since = stage.aws.clock.now()
    leaving = stage.scale_to(4)
    print(f"\n   scale in 6 -> 4: {', '.join(leaving)} wait in Terminating:Wait; EventBridge queues their events")
    stage.require(stage.intake.run().reached, "the scale-in did not finish")
    results = stage.results(since, leaving)
    print(f"   results: {_tally(results)}; their ENIs went with them (DoT)")
    stage.require(_tally(results) == "2 x CONTINUE", f"scale-in: {_tally(results)}")
    show_workers(stage.aws, stage.scenario, stage.owner)


def show_failed_launch(stage: Stage) -> None:
    """A launch that cannot finish: it rolls back what it made and abandons; Auto Scaling replaces the node."""
    aws = stage.aws
    print("\n   a failure: the function may not attach ENIs (say an IAM policy lost ec2:AttachNetworkInterface)")
    aws.faults.fail("ec2", "AttachNetworkInterface", code="UnauthorizedOperation", status=403)
    since = aws.clock.now()
    (failing,) = stage.scale_to(5)
    # Until Auto Scaling has the result: the replacement it launches then is queued only after the permission is
    # restored (EventBridge's delay is longer than the run takes to stop).
    report = stage.intake.run(lambda: bool(stage.results(since, [failing])))
    aws.faults.clear()
    results = stage.results(since, [failing])
    refused = Counter(c.outcome for c in stage.calls("ec2", "AttachNetworkInterface", since) if not c.ok)
    created = [c for c in stage.calls("ec2", "CreateNetworkInterface", since) if c.ok]
    deleted = [c for c in stage.calls("ec2", "DeleteNetworkInterface", since) if c.ok]
    left = stage.enis_of(failing)
    why = ", ".join(f"{code} x {n}" for code, n in sorted(refused.items())) or "no refusal"
    result = f"{results[0].result} after rollback at {_at(results[0].at)}" if results else "no result"
    print(f"   {failing}: {result} ({len(created)} ENIs created, {len(deleted)} deleted, {len(left)} left)")
    print(f"   (AttachNetworkInterface answered {why}: not retryable, so not deferred)")
    stage.require(report.reached and _tally(results) == "1 x ABANDON", f"failed launch: {_tally(results)}")
    stage.require(not left and len(deleted) == len(created), f"failed launch left {', '.join(left)}")
    (replacement,) = [a.instance_id for a in aws.lifecycle.active() if a.group == stage.group]
    since = aws.clock.now()
    print(f"   Auto Scaling terminated it and launched {replacement}; permission restored:")
    report = stage.intake.run()
    results = stage.results(since, [replacement])
    print(f"   results: {_tally(results)}")
    stage.require(report.reached and _tally(results) == "1 x CONTINUE", f"replacement: {_tally(results)}")
    scale_back(stage)


def show_lost_event(stage: Stage) -> None:
    """A launch event that never reaches the queue: the reconciler queues one (without a token) once the instance
    has waited LOST_EVENT_GRACE_SECONDS with the queue empty, long before the hook would time out."""
    aws = stage.aws
    since = aws.clock.now()
    (node,) = stage.scale_to(5)
    (action,) = [a for a in aws.lifecycle.active() if a.instance_id == node]
    stage.intake.bridge.lose(node)
    print(f"\n   a lost event: scale out 4 -> 5; EventBridge never queues the launch event of {node}")
    print(f"   {_at(action.started)}  launched, waits in Pending:Wait; ", end="")
    print(f"its hook would time out at {_at(action.deadline)} (ABANDON)")
    report = stage.intake.run()
    requeued = [c for c in stage.calls("sqs", "SendMessageBatch", since) if c.ok]  # the reconciler's sends
    completions = [
        c
        for c in stage.calls("autoscaling", "CompleteLifecycleAction", since)
        if c.ok and c.params.get("InstanceId") == node
    ]
    results = stage.results(since, [node])
    if requeued:
        waited = (requeued[0].at - action.started).total_seconds()
        print(f"   {_at(requeued[0].at)}  the reconciler queues an event for it, without a token ", end="")
        print(f"(it waited {waited:.0f} s, the queue was empty)")
    for result in results:
        how = "by instance id" if all("LifecycleActionToken" not in c.params for c in completions) else "by token"
        print(
            f"   {_at(result.at)}  {result.result} {how}: {(result.at - action.started).total_seconds():.0f} s after "
            f"the launch, {(action.deadline - result.at).total_seconds():.0f} s before the hook's timeout"
        )
    indexes = stage.device_indexes(node)
    cni = aws.vpc_cni.enis().get(node)
    cni_at = [e["Attachment"]["DeviceIndex"] for e in _described(aws, cni) if "Attachment" in e]
    shown = " and ".join(map(str, indexes)) or "none"
    late = f": its VPC CNI had attached an ENI at {cni_at[0]} meanwhile" if cni_at else ""
    print(f"   its Multus ENIs are at device indexes {shown}{late}")
    if indexes and indexes != list(range(1, len(indexes) + 1)):
        print("   its links are named multus0 and multus1 all the same (by subnet, not by device index)")
    stage.require(report.reached and len(requeued) == 1, "lost event: not queued again by the reconciler")
    stage.require(_tally(results) == "1 x CONTINUE", f"lost event: {_tally(results)}")
    stage.require(len(indexes) == 2, f"lost event: {len(indexes)} Multus ENIs attached")
    scale_back(stage)


def _described(aws: LocalAWS, eni_id: str | None) -> list[dict[str, Any]]:
    if eni_id is None:
        return []
    enis: list[dict[str, Any]] = aws.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[eni_id])[
        "NetworkInterfaces"
    ]
    return enis


def scale_back(stage: Stage) -> None:
    since = stage.aws.clock.now()
    leaving = stage.scale_to(4)
    report = stage.intake.run()
    results = stage.results(since, leaving)
    print(f"   scaled back to 4 workers ({len(leaving)} more termination handled: {_tally(results)})")
    stage.require(report.reached and _tally(results) == f"{len(leaving)} x CONTINUE", "scale back did not finish")


def show_leak_check(stage: Stage) -> None:
    """The subnet map, then every ENI of ours: attached to a worker, outside the pod ranges."""
    aws, scenario, cidrs = stage.aws, stage.scenario, stage.cidrs
    first_subnet = scenario.multus_subnets[scenario.azs[0]][0]
    print(f"\n   the group {stage.group} at the end, after the scale-in and the scenes above:")
    show_workers(aws, scenario, stage.owner)
    print()
    subnet_map(aws, first_subnet, cidrs[first_subnet])
    ours = aws.client("ec2").describe_network_interfaces(
        Filters=[{"Name": f"tag:{OWNER_TAG}", "Values": [stage.owner]}]
    )
    leaked = [e["NetworkInterfaceId"] for e in ours["NetworkInterfaces"] if e["Status"] != "in-use"]
    attached = len(ours["NetworkInterfaces"]) - len(leaked)
    in_pod_range = [
        e["PrivateIpAddress"]
        for e in ours["NetworkInterfaces"]
        if _in_pod_range(IPv4Address(e["PrivateIpAddress"]), cidrs[e["SubnetId"]])
    ]
    outcomes = [r.result for r in aws.lifecycle.results if r.group == stage.group]
    workers = 4
    dead = stage.intake.dead_letters()
    print(
        f"\n   lifecycle results accepted by Auto Scaling: {outcomes.count('CONTINUE')} CONTINUE, "
        f"{outcomes.count('ABANDON')} ABANDON (launches and terminations; the redelivery completed nothing)"
    )
    print(
        f"   ENIs: {attached} attached ({workers} workers x 2 subnets), {len(leaked)} leaked, "
        f"{len(in_pod_range)} in a pod range; dead-letter queue: {dead} messages"
    )
    stage.summary = (
        f"{outcomes.count('CONTINUE')} CONTINUE, {outcomes.count('ABANDON')} ABANDON; {attached} ENIs on "
        f"{workers} workers, {len(leaked)} leaked, {len(in_pod_range)} in a pod range; dead-letter queue {dead}"
    )
    stage.require(not leaked, f"leaked ENIs: {', '.join(leaked)}")
    stage.require(not in_pod_range, f"workers in a pod range: {', '.join(in_pod_range)}")
    stage.require(attached == 2 * workers, f"{attached} ENIs attached, not {2 * workers}")
    stage.require(dead == 0, f"{dead} events in the dead-letter queue")


def main() -> int:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    print("eks-multus-ipam demo: Multus node groups scaling on the local AWS (moto + what moto lacks)")
    print("Each worker gets one ENI per Multus subnet of its AZ, tagged node.k8s.amazonaws.com/no_manage=true.")
    print(f"The local AWS is the realistic one (localaws.realism: throttled, eventually consistent), seed {SEED}.")
    print(
        "Every lifecycle event takes the intake as deployed: EventBridge -> SQS queue (visibility "
        f"{VISIBILITY_TIMEOUT_SECONDS} s,\ndead-letter queue after {MAX_RECEIVE_COUNT} receives) -> event source "
        f"mapping (batch 1, ReportBatchItemFailures, MaximumConcurrency {MAXIMUM_CONCURRENCY})\n-> the mode's "
        f"function (timeout {FUNCTION_TIMEOUT_SECONDS} s); the reconciler runs every minute. Times are simulated."
    )
    problems: list[str] = []
    summaries: list[str] = []
    with LocalAWS(region="us-east-1", seed=SEED, start_time=START) as aws:
        for number, mode in enumerate(MODES, start=1):
            stage = run_mode(aws, number, mode)
            problems += stage.problems
            summaries.append(f"   {mode.function.value}: {stage.summary}")
    print("\nsummary, one line per mode:")
    print("\n".join(summaries))
    if problems:
        print("\nSOMETHING IS WRONG:\n" + "\n".join(f"  - {problem}" for problem in problems))
    else:
        print("\nall good: no leaked ENI, no worker in a pod range, every launch and termination completed in time")
    print("next: `python -m multus_ipam plan --help` to plan your subnets, then docs/deploy.md.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
